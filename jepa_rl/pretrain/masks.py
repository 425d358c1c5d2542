"""I-JEPA multi-block masks on the ViT patch grid, sampled for a whole batch at once.

For every sample: ``num_targets`` target blocks (a shared size, drawn by area ``target_scale``
and aspect ratio ``target_aspect``, each at its own random position) and one context block
(area ``context_scale``, square), from which every target patch is removed. Sizes are drawn
once per batch, as I-JEPA's collator does, so that index tensors are rectangular: targets are
``[B, num_targets, h*w]``; the context keeps the same number ``K`` of patches in every sample
(the smallest count in the batch, a random subset where a sample has more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskConfig:
    """Block-masking geometry on a ``grid x grid`` patch grid (``pretrain.masks``; I-JEPA's values are
    ``MasksSettings``'s defaults)."""

    grid: int
    num_targets: int
    target_scale: tuple[float, float]
    target_aspect: tuple[float, float]
    context_scale: tuple[float, float]
    min_context: int

    def __post_init__(self) -> None:
        if self.num_targets < 1 or self.min_context < 1:
            raise ValueError("masks: num_targets and min_context must be >= 1")
        if not 0 < self.target_scale[0] <= self.target_scale[1] < 1:
            raise ValueError(f"masks: target_scale={self.target_scale} must satisfy 0 < low <= high < 1")
        if not 0 < self.context_scale[0] <= self.context_scale[1] <= 1:
            raise ValueError(f"masks: context_scale={self.context_scale} must satisfy 0 < low <= high <= 1")
        # Configurations that can never leave a context are rejected here; rare unlucky draws are redrawn.
        ch, cw = self.block_shape(self.context_scale[1], 1.0)
        th, tw = self.block_shape(self.target_scale[0], 1.0)
        if min(ch * cw, self.grid * self.grid - th * tw) < self.min_context:
            raise ValueError(
                f"masks: a {ch}x{cw} context block minus a {th}x{tw} target block leaves fewer than "
                f"min_context={self.min_context} patches; raise context_scale or lower target_scale"
            )

    def block_shape(self, scale: float, aspect: float) -> tuple[int, int]:
        """(height, width) in patches of a block covering ``scale`` of the grid with ratio h/w = ``aspect``."""
        area = scale * self.grid * self.grid
        h = max(1, min(self.grid, round(math.sqrt(area * aspect))))
        w = max(1, min(self.grid, round(math.sqrt(area / aspect))))
        return h, w


def _blocks(batch: int, count: int, h: int, w: int, grid: int, gen: torch.Generator) -> torch.Tensor:
    """Boolean masks ``[B, count, grid*grid]`` of ``h x w`` blocks at random positions."""
    top = torch.randint(0, grid - h + 1, (batch, count, 1), generator=gen)
    left = torch.randint(0, grid - w + 1, (batch, count, 1), generator=gen)
    pos = torch.arange(grid)
    rows = (pos >= top) & (pos < top + h)  # [B, count, grid]
    cols = (pos >= left) & (pos < left + w)
    return (rows[..., :, None] & cols[..., None, :]).flatten(-2)


def sample_masks(batch: int, cfg: MaskConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Context indices ``[B, K]`` and target indices ``[B, num_targets, h*w]`` (patch numbers, row-major)."""
    n = cfg.grid * cfg.grid

    def uniform(lo_hi: tuple[float, float]) -> float:
        return float(lo_hi[0] + (lo_hi[1] - lo_hi[0]) * torch.rand((), generator=gen))

    th, tw = cfg.block_shape(uniform(cfg.target_scale), uniform(cfg.target_aspect))
    ch, cw = cfg.block_shape(uniform(cfg.context_scale), 1.0)
    targets = _blocks(batch, cfg.num_targets, th, tw, cfg.grid, gen)  # [B, T, N]
    context = _blocks(batch, 1, ch, cw, cfg.grid, gen)[:, 0] & ~targets.any(1)  # [B, N]
    for _ in range(20):  # redraw the blocks of the (rare) samples whose context is too small
        small = context.sum(1) < cfg.min_context
        if not small.any():
            break
        targets[small] = _blocks(int(small.sum()), cfg.num_targets, th, tw, cfg.grid, gen)
        context[small] = _blocks(int(small.sum()), 1, ch, cw, cfg.grid, gen)[:, 0] & ~targets[small].any(1)
    else:
        raise RuntimeError(
            f"masks: a {ch}x{cw} context block minus {cfg.num_targets} target blocks of {th}x{tw} keeps fewer than "
            f"min_context={cfg.min_context} patches in most draws; raise context_scale or lower target_scale "
            "or num_targets"
        )
    keep = int(context.sum(1).min())
    target_idx = targets.nonzero()[:, 2].reshape(batch, cfg.num_targets, th * tw)
    # A random subset of K allowed patches per sample, in patch order.
    scores = torch.rand(batch, n, generator=gen).masked_fill(~context, -1.0)
    context_idx = scores.topk(keep, dim=1).indices.sort(dim=1).values
    return context_idx, target_idx
