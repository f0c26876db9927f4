"""Declarative files (suites, models, reports): parsed with yaml.safe_load into strict pydantic models."""
