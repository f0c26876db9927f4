"""LoRA rank diagnostic: the singular-value spectrum of a weight delta (a LoRA product
scale * B @ A, or a full fine-tune's difference W_tuned - W_base) and the rank that captures
95% of its spectral energy (sum of squared singular values).

A LoRA of rank r whose updates need far fewer than r directions was over-provisioned; one
that needs all r may be capacity-limited."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RankReport:
    layer: str
    shape: tuple[int, int]
    singular_values: list[float]
    energy_rank: int
    """Smallest k whose top-k singular values hold >= `energy` of the total squared energy."""
    energy: float


def energy_rank(singular_values, energy: float = 0.95) -> int:
    """Smallest k with sum(s[:k]^2) >= energy * sum(s^2)."""
    import torch

    s = torch.as_tensor(singular_values, dtype=torch.float64)
    total = float((s**2).sum())
    if total == 0:
        return 0
    cumulative = torch.cumsum(s**2, 0) / total
    return int(torch.searchsorted(cumulative, torch.tensor(energy - 1e-12, dtype=torch.float64)).item()) + 1


def delta_spectrum(delta, layer: str, energy: float = 0.95, keep: int = 32) -> RankReport:
    """Spectrum of one weight delta (2-D tensor)."""
    import torch

    s = torch.linalg.svdvals(delta.detach().to(torch.float64))
    return RankReport(layer, tuple(delta.shape), [float(x) for x in s[:keep]], energy_rank(s, energy), energy)


def lora_deltas(adapter_dir) -> dict:
    """Per adapted layer: scale * B @ A from a saved peft adapter (no base model needed)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    deltas = {}
    for name, a in tensors.items():
        if ".lora_A." not in name:
            continue
        b = tensors[name.replace(".lora_A.", ".lora_B.")]
        deltas[name.split(".lora_A.")[0]] = scale * (b.float() @ a.float())
    return deltas


def adapter_rank_report(adapter_dir, energy: float = 0.95) -> dict:
    """Summary stored on the variant: per-layer energy ranks and the distribution over layers."""
    return summarize([delta_spectrum(d, layer, energy) for layer, d in sorted(lora_deltas(adapter_dir).items())], energy)


def full_finetune_rank_report(initial: dict, modules: dict, energy: float = 0.95) -> dict:
    """The same diagnostic for a full fine-tune: spectrum of W_tuned - W_initial per linear layer."""
    reports = [delta_spectrum(modules[name].weight.detach().float() - w0.float(), name, energy) for name, w0 in sorted(initial.items())]
    return summarize(reports, energy)


def summarize(reports: list[RankReport], energy: float) -> dict:
    ranks = [r.energy_rank for r in reports]
    return {
        "energy": energy,
        "layers": len(reports),
        "energy_rank_mean": sum(ranks) / len(ranks) if ranks else None,
        "energy_rank_max": max(ranks) if ranks else None,
        "per_layer": [{"layer": r.layer, "energy_rank": r.energy_rank, "top_singular_values": r.singular_values[:8]} for r in reports],
    }
