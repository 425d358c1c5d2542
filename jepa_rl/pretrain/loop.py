"""The pretraining loop shared by both objectives (``objectives``): I-JEPA's schedules, AdamW, resumable.

Learning rate: linear warmup then cosine decay; weight decay: cosine rise; EMA momentum: linear
(I-JEPA's, as pure functions of the step in ``schedules``, so a resumed run continues them). A
partial checkpoint every ``checkpoint_every`` steps lets a killed or preempted run resume.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jepa_rl.pretrain.diagnostics import pretrainer_diagnostics
from jepa_rl.pretrain.masks import MaskConfig, sample_masks
from jepa_rl.pretrain.objectives import MaskedPretrainer, make_pretrainer, variance_covariance
from jepa_rl.pretrain.schedules import ema_initial_share, ema_momentum, warmup_cosine
from jepa_rl.pretrain.settings import MasksSettings, PretrainSettings
from jepa_rl.runtime import preemption
from jepa_rl.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jepa_rl.runtime.progress import Progress

log = logging.getLogger(__name__)


def mask_config(masks: MasksSettings, grid: int) -> MaskConfig:
    """``pretrain.masks`` on a ``grid x grid`` patch grid -> ``MaskConfig`` (which checks the geometry)."""
    return MaskConfig(
        grid=grid,
        num_targets=masks.num_targets,
        target_scale=tuple(masks.target_scale),
        target_aspect=tuple(masks.target_aspect),
        context_scale=tuple(masks.context_scale),
        min_context=masks.min_context,
    )


def set_schedules(optimizer: torch.optim.Optimizer, cfg: PretrainSettings, step: int, total: int) -> float:
    """Learning rate (warmup then cosine) and weight decay (cosine rise, I-JEPA) for ``step``; returns the lr."""
    warmup = round(cfg.warmup * total)
    lr = warmup_cosine(step, total, warmup, cfg.lr, cfg.start_lr, cfg.final_lr)
    progress = min(step / max(total, 1), 1.0)
    wd_end, wd_start = cfg.final_weight_decay, cfg.weight_decay
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


def batches(
    frames: np.ndarray,
    batch: int,
    epochs: int,
    seed: int,
    device: torch.device,
    skip: int = 0,
    later: np.ndarray | None = None,
):
    """Yield ``(epoch, uint8 batch [B, C, 84, 84], later batch or None)``: shuffled, full batches only,
    ``epochs`` passes.

    ``later`` (``frame_sets.later_rows``): only frames with a later one (``>= 0``) are drawn, each
    with it. Each epoch's order comes from its own seed, so a resumed run can ``skip`` the batches it has done.
    """
    anchors = torch.arange(len(frames)) if later is None else torch.from_numpy(np.flatnonzero(later >= 0))
    on_device = torch.from_numpy(np.asarray(frames)).to(device) if device.type == "cuda" else None
    per_epoch = len(anchors) // batch

    def rows(idx: torch.Tensor) -> torch.Tensor:
        if on_device is not None:
            return on_device[idx.to(device, non_blocking=True)]  # no wait for the GPU's queue
        return torch.from_numpy(frames[idx.numpy()])

    for epoch in range(skip // per_epoch, epochs):
        order = torch.randperm(len(anchors), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for i in range(max(skip - epoch * per_epoch, 0), per_epoch):
            idx = anchors[order[i * batch : (i + 1) * batch]].sort().values  # sorted: sequential reads of a memory map
            yield epoch, rows(idx), None if later is None else rows(torch.from_numpy(later[idx.numpy()]))


def train_step(
    model: MaskedPretrainer,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    masks: MaskConfig,
    gen: torch.Generator,
    momentum: float,
    bf16: bool,
    later: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch (targets from ``later`` when given): fresh masks, loss, update,
    EMA of the target. Returns (loss, context)."""
    # non_blocking: a plain copy to the GPU waits for every queued kernel, so the CPU could not run ahead.
    context_idx, target_idx = (m.to(obs.device, non_blocking=True) for m in sample_masks(len(obs), masks, gen))
    with torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, context = model.loss(obs, context_idx, target_idx, later)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.update_target(momentum)
    return loss.detach(), context.detach()


def resume_pretraining(checkpoint: Path | None, model: nn.Module, optimizer, gen: torch.Generator) -> tuple[int, list]:
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
    target: str,
    cfg: PretrainSettings,
    device: torch.device,
    bf16: bool,
    log_fn: Callable[[dict[str, float], int], None] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
    later: np.ndarray | None = None,
) -> tuple[dict[str, torch.Tensor], list[dict[str, float]], dict[str, float]]:
    """Train on ``frames`` (``[N, C, 84, 84]`` uint8) for ``cfg.epochs`` with ``objective`` and ``target``
    (``encoder.objective``, ``encoder.target``); returns the kept encoder's
    state_dict, the log rows and ``diagnostics.pretrainer_diagnostics`` at the end.

    ``bf16``: run under bf16 autocast (the resolved ``pretrain.autocast``). ``log_fn(metrics, step)``
    receives the ``pretrain/`` metrics every ``cfg.log_every`` steps. With ``checkpoint``, the state is
    saved there every ``checkpoint_every`` steps and a rerun resumes from it. ``later``
    (``frame_sets.later_rows``): the targets come from each frame's later one.
    """
    gen = torch.Generator().manual_seed(cfg.seed)  # masks
    torch.manual_seed(cfg.seed)
    model = make_pretrainer(net_cfg, objective, target, cfg).to(device).train()
    masks = mask_config(cfg.masks, model.encoder.grid)
    optimizer = make_adamw(model)
    usable = len(frames) if later is None else int((later >= 0).sum())
    batch = min(cfg.batch_size, usable)
    total = cfg.epochs * (usable // batch)
    done, rows = resume_pretraining(checkpoint, model, optimizer, gen)
    kept = ema_initial_share(done, total, cfg.ema_start, cfg.ema_end)  # of the init, in the target: a running product
    warn_if_the_target_keeps_its_init(total, cfg)
    start = time.perf_counter()
    # With a checkpoint to write, a cluster's preemption signal waits for the end of the step.
    with preemption.deferred() if checkpoint is not None else contextlib.nullcontext():
        steps = batches(frames, batch, cfg.epochs, cfg.seed, device, done, later)
        progress = Progress(f"pretrain {objective}", total, "steps", initial=done, first=True)
        for step, (epoch, obs, later_obs) in enumerate(steps, done + 1):
            lr = set_schedules(optimizer, cfg, step - 1, total)
            momentum = ema_momentum(step - 1, total, cfg.ema_start, cfg.ema_end)
            loss, context = train_step(model, optimizer, obs, masks, gen, momentum, bf16, later_obs)
            kept *= momentum
            progress.update()
            if step % cfg.log_every == 0 or step == total:
                elapsed = time.perf_counter() - start
                rows.append(log_row(step, epoch, loss, lr, momentum, context, (step - done) * batch / elapsed))
                rows[-1]["pretrain/ema_initial_share"] = kept
                if cfg.vc_weight:  # the loss includes it times vc_weight
                    rows[-1]["pretrain/variance_covariance"] = variance_covariance(context.mean(1)).item()
                if log_fn:
                    log_fn(rows[-1], step)
                shown = "loss {:.4f}  feature std {:.3f}  {:.0f} frames/s".format(
                    *(rows[-1][f"pretrain/{k}"] for k in ("loss", "feature_std", "frames_per_sec"))
                )
                progress.note(shown)
                log.info("pretrain %s step %d/%d  %s", objective, step, total, shown)  # every log_every steps
            periodic = step % checkpoint_every == 0 and step < total  # the last step's state becomes the encoder
            if checkpoint is not None and (periodic or preemption.pending()):
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "rows": rows}
                save_checkpoint({**state, "mask_rng": gen.get_state()}, checkpoint)
                preemption.hand_over()  # when a cluster signal asked for this checkpoint
        progress.close()
    state = {k: v.detach().cpu() for k, v in model.pretrained_encoder().state_dict().items()}
    return state, rows, pretrainer_diagnostics(model, frames, masks, device, later=later)


def warn_if_the_target_keeps_its_init(total: int, cfg: PretrainSettings) -> None:
    """The kept (EMA target) encoder should hold under 1% of its random init by the last step."""
    share = ema_initial_share(total, total, cfg.ema_start, cfg.ema_end)
    if share > 0.01:
        log.warning(
            "after %d steps with ema_start=%s, the kept encoder will still be %.0f%% its random init; "
            "lower pretrain.ema_start (or pretrain for more steps) to bring it under 1%%",
            total,
            cfg.ema_start,
            100 * share,
        )


def log_row(step: int, epoch: int, loss: torch.Tensor, lr: float, momentum: float, context: torch.Tensor, fps: float):
    """The ``pretrain/`` metrics of a logged step; ``feature_std`` is the collapse indicator (the
    per-dimension std, across the batch, of the mean-pooled context features; collapse drives it to 0)."""
    return {
        "pretrain/step": step,
        "pretrain/epoch": epoch,
        "pretrain/loss": loss.item(),
        "pretrain/lr": lr,
        "pretrain/ema_momentum": momentum,
        "pretrain/feature_std": context.float().mean(1).std(0).mean().item(),
        "pretrain/frames_per_sec": fps,
    }
