"""What an encoder learned, measured on whole frames: content against layout, feature rank, and, for a
pretrainer, its loss against a predictor that knows only the layout.

- ``content_share``: of the tokens' variance (ViT patch tokens, or the Nature-CNN's conv3 cells), the
  share around each position's mean over the frames. The rest is the screen layout: what a token
  holds because of where it is, not because of what the frame shows.
- ``effective_rank``: exp of the entropy of the normalised eigenvalues of the RL features'
  covariance (Roy and Vetterli 2007): how many directions the features actually use.
- ``oracle_loss`` against ``model_loss``: the objective's loss of predicting, at the same masked
  targets, each position's mean target over the frames. A model no better than it learned the layout only.
- ``weight_distance``: ||online - target|| / ||target|| over the encoder's weights (0: the EMA target
  has caught up; large: it still lags, or holds much of its initialisation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from jepa_rl.models.feature_standardisation import evenly_spaced
from jepa_rl.models.transformer import apply_masks
from jepa_rl.pretrain.masks import MaskConfig, sample_masks

FRAMES = 2048  # frames each diagnostic is measured on
BATCH = 256


def _batches(frames: np.ndarray, device: torch.device, rows: np.ndarray | None = None):
    """``FRAMES`` frames evenly spaced over the set, or over its ``rows`` (all when there are fewer),
    in batches on ``device``."""
    rows = np.arange(len(frames)) if rows is None else rows
    rows = rows[evenly_spaced(len(rows), FRAMES)]
    for i in range(0, len(rows), BATCH):
        yield torch.from_numpy(np.asarray(frames[rows[i : i + BATCH]])).to(device)


def effective_rank(features: torch.Tensor) -> float:
    """exp(entropy) of the covariance spectrum of ``[N, F]`` features (1 .. min(N, F))."""
    centred = features.double() - features.double().mean(0)
    eigen = torch.linalg.svdvals(centred).square()
    p = eigen / eigen.sum().clamp_min(1e-300)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def content_share(tokens: torch.Tensor) -> float:
    """``[N, P, D]`` tokens: variance around each position's mean over the frames / total variance."""
    tokens = tokens.double()
    around_position = (tokens - tokens.mean(0, keepdim=True)).square().mean()
    total = (tokens - tokens.mean((0, 1), keepdim=True)).square().mean()
    return float(around_position / total.clamp_min(1e-300))


@torch.no_grad()
def encoder_diagnostics(encoder: nn.Module, frames: np.ndarray, device: torch.device) -> dict[str, float]:
    """``content_share`` and ``effective_rank`` of ``encoder`` (with ``tokens`` and ``forward``) on
    ``FRAMES`` of ``frames`` (uint8 ``[N, C, 84, 84]``), in float32."""
    tokens, features = [], []
    for obs in _batches(frames, device):
        tokens.append(encoder.tokens(obs).float().cpu())
        features.append(encoder(obs).float().cpu())
    return {"content_share": content_share(torch.cat(tokens)), "effective_rank": effective_rank(torch.cat(features))}


@torch.no_grad()
def weight_distance(online: nn.Module, target: nn.Module) -> float:
    """||online - target|| / ||target|| over all parameters."""
    pairs = zip(online.parameters(), target.parameters(), strict=True)
    diff = sum(float((a.double() - b.double()).square().sum()) for a, b in pairs)
    norm = sum(float(b.double().square().sum()) for b in target.parameters())
    return (diff / max(norm, 1e-300)) ** 0.5


@torch.no_grad()
def pretrainer_diagnostics(
    model: Any,
    frames: np.ndarray,
    masks: MaskConfig,
    device: torch.device,
    seed: int = 0,
    later: np.ndarray | None = None,
) -> dict[str, float]:
    """Every diagnostic of an ``objectives.MaskedPretrainer`` on ``FRAMES`` of ``frames``, with its kept
    encoder: the above, and its loss against the position-only oracle's on the same masks (float32).
    With ``later`` (``frame_sets.later_rows``), the losses are on frames that have a later one,
    whose targets come from it, as in training."""
    was_training = model.training
    model.eval()
    anchors = None if later is None else np.flatnonzero(later >= 0)
    obs_batches = list(_batches(frames, device, anchors))
    target_frames = _batches(frames, device, None if later is None else later[anchors])
    targets = [model.targets(obs) for obs in target_frames]  # [B, N, D] each
    oracle = torch.cat(targets).mean(0, keepdim=True)  # each position's mean target over the frames
    gen, losses, oracle_losses = torch.Generator().manual_seed(seed), [], []
    for obs, target in zip(obs_batches, targets, strict=True):
        context_idx, target_idx = (m.to(device) for m in sample_masks(len(obs), masks, gen))
        pred, _ = model.predict(obs, context_idx, target_idx)
        wanted = apply_masks(target, target_idx.flatten(1)).reshape(pred.shape)
        guess = apply_masks(oracle.expand(len(obs), -1, -1), target_idx.flatten(1)).reshape(pred.shape)
        losses.append(float(model.loss_fn(pred, wanted)) * len(obs))
        oracle_losses.append(float(model.loss_fn(guess, wanted)) * len(obs))
    count = sum(len(obs) for obs in obs_batches)
    out = {
        "model_loss": sum(losses) / count,
        "oracle_loss": sum(oracle_losses) / count,
        **encoder_diagnostics(model.pretrained_encoder(), frames, device),
        "weight_distance": weight_distance(model.encoder, model.target_encoder),
    }
    model.train(was_training)
    return out
