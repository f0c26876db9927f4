"""Task kinds: one module per kind, each exposing `KIND` (registered in harness.registry)."""
