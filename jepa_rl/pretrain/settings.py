"""Pretraining's settings (the ``pretrain`` group, with its frames, masks and predictor): each is its config
group's schema, and checks its own ranges when it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jepa_rl.ranges import require, require_positive_fields


@dataclass
class FramesSettings:
    """``pretrain.frames`` and ``probe.frames``: a frame set collected through the shared pipeline."""

    num_frames: int = 100_000  # observations kept
    keep_every: int = 4  # keep every k-th agent step (consecutive stacks are near duplicates)
    num_envs: int = 8  # environments played in parallel
    seed: int = 0  # emulator seed of the collection
    policy_checkpoint: str | None = None  # a PPO checkpoint.pt whose policy is mixed with the random one
    policy_fraction: float = 0.0  # per step and env: probability of taking the checkpoint policy's action

    def __post_init__(self) -> None:
        require_positive_fields(self, "num_frames", "keep_every", "num_envs")
        require(self.seed >= 0, f"seed={self.seed} must be >= 0")
        require(0 <= self.policy_fraction <= 1, f"policy_fraction={self.policy_fraction} must be in [0, 1]")
        require(
            self.policy_fraction == 0 or bool(self.policy_checkpoint and Path(self.policy_checkpoint).is_file()),
            f"policy_fraction={self.policy_fraction} needs policy_checkpoint=PATH to a PPO checkpoint.pt "
            f"(got {self.policy_checkpoint})",
        )


@dataclass
class MasksSettings:
    """``pretrain.masks``: I-JEPA's multi-block masks on the patch grid (checked by ``masks.MaskConfig``)."""

    num_targets: int = 4  # target blocks per frame
    target_scale: list[float] = field(default_factory=lambda: [0.15, 0.2])  # area of a target block, U(lo, hi)
    target_aspect: list[float] = field(default_factory=lambda: [0.75, 1.5])  # its height / width, U(lo, hi)
    context_scale: list[float] = field(default_factory=lambda: [0.85, 1.0])  # area of the context block
    min_context: int = 4  # fewest context patches a sample may keep


@dataclass
class PredictorSettings:
    """``pretrain.predictor``: the JEPA predictor, which is also the autoencoder's pixel decoder."""

    width: int = 96  # token width (narrower than the encoder's)
    depth: int = 2  # transformer blocks
    heads: int = 3  # attention heads (must divide width)


@dataclass
class PretrainSettings:
    """``pretrain``: self-supervised pretraining for encoder=jepa / encoder=ae (both share all of it)."""

    seed: int = 0  # the encoder's own seed: PPO seeds share one encoder (pretrain.seed=${seed}: one each)
    frames: FramesSettings = field(default_factory=FramesSettings)  # clean frames it learns from
    epochs: int = 100  # passes over the frames
    batch_size: int = 256  # frames per step
    lr: float = 5.0e-4  # peak, after a linear warmup from start_lr; cosine decay to final_lr
    start_lr: float = 1.0e-4  # learning rate at step 0
    final_lr: float = 1.0e-6  # learning rate at the last step
    warmup: float = 0.1  # fraction of the steps spent in the linear warmup (I-JEPA: 40 of 300 epochs)
    weight_decay: float = 0.04  # AdamW, rising to final_weight_decay on a cosine (I-JEPA)
    final_weight_decay: float = 0.4  # weight decay at the last step
    ema_start: float = 0.996  # target-encoder EMA momentum, linear to ema_end (I-JEPA); presets lower it so
    # that the kept encoder holds under 1% of its random init (pretrain/ema_initial_share)
    ema_end: float = 1.0  # EMA momentum at the last step
    norm_pix: bool = True  # ae: each target patch's pixels standardised (MAE's norm_pix_loss); false: raw [0, 1]
    vc_weight: float = 0.0  # weight of VICReg's variance + covariance terms on the pooled context features (C-JEPA)
    masks: MasksSettings = field(default_factory=MasksSettings)  # I-JEPA multi-block masks
    predictor: PredictorSettings = field(default_factory=PredictorSettings)  # predictor = pixel decoder shape
    autocast: str = "auto"  # auto (bf16 on a CPU with AVX512-BF16/AMX, else float32) | bf16 | none
    log_every: int = 20  # steps between pretrain/ metrics

    def __post_init__(self) -> None:
        require_positive_fields(self, "epochs", "batch_size", "log_every")
        for name in ("lr", "start_lr", "final_lr", "weight_decay", "final_weight_decay", "vc_weight"):
            require(getattr(self, name) >= 0, f"{name}={getattr(self, name)} must be >= 0")
        require(0 <= self.warmup < 1, f"warmup={self.warmup} (a fraction of the steps) must be in [0, 1)")
        require(0 < self.ema_start <= 1, f"ema_start={self.ema_start} must be in (0, 1] (1: a fixed target)")
        require(
            self.ema_start <= self.ema_end <= 1,
            f"ema_end={self.ema_end} must lie in [ema_start={self.ema_start}, 1]",
        )
