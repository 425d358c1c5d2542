"""The self-supervised objectives of the ViT encoder: I-JEPA, and a masked-pixel autoencoder control.

Both objectives see the same frames, the same encoder, the same multi-block masks and the same
narrow transformer on top of the context tokens; they differ only in what that transformer
predicts at the target positions:

- ``jepa`` (Assran et al. 2023): the layer-normed patch features of an EMA target encoder that
  sees the whole frame; smooth-L1 loss. The target encoder is the one kept for RL (as I-JEPA
  evaluates it).
- ``ae``: the target patches' pixels (12x12x4 values in [0, 1]); mean-squared error.

Deviations from I-JEPA and why:
- 7x7 patch grid (84x84 frames, patch 12) instead of 14x14: masks keep I-JEPA's scales and
  aspect ratios, so a target block is about 3x3 patches.
- Predictor: 2 layers of width 96 (I-JEPA: 12 layers of width 384 for a ViT-H); the encoder
  here has 4 layers, and the predictor must stay narrower and shallower than it.
- Learned position embeddings (I-JEPA: fixed 2-D sin-cos); with 49 positions they are cheap to learn.
- No random resized crops: a crop moves the paddle and ball, which are what RL needs.
- Collapse indicator: the per-dimension standard deviation, across the batch, of the
  mean-pooled context features (collapse drives it to 0).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from jepa_rl.config.checks import require_positive
from jepa_rl.encoders import TransformerBlock, ViTEncoder
from jepa_rl.masks import apply_masks

OBJECTIVES = ("jepa", "ae")


class Predictor(nn.Module):
    """Narrow transformer: context tokens plus mask tokens at the target positions -> one output per target.

    Input ``context [B, K, D]`` with patch indices ``context_idx [B, K]``, ``target_idx [B, M]``;
    output ``[B, M, out_dim]``.
    """

    def __init__(
        self, num_patches: int, in_dim: int, width: int, depth: int, heads: int, out_dim: int, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        require_positive(predictor_width=width, predictor_depth=depth, predictor_heads=heads)
        self.embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, width))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, out_dim)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor) -> torch.Tensor:
        pos = self.pos_embed.expand(len(context), -1, -1)
        x = self.embed(context) + apply_masks(pos, context_idx)
        queries = self.mask_token + apply_masks(pos, target_idx)
        x = torch.cat([x, queries], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, context.shape[1] :]))


def patchify(obs: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/p)*(W/p), C*p*p]`` patches in row-major order (the ViT's token order)."""
    B, C, H, W = obs.shape
    x = obs.reshape(B, C, H // patch, patch, W // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(B, (H // patch) * (W // patch), C * patch * patch)


class MaskedPretrainer(nn.Module):
    """The encoder, the predictor (or pixel decoder) and, for JEPA, the EMA target encoder; one ``loss`` per batch."""

    def __init__(
        self, encoder: ViTEncoder, objective: str, predictor_width: int, predictor_depth: int, predictor_heads: int
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r}; choose one of {', '.join(OBJECTIVES)}")
        self.objective, self.encoder = objective, encoder
        patch = encoder.patch_embed.kernel_size[0]
        out_dim = encoder.feature_dim if objective == "jepa" else encoder.patch_embed.in_channels * patch * patch
        self.predictor = Predictor(
            encoder.num_patches, encoder.feature_dim, predictor_width, predictor_depth, predictor_heads, out_dim
        )
        self.target_encoder = None
        if objective == "jepa":
            self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)

    def loss(
        self, obs: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, context features [B, K, D])`` for uint8 frames ``obs [B, C, 84, 84]`` and masks.

        ``target_idx`` is ``[B, T, M]``: every target block is predicted from the whole context.
        """
        B, T, M = target_idx.shape
        context = self.encoder.tokens(obs, keep=context_idx)  # [B, K, D]
        rep = context.repeat_interleave(T, dim=0)  # [B*T, K, D], block t of sample b at row b*T + t
        pred = self.predictor(rep, context_idx.repeat_interleave(T, dim=0), target_idx.flatten(0, 1)).float()
        if self.objective == "jepa":
            with torch.no_grad():
                h = self.target_encoder.tokens(obs).float()
                h = F.layer_norm(h, h.shape[-1:])  # I-JEPA normalises the targets once more
                target = apply_masks(h, target_idx.flatten(1)).reshape(B * T, M, -1)  # row b*T + t: block t of b
            return F.smooth_l1_loss(pred, target), context
        pixels = patchify(obs.float() / 255.0, self.encoder.patch_embed.kernel_size[0])
        target = apply_masks(pixels, target_idx.flatten(1)).reshape(B * T, M, -1)
        return F.mse_loss(pred, target), context

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the target encoder towards the context encoder (JEPA only)."""
        if self.target_encoder is None:
            return
        targets = list(self.target_encoder.parameters())
        torch._foreach_lerp_(targets, list(self.encoder.parameters()), 1.0 - momentum)

    def pretrained_encoder(self) -> ViTEncoder:
        """The encoder RL uses: the EMA target encoder for JEPA, the encoder itself for the autoencoder."""
        return self.target_encoder if self.target_encoder is not None else self.encoder


def make_pretrainer(net_cfg: Mapping[str, Any], objective: str, predictor: Any) -> MaskedPretrainer:
    """Build the encoder from ``encoder.net`` and the pretrainer around it (``predictor``: width, depth, heads)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective} is not an objective; choose {' or '.join(OBJECTIVES)} (or null)")
    encoder = instantiate(net_cfg)
    if not isinstance(encoder, ViTEncoder):
        raise ValueError(f"objective={objective} pretrains a ViT; this net is a {type(encoder).__name__}")
    return MaskedPretrainer(encoder, objective, predictor.width, predictor.depth, predictor.heads)
