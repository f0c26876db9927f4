"""Diagnostics computed on built artifacts (stored with the variant, shown in reports)."""
