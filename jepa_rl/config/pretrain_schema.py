"""Typed schemas of pretraining's and probing's settings (``pretrain`` with its frames, masks and predictor,
and ``probe``); registered with the others by ``schema.register``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import II

from jepa_rl.probes.inputs import PROBE_INPUTS
from jepa_rl.ranges import _positive, _require


@dataclass
class FramesSchema:
    """``pretrain.frames`` and ``probe.frames``: a frame set collected through the shared pipeline."""

    num_frames: int = 100_000  # observations kept
    keep_every: int = 4  # keep every k-th agent step (consecutive stacks are near duplicates)
    num_envs: int = 8  # environments played in parallel
    seed: int = 0  # emulator seed of the collection
    policy_checkpoint: str | None = None  # a PPO checkpoint.pt whose policy is mixed with the random one
    policy_fraction: float = 0.0  # per step and env: probability of taking the checkpoint policy's action

    def __post_init__(self) -> None:
        _positive(self, "num_frames", "keep_every", "num_envs")
        _require(self.seed >= 0, f"seed={self.seed} must be >= 0")
        _require(0 <= self.policy_fraction <= 1, f"policy_fraction={self.policy_fraction} must be in [0, 1]")
        _require(
            self.policy_fraction == 0 or bool(self.policy_checkpoint and Path(self.policy_checkpoint).is_file()),
            f"policy_fraction={self.policy_fraction} needs policy_checkpoint=PATH to a PPO checkpoint.pt "
            f"(got {self.policy_checkpoint})",
        )


@dataclass
class MasksSchema:
    """``pretrain.masks``: I-JEPA's multi-block masks on the patch grid (checked by ``masks.MaskConfig``)."""

    num_targets: int = 4  # target blocks per frame
    target_scale: list[float] = field(default_factory=lambda: [0.15, 0.2])  # area of a target block, U(lo, hi)
    target_aspect: list[float] = field(default_factory=lambda: [0.75, 1.5])  # its height / width, U(lo, hi)
    context_scale: list[float] = field(default_factory=lambda: [0.85, 1.0])  # area of the context block
    min_context: int = 4  # fewest context patches a sample may keep


@dataclass
class PredictorSchema:
    """``pretrain.predictor``: the JEPA predictor, which is also the autoencoder's pixel decoder."""

    width: int = 96  # token width (narrower than the encoder's)
    depth: int = 2  # transformer blocks
    heads: int = 3  # attention heads (must divide width)


@dataclass
class PretrainSchema:
    """``pretrain``: self-supervised pretraining for encoder=jepa / encoder=ae (both share all of it)."""

    seed: int = 0  # the encoder's own seed: PPO seeds share one encoder (pretrain.seed=${seed}: one each)
    frames: FramesSchema = field(default_factory=FramesSchema)  # clean frames it learns from
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
    masks: MasksSchema = field(default_factory=MasksSchema)  # I-JEPA multi-block masks
    predictor: PredictorSchema = field(default_factory=PredictorSchema)  # predictor = pixel decoder shape
    autocast: str = "auto"  # auto (bf16 on a CPU with AVX512-BF16/AMX, else float32) | bf16 | none
    log_every: int = 20  # steps between pretrain/ metrics

    def __post_init__(self) -> None:
        _positive(self, "epochs", "batch_size", "log_every")
        for name in ("lr", "start_lr", "final_lr", "weight_decay", "final_weight_decay", "vc_weight"):
            _require(getattr(self, name) >= 0, f"{name}={getattr(self, name)} must be >= 0")
        _require(0 <= self.warmup < 1, f"warmup={self.warmup} (a fraction of the steps) must be in [0, 1)")
        _require(0 < self.ema_start <= 1, f"ema_start={self.ema_start} must be in (0, 1] (1: a fixed target)")
        _require(
            self.ema_start <= self.ema_end <= 1,
            f"ema_end={self.ema_end} must lie in [ema_start={self.ema_start}, 1]",
        )


PROBED = ("cnn", "vit", "jepa", "ae", "jepa_cnn", "ae_cnn")  # conf/config.yaml's `encoders` but jepa_p6


@dataclass
class ProbeSchema:
    """``probe``: linear probes of frozen features for RAM game-state variables (AtariARI), clean and perturbed."""

    encoders: list[str] = field(default_factory=lambda: list(PROBED))  # names under `encoders`
    # A PPO checkpoint.pt per encoder: probe that trained agent's encoder; null: a pretrained encoder
    # uses its pretrained weights, cnn/vit a random init.
    checkpoints: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(PROBED))
    frames: FramesSchema = field(default_factory=lambda: FramesSchema(num_frames=20_000, seed=1000))  # held out
    test_fraction: float = 0.2  # fraction of games (not frames) held out to score the probes
    min_entropy: float = 0.6  # nats: variables of lower label entropy are not probed (AtariARI; 0: probe all)
    # Features the probes are fit on: best (per variable, standardised or whitened, whichever fits the
    # validation games better), standardised (per dimension) or whitened (PCA on the training frames).
    inputs: str = "best"
    suite: list[str] = II("eval.suite")  # the test frames are replayed under each of these perturbations
    batch_size: int = 512  # frames per encoder forward pass
    neighbours: int = 5  # neighbours per query in the nearest-neighbour figure

    def __post_init__(self) -> None:
        _require(0 < self.test_fraction < 1, f"test_fraction={self.test_fraction} must be in (0, 1)")
        _require(self.min_entropy >= 0, f"min_entropy={self.min_entropy} must be >= 0 (0 probes every variable)")
        _require(self.inputs in PROBE_INPUTS, f"inputs={self.inputs} must be one of {', '.join(PROBE_INPUTS)}")
        _positive(self, "batch_size", "neighbours")
        _require(len(self.encoders) > 0, "encoders is empty; list encoders to probe, e.g. probe.encoders=[cnn,jepa]")
        _require(len(self.suite) > 0, "suite is empty; list perturbations, e.g. probe.suite=[clean,noise]")
