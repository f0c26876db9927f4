"""How figures are written in every output (terminal lines, markdown, HTML), so one value never
reads two ways."""

from __future__ import annotations

import math


def figure(x: float | None) -> str:
    """4 significant digits; 'n/a' when undefined; '+inf'/'-inf' for a bound the data can't set."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def p_value(p: float | None) -> str:
    """'0.271', '<0.001', or 'n/a'."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def size(n_bytes: int | None) -> str:
    """A file size in the unit that keeps it readable: '812 B', '14.2 KB', '268.1 MB', '1.20 GB'
    (never '0.0 MB' for a small artifact such as a quantization config)."""
    if n_bytes is None:
        return "n/a"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:.2f} {unit}" if unit == "GB" else f"{value:.1f} {unit}"
    return f"{n_bytes} B"


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About `count` round tick values (1, 2 or 5 x a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first + k * step, 12) for k in range(int(math.ceil((high - first) / step)) + 1)]
    return ticks if len(ticks) > 1 else [ticks[0], ticks[0] + step]
