"""Data loaders: files (JSONL, CSV, MMLU CSV) and Hugging Face datasets into records."""
