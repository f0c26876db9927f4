"""LoRA rank diagnostic on planted low-rank deltas and on a real saved adapter."""

from __future__ import annotations

import torch

from harness.diagnostics.lora_rank import delta_spectrum, energy_rank


def test_energy_rank_of_planted_spectra():
    assert energy_rank([10.0, 0.0, 0.0]) == 1
    assert energy_rank([1.0, 1.0, 1.0, 1.0]) == 4  # flat: needs all four for 95%
    assert energy_rank([3.0, 1.0, 0.1]) == 2  # 9/10.01 < 0.95 <= 10/10.01


def test_delta_spectrum_finds_the_planted_rank():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(64, 3, generator=g) @ torch.randn(3, 48, generator=g)
    report = delta_spectrum(delta, "layer")
    assert report.energy_rank <= 3 and report.shape == (64, 48)
    assert report.singular_values[3] < 1e-5 * report.singular_values[0]  # float32 product: ~1e-6 noise
