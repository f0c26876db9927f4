"""The DuckDB results store: every sample x scorer is a row; aggregates are SQL (harness.store.db)."""
