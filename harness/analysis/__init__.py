"""Analyses recomputed from stored rows: fidelity, sequence KL, contamination, flips, coverage, aggregates."""
