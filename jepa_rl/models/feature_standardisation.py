"""Fixed standardisation of an encoder's features, with statistics measured on the pretraining frames.

A frozen (or pretrained) encoder's features can sit far from zero and vary little from frame to frame:
a trunk trained on them sees nearly the same input everywhere. As MAE's linear probing does (a
BatchNorm without affine parameters, never updated), each feature dimension is shifted and scaled by
fixed statistics, here measured once on frames of the game and stored with the agent.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Frames the statistics are measured on (evenly spaced over the frame set): enough for a per-dimension
# mean and std to two digits, few enough to cost seconds on a CPU.
STATISTICS_FRAMES = 2048
# Added to each variance, relative to the mean variance: a dead dimension stays at 0 and the
# standardisation does not depend on the features' scale (MAE's BatchNorm1d adds an absolute 1e-6,
# which is a fifth of the variance of a random-init ViT's features on Breakout).
EPS = 1e-4


def evenly_spaced(total: int, count: int) -> np.ndarray:
    """Up to ``count`` sorted row indices spread evenly over ``total`` rows (all of them when fewer)."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).astype(np.int64))


class FeatureNorm(nn.Module):
    """``(h - mean) / std`` per feature dimension, with fixed statistics (buffers, stored in checkpoints)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.mean) / self.std


@torch.no_grad()
def encode(
    encoder: nn.Module, frames: np.ndarray, rows: np.ndarray, batch: int, device: torch.device, bf16: bool
) -> np.ndarray:
    """Encoder features ``[len(rows), F]`` float32 of ``frames[rows]``, under bf16 autocast when ``bf16``."""
    encoder.eval()
    out = []
    for i in range(0, len(rows), batch):
        obs = torch.from_numpy(np.asarray(frames[rows[i : i + batch]])).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out.append(encoder(obs).float().cpu().numpy())
    return np.concatenate(out)


def feature_statistics(
    encoder: nn.Module, frames: np.ndarray, device: torch.device, measure_bf16: bool, batch: int = 256
) -> dict:
    """Per-dimension ``mean`` and ``std`` (tensors) of ``encoder``'s float32 features on up to
    ``STATISTICS_FRAMES`` of ``frames``, and how many frames that was.

    With ``measure_bf16`` it adds ``bf16_error_over_spread``: the RMS difference between the features
    computed under bf16 autocast and in float32, over their RMS spread across frames. Features that
    barely vary can drown in bf16's rounding (8 bits of mantissa): above a few percent, the agent
    computes them in float32.
    """
    rows = evenly_spaced(len(frames), STATISTICS_FRAMES)
    f32 = encode(encoder, frames, rows, batch, device, bf16=False).astype(np.float64)
    var = f32.var(0)
    stats = {
        "mean": torch.from_numpy(f32.mean(0)).float(),
        "std": torch.from_numpy(np.sqrt(var + EPS * max(var.mean(), 1e-30))).float(),
        "frames": len(rows),
    }
    if measure_bf16:
        low = encode(encoder, frames, rows, batch, device, bf16=True).astype(np.float64)
        stats["bf16_error_over_spread"] = float(np.sqrt(((low - f32) ** 2).mean() / max(var.mean(), 1e-30)))
    return stats
