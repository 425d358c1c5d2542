"""The transformer parts shared by the ViT encoder and the JEPA predictor: blocks, position embeddings, init."""

from __future__ import annotations

import math

import torch
from torch import nn

from jepa_rl.ranges import require_positive

POSITION_EMBEDDINGS = ("sincos", "learned")


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``; shapes ``[B, N, D]``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        require_positive(width=dim, heads=heads, mlp_ratio=mlp_ratio)
        if dim % heads:
            raise ValueError(f"heads={heads} must divide the width {dim}; choose a divisor of {dim}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, H, N, D/H]
        x = x + self.proj(attn.transpose(1, 2).reshape(B, N, D))
        return x + self.mlp(self.norm2(x))


def sincos_position_embedding(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos embedding ``[grid * grid, dim]`` of a row-major patch grid (MAE's and I-JEPA's):
    the first half of the channels encodes the row, the second half the column, each as sines and
    cosines of geometrically spaced frequencies."""
    if dim % 4:
        raise ValueError(f"a sin-cos position embedding needs a width divisible by 4, not {dim}; use pos_embed=learned")
    quarter = dim // 4
    frequencies = 1.0 / 10_000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    angles = torch.arange(grid, dtype=torch.float64)[:, None] * frequencies  # [grid, dim / 4]
    axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # [grid, dim / 2]: one coordinate
    rows, cols = axis[:, None].expand(grid, grid, -1), axis[None].expand(grid, grid, -1)
    return torch.cat([rows, cols], dim=-1).reshape(grid * grid, dim).float()


def position_embedding(module: nn.Module, kind: str, grid: int, dim: int, scale: float = 1.0) -> None:
    """Give ``module`` a ``pos_embed`` of shape ``[1, grid * grid, dim]``: a fixed sin-cos buffer, or a
    learned parameter (trunc-normal 0.02), either times ``scale``. The buffer is saved with the
    weights, so a state_dict has the same keys either way."""
    if kind not in POSITION_EMBEDDINGS:
        raise ValueError(f"pos_embed={kind} must be one of {', '.join(POSITION_EMBEDDINGS)}")
    if kind == "sincos":
        module.register_buffer("pos_embed", sincos_position_embedding(grid, dim)[None] * scale)
    else:
        module.pos_embed = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, grid * grid, dim), std=0.02 * scale))


def init_like_ijepa(module: nn.Module, blocks: nn.ModuleList) -> None:
    """I-JEPA's initialisation: trunc-normal(0.02) weights and zero biases for linear and convolutional
    layers, unit LayerNorms, and each block's two residual projections divided by sqrt(2 * layer), so
    that the residual stream's variance does not grow with depth."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer, block in enumerate(blocks, 1):
            block.proj.weight.div_(math.sqrt(2 * layer))
            block.mlp[2].weight.div_(math.sqrt(2 * layer))


def apply_masks(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather tokens: ``x`` ``[B, N, D]`` and ``idx`` ``[B, K]`` -> ``[B, K, D]``."""
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))
