"""The self-supervised objectives of the encoders: I-JEPA, and a masked-pixel autoencoder control.

Both objectives see the same frames, the same encoder, the same multi-block masks, the same narrow
transformer on top of the context tokens and the same EMA target encoder, which is the one kept for
RL (as I-JEPA evaluates it). They differ only in what that transformer predicts at the target positions:

- ``jepa`` (Assran et al. 2023): the layer-normed tokens of the EMA target encoder, which sees the
  whole frame; smooth-L1 loss.
- ``ae``: the target patches' pixels, each patch standardised over its own pixels (MAE's
  ``norm_pix_loss``; ``pretrain.norm_pix=false``: raw values in [0, 1]); mean-squared error.

``encoder.target=residual`` removes, from either target, each position's mean over the batch and
divides by the residual's RMS: what is left is the content that the screen layout cannot predict.
``encoder.target=standardised`` divides each position's feature by its own std over the batch instead
(with a floor): the few directions that hold most of the content no longer carry the loss alone.
``encoder.target=whitened`` whitens the position-centred targets' directions (ZCA, with a floor), so
that every direction of the content counts alike.
``pretrain.vc_weight=w`` adds, times ``w``, VICReg's variance and covariance terms on the mean-pooled
context features (as C-JEPA does, Mo & Tong 2024): EMA and the predictor alone let a small encoder
collapse onto a few directions, and these terms keep every feature dimension varying across frames
(off by default: on Breakout the dimensions they keep follow the paddle,
docs/results/undated-position-scale-and-collapse.md).
``encoder.horizon=h`` takes the targets from the frame ``h`` kept frames later in the same game (a
temporal target, as V-JEPA and SPR predict); the context is still the masked frame itself. No action
conditions the prediction (SPR's does): under the random collection policy the actions carry little,
and the predictor learns the expected later frame.

Encoders: the ViT (its patch tokens) and the Nature-CNN (the 49 cells of its conv3 map, masked as
the pixels of the 12x12 patches of the same 7x7 grid: ``encoders.NatureCNN.tokens``).

Deviations from I-JEPA and why:
- 7x7 patch grid (84x84 frames, patch 12) instead of 14x14: masks keep I-JEPA's scales and
  aspect ratios, so a target block is about 3x3 patches (``encoder.net.patch_size=6``: 14x14).
- Predictor: 2 layers of width 96 (I-JEPA: 12 layers of width 384 for a ViT-H); the encoder
  here has 4 layers, and the predictor must stay narrower and shallower than it.
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
from torch import nn

from jepa_rl.models.encoders import NatureCNN, ViTEncoder, make_net
from jepa_rl.models.transformer import TransformerBlock, apply_masks, init_like_ijepa, position_embedding
from jepa_rl.ranges import require_positive

OBJECTIVES = ("jepa", "ae")
# A feature's variance floor in ``standardised``, as a share of the mean variance over every position and
# feature: a feature that barely varies at its position (a static wall's) is damped, not blown up to unit scale.
STANDARDISE_FLOOR = 1e-2
# A direction's variance floor in ``whitened``, as a share of the mean over the directions: a direction
# weaker than that is damped, not amplified. The targets are computed in bf16 on CPUs that have it, and
# its rounding adds about 0.3% of the content's mean variance (a random-init ViT on Breakout): a floor near
# that would lift rounding noise to the scale of the content.
WHITEN_FLOOR = 0.1


class Predictor(nn.Module):
    """Narrow transformer: context tokens plus mask tokens at the target positions -> one output per target.

    Input ``context [B, K, D]`` with patch indices ``context_idx [B, K]``, ``target_idx [B, M]``;
    output ``[B, M, out_dim]``. Its position embeddings are of the encoder's kind.
    """

    def __init__(
        self,
        grid: int,
        in_dim: int,
        width: int,
        depth: int,
        heads: int,
        out_dim: int,
        pos_embed: str,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        require_positive(predictor_width=width, predictor_depth=depth, predictor_heads=heads)
        self.embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        position_embedding(self, pos_embed, grid, width)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, out_dim)
        init_like_ijepa(self, self.blocks)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

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


def residual(targets: torch.Tensor) -> torch.Tensor:
    """``[B, N, D]`` targets minus each position's mean over the batch, over the residual's RMS."""
    centred = targets - targets.mean(0, keepdim=True)
    return centred / centred.square().mean().add(1e-12).sqrt()


def standardised_targets(targets: torch.Tensor) -> torch.Tensor:
    """``[B, N, D]`` targets standardised per position and feature over the batch: every feature at every
    position counts alike, so the loss cannot be met by the few directions that hold most of the variance."""
    centred = targets - targets.mean(0, keepdim=True)
    var = centred.square().mean(0, keepdim=True)
    return centred / (var + STANDARDISE_FLOOR * var.mean() + 1e-12).sqrt()


def whitened(targets: torch.Tensor) -> torch.Tensor:
    """``[B, N, D]`` targets minus each position's mean over the batch, ZCA-whitened over the batch and
    positions (each direction's variance ``v`` scaled to ``v / (v + WHITEN_FLOOR * mean v)``): every
    direction of the content counts alike, so the loss cannot be met by its strongest few."""
    with torch.autocast(targets.device.type, enabled=False):
        centred = (targets - targets.mean(0, keepdim=True)).double()
        flat = centred.flatten(0, 1)
        eigval, eigvec = torch.linalg.eigh(flat.T @ flat / len(flat))
        eigval = eigval.clamp_min(0)
        scale = (eigval + WHITEN_FLOOR * eigval.mean() + 1e-30).rsqrt()
        return (centred @ (eigvec * scale) @ eigvec.T).to(targets.dtype)


TARGETS = {"tokens": lambda h: h, "residual": residual, "standardised": standardised_targets, "whitened": whitened}


def variance_covariance(features: torch.Tensor) -> torch.Tensor:
    """VICReg's anti-collapse terms (Bardes et al. 2022) on ``[B, F]`` features: a hinge on each
    dimension's std across the batch below 1, plus the squared off-diagonal covariances summed over
    ``F``, at VICReg's 25:1 weighting of the two."""
    with torch.autocast(features.device.type, enabled=False):  # a covariance in bf16 loses its small entries
        centred = features.float() - features.float().mean(0)
        variance = F.relu(1.0 - centred.var(0).add(1e-4).sqrt()).mean()
        cov = centred.T @ centred / (len(features) - 1)
        off_diagonal = cov.masked_fill(torch.eye(len(cov), dtype=torch.bool, device=cov.device), 0.0)
        return variance + off_diagonal.square().sum() / features.shape[1] / 25


class MaskedPretrainer(nn.Module):
    """The encoder, the predictor (or pixel decoder) and the EMA target encoder; one ``loss`` per batch."""

    def __init__(
        self,
        encoder: ViTEncoder | NatureCNN,
        objective: str,
        predictor: Mapping[str, int],
        norm_pix: bool,
        target: str,
        vc_weight: float,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if target not in TARGETS:
            raise ValueError(f"target={target} must be one of {', '.join(TARGETS)}")
        self.objective, self.encoder, self.norm_pix, self.target = objective, encoder, norm_pix, target
        self.vc_weight = vc_weight
        pixels = encoder.in_channels * encoder.patch_size**2
        self.predictor = Predictor(
            encoder.grid,
            encoder.token_dim,
            predictor["width"],
            predictor["depth"],
            predictor["heads"],
            encoder.token_dim if objective == "jepa" else pixels,
            encoder.pos_embed_kind,
        )
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)

    def loss_fn(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The objective's loss: smooth-L1 on features (I-JEPA), squared error on pixels (MAE)."""
        return F.smooth_l1_loss(pred, target) if self.objective == "jepa" else F.mse_loss(pred, target)

    @torch.no_grad()
    def targets(self, obs: torch.Tensor) -> torch.Tensor:
        """What is predicted at every position of the whole frames ``obs``: ``[B, N, D_target]`` (float32)."""
        if self.objective == "jepa":
            h = self.target_encoder.tokens(obs).float()
            h = F.layer_norm(h, h.shape[-1:])  # I-JEPA normalises the targets once more
        else:
            h = patchify(obs.float() / 255.0, self.encoder.patch_size)
            if self.norm_pix:
                h = (h - h.mean(-1, keepdim=True)) / (h.var(-1, keepdim=True) + 1e-6).sqrt()
        return TARGETS[self.target](h)

    def predict(self, obs: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor):
        """``(predictions [B*T, M, D_target], context tokens [B, K, D])``: each of the ``T`` target blocks
        of ``target_idx [B, T, M]`` predicted from the whole context (block t of sample b at row b*T + t)."""
        T = target_idx.shape[1]
        # The CNN's context must not see the pixels its targets' cells are computed from (receptive fields).
        hide = {"hide": target_idx.flatten(1)} if isinstance(self.encoder, NatureCNN) else {}
        context = self.encoder.tokens(obs, keep=context_idx, **hide)  # [B, K, D]
        rep = context.repeat_interleave(T, dim=0)
        pred = self.predictor(rep, context_idx.repeat_interleave(T, dim=0), target_idx.flatten(0, 1)).float()
        return pred, context

    def loss(
        self,
        obs: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: torch.Tensor,
        later: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, context tokens [B, K, D])`` for uint8 frames ``obs [B, C, 84, 84]`` and masks; with
        ``later`` (the same games' frames ``encoder.horizon`` kept frames on), the targets are its."""
        pred, context = self.predict(obs, context_idx, target_idx)
        target = apply_masks(self.targets(obs if later is None else later), target_idx.flatten(1)).reshape(pred.shape)
        loss = self.loss_fn(pred, target)
        if self.vc_weight:
            loss = loss + self.vc_weight * variance_covariance(context.mean(1))
        return loss, context

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the target encoder towards the context encoder."""
        targets = list(self.target_encoder.parameters())
        torch._foreach_lerp_(targets, list(self.encoder.parameters()), 1.0 - momentum)

    def pretrained_encoder(self) -> ViTEncoder | NatureCNN:
        """The encoder RL uses: the EMA target encoder, for both objectives."""
        return self.target_encoder


def make_pretrainer(net_cfg: Mapping[str, Any], objective: str, target: str, settings: Any) -> MaskedPretrainer:
    """Build the encoder from ``encoder.net`` and the pretrainer around it for ``objective`` and ``target``
    (``encoder.objective``, ``encoder.target``); ``settings``: the ``pretrain`` group (its predictor's width,
    depth and heads, ``norm_pix`` and ``vc_weight``)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective} is not an objective; choose {' or '.join(OBJECTIVES)} (or null)")
    encoder = make_net(net_cfg)
    shape = {k: getattr(settings.predictor, k) for k in ("width", "depth", "heads")}
    return MaskedPretrainer(encoder, objective, shape, settings.norm_pix, target, settings.vc_weight)
