"""The DuckDB results store: every sample x scorer is a row; aggregates are SQL."""

from harness.store.db import Store, open_store

__all__ = ["Store", "open_store"]
