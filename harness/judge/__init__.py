"""LLM-as-judge: prompts (MT-Bench's file format), verdict parsing, judge clients (local model or
an OpenAI-compatible endpoint) with a call cache, judge-health statistics, and the judge task
that grades stored outputs (single 1-10 ratings, or pairwise with order swap)."""
