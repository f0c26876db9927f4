"""Human review: audit and rubric sheets exported for people and imported back."""
