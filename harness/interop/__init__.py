"""Results where teams already look: lm-eval's results files, experiment trackers, model cards."""
