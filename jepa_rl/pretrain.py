"""Self-supervised pretraining of the ViT encoder: I-JEPA, and a masked-pixel autoencoder control.

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

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from jepa_rl import preemption
from jepa_rl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jepa_rl.encoders import TransformerBlock, ViTEncoder
from jepa_rl.masks import MaskConfig, apply_masks, sample_masks
from jepa_rl.schedules import ema_momentum, warmup_cosine
from jepa_rl.utils import use_bf16

log = logging.getLogger(__name__)

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


def mask_config(masks_cfg: Mapping[str, Any], grid: int) -> MaskConfig:
    """``pretrain.masks`` -> ``MaskConfig`` (lists become tuples)."""
    return MaskConfig(grid=grid, **{k: tuple(v) if isinstance(v, list | tuple) else v for k, v in masks_cfg.items()})


def make_pretrainer(net_cfg: Mapping[str, Any], objective: str, cfg: Mapping[str, Any]) -> MaskedPretrainer:
    """Build the encoder from ``encoder.net`` and the pretrainer around it from ``pretrain``."""
    encoder = instantiate(dict(net_cfg))
    if not isinstance(encoder, ViTEncoder):
        raise ValueError(f"pretraining needs a ViT encoder, got {type(encoder).__name__}")
    p = cfg["predictor"]
    return MaskedPretrainer(encoder, objective, p["width"], p["depth"], p["heads"])


def set_schedules(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], step: int, total: int) -> float:
    """Learning rate (warmup then cosine) and weight decay (cosine rise, I-JEPA) for ``step``; returns the lr."""
    warmup = round(cfg["warmup"] * total)
    lr = warmup_cosine(step, total, warmup, cfg["lr"], cfg["start_lr"], cfg["final_lr"])
    progress = min(step / max(total, 1), 1.0)
    wd_end, wd_start = cfg["final_weight_decay"], cfg["weight_decay"]
    wd = wd_end + 0.5 * (wd_start - wd_end) * (1 + math.cos(math.pi * progress))
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["decay"]:  # a tag, not weight_decay > 0: a schedule may start at 0
            group["weight_decay"] = wd
    return lr


def make_adamw(model: MaskedPretrainer) -> torch.optim.Optimizer:
    """AdamW; biases, norms and embeddings get no weight decay (as I-JEPA)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or "pos_embed" in name or "mask_token" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": 0.04, "decay": True},
        {"params": no_decay, "weight_decay": 0.0, "decay": False},
    ]
    # On a GPU a step is launch-bound (a ViT-Tiny on 256 frames): the fused kernel updates every tensor at once.
    fused = True if next(model.parameters()).is_cuda else None
    return torch.optim.AdamW(groups, fused=fused)


def batches(frames: np.ndarray, batch: int, epochs: int, seed: int, device: torch.device, skip: int = 0):
    """Yield ``(epoch, uint8 batch [B, C, 84, 84])``: shuffled, full batches only, ``epochs`` passes.

    Each epoch's order comes from its own seed, so a resumed run can ``skip`` the batches it has done.
    """
    on_device = torch.from_numpy(np.asarray(frames)).to(device) if device.type == "cuda" else None
    per_epoch = len(frames) // batch
    for epoch in range(skip // per_epoch, epochs):
        order = torch.randperm(len(frames), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for i in range(max(skip - epoch * per_epoch, 0), per_epoch):
            idx = order[i * batch : (i + 1) * batch].sort().values  # sorted: sequential reads of a memory map
            if on_device is not None:
                yield epoch, on_device[idx.to(device, non_blocking=True)]  # no wait for the GPU's queue
            else:
                yield epoch, torch.from_numpy(frames[idx.numpy()])


def uses_bf16(autocast: str, device: torch.device) -> bool:
    """``pretrain.autocast``: ``auto`` is bf16 on a CPU that computes it natively, float32 elsewhere.

    On a GPU a step of this small model is bound by kernel launches, and bf16 adds a cast kernel
    per weight use: float32 was 1.3x faster there (H200, the same with or without TF32 matmuls). On
    a CPU with AVX512-BF16 bf16 is the faster one; without it, bf16 is emulated (a ViT-Tiny
    forward+backward on 256 frames: 39 s against 2.2 s in float32 on an AVX2 CPU).
    """
    return use_bf16(autocast, device, on_gpu=False)


def train_step(
    model: MaskedPretrainer,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    masks: MaskConfig,
    gen: torch.Generator,
    momentum: float,
    bf16: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch: fresh masks, loss, update, EMA of the target. Returns (loss, context)."""
    # non_blocking: a plain copy to the GPU waits for every queued kernel, so the CPU could not run ahead.
    context_idx, target_idx = (m.to(obs.device, non_blocking=True) for m in sample_masks(len(obs), masks, gen))
    with torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, context = model.loss(obs, context_idx, target_idx)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.update_target(momentum)
    return loss.detach(), context.detach()


def resume_state(checkpoint: Path | None, model: nn.Module, optimizer, gen: torch.Generator) -> tuple[int, list]:
    """Load a partial pretraining checkpoint if there is a usable one: ``(steps done, log rows)``."""
    if checkpoint is None or not checkpoint.exists():
        return 0, []
    try:
        state = load_checkpoint(checkpoint)
    except CheckpointError as e:
        log.warning("ignoring the partial pretraining checkpoint: %s", e)
        return 0, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    gen.set_state(state["mask_rng"])
    log.info("resuming pretraining from %s at step %d", checkpoint, state["step"])
    return state["step"], state["rows"]


def pretrain(
    frames: np.ndarray,
    net_cfg: Mapping[str, Any],
    objective: str,
    cfg: Mapping[str, Any],
    device: torch.device,
    log_fn: Callable[[dict[str, float], int], None] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """Train on ``frames`` (``[N, C, 84, 84]`` uint8) for ``cfg["epochs"]``; returns (encoder state_dict, log rows).

    ``log_fn(metrics, step)`` receives the ``pretrain/`` metrics every ``cfg["log_every"]`` steps. With
    ``checkpoint``, the state is saved there every ``checkpoint_every`` steps and a rerun resumes from it.
    """
    gen = torch.Generator().manual_seed(cfg["seed"])  # masks
    torch.manual_seed(cfg["seed"])
    model = make_pretrainer(net_cfg, objective, cfg).to(device).train()
    masks = mask_config(cfg["masks"], model.encoder.grid)
    optimizer = make_adamw(model)
    batch = min(cfg["batch_size"], len(frames))
    total = cfg["epochs"] * (len(frames) // batch)
    done, rows = resume_state(checkpoint, model, optimizer, gen)
    bf16 = uses_bf16(cfg["autocast"], device)
    start = time.perf_counter()
    # With a checkpoint to write, a cluster's preemption signal waits for the end of the step.
    with preemption.deferred() if checkpoint is not None else contextlib.nullcontext():
        for step, (epoch, obs) in enumerate(batches(frames, batch, cfg["epochs"], cfg["seed"], device, done), done + 1):
            lr = set_schedules(optimizer, cfg, step - 1, total)
            momentum = ema_momentum(step - 1, total, cfg["ema_start"], cfg["ema_end"])
            loss, context = train_step(model, optimizer, obs, masks, gen, momentum, bf16)
            if step % cfg["log_every"] == 0 or step == total:
                row = {
                    "pretrain/step": step,
                    "pretrain/epoch": epoch,
                    "pretrain/loss": loss.item(),
                    "pretrain/lr": lr,
                    "pretrain/ema_momentum": momentum,
                    "pretrain/feature_std": context.float().mean(1).std(0).mean().item(),
                    "pretrain/frames_per_sec": (step - done) * batch / (time.perf_counter() - start),
                }
                rows.append(row)
                if log_fn:
                    log_fn(row, step)
                log.info(
                    "pretrain %s step %d/%d  loss %.4f  feature std %.3f  %.0f frames/s",
                    objective,
                    step,
                    total,
                    row["pretrain/loss"],
                    row["pretrain/feature_std"],
                    row["pretrain/frames_per_sec"],
                )
            periodic = step % checkpoint_every == 0 and step < total  # the last step's state becomes the encoder
            if checkpoint is not None and (periodic or preemption.pending()):
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "rows": rows}
                save_checkpoint({**state, "mask_rng": gen.get_state()}, checkpoint)
                preemption.hand_over()  # when a cluster signal asked for this checkpoint
    state = {k: v.detach().cpu() for k, v in model.pretrained_encoder().state_dict().items()}
    return state, rows
