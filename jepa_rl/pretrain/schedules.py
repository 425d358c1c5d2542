"""Training schedules as pure functions of the step, so a resumed run needs nothing but the step."""

from __future__ import annotations

import math


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Target-encoder EMA momentum, rising linearly from ``start`` to ``end`` over training (I-JEPA)."""
    frac = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return start + (end - start) * frac


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, peak: float, start: float = 0.0, end: float = 0.0
) -> float:
    """Learning rate: linear warmup ``start -> peak``, then a cosine decay ``peak -> end``."""
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return end + 0.5 * (peak - end) * (1.0 + math.cos(math.pi * progress))


def ema_initial_share(steps: int, total_steps: int, start: float, end: float) -> float:
    """Share of the initial weights still in the EMA target after ``steps`` updates: the product of the
    momenta of ``ema_momentum`` (each update keeps ``momentum`` of the target)."""
    return math.exp(math.fsum(math.log(ema_momentum(s, total_steps, start, end)) for s in range(steps)))
