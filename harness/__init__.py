"""harness: an evaluation-first benchmarking harness for fine-tuned language models."""

__version__ = "0.10.0"
