"""Model backends: a small batch-first surface (generate, loglikelihood)."""
