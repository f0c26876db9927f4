"""Models: the catalogue of a models file, built variants, base weights, tokenizers, GGUF tools."""
