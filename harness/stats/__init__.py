"""Statistics: confidence intervals, hypothesis tests, metric declarations."""
