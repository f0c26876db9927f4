"""Commands that run work: evaluate (`harness run`), build, validate."""
