"""Typed schemas of every config group: the single source of defaults, registered with Hydra's ConfigStore.

Each ``conf/<group>/*.yaml`` lists its schema first in its defaults (``/<group>_schema@_here_``), so it
sets only what differs from these values; Hydra then rejects unknown keys and values of the wrong type.
A schema is not applied to a YAML of the same name: each is stored under a name of its own.
Components built with ``instantiate`` (``_target_``) check their ranges in their constructors; the
settings groups (frames, pretrain, probe, eval, logger, benchmark) check theirs in ``__post_init__``,
which runs when a stage turns its group into the dataclass (``OmegaConf.to_object``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, OmegaConf

from jepa_rl.config.hydra_runtime import short_dirname
from jepa_rl.envs.pipeline import AtariSettings
from jepa_rl.evaluation.settings import EvalSettings
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.probes.settings import ProbeSettings
from jepa_rl.ranges import require, require_positive_fields
from jepa_rl.rl.ppo import PPOSettings

STAGES = ("train", "pretrain", "probe", "benchmark")


@dataclass
class PerturbationSchema:
    """``perturbation`` and each ``perturbations.<name>``: colour jitter per game, noise per frame."""

    _target_: str = "jepa_rl.envs.perturbations.VisualPerturbation"
    name: str = MISSING  # the name eval.suite and reports use
    hue: float = 0.0  # hue shift, fraction of the hue circle, U(-hue, hue)
    saturation: float = 0.0  # saturation factor U(1 - s, 1 + s)
    brightness: float = 0.0  # value offset U(-b, b) * 255
    noise_std: float = 0.0  # Gaussian noise std in 0-255 units, per pixel and channel
    corruption: str | None = None  # an ImageNet-C family of jepa_rl/envs/corruptions.py, applied last (null: none)
    severity: int = 0  # the corruption's severity, 1-5
    recolour: str | None = None  # a recolouring of the game's objects by RAM writes (jepa_rl/envs/game_shifts.py)
    mode: int | None = None  # another mode of the game (null: ALE's default)
    difficulty: int | None = None  # another difficulty of the game (null: ALE's default)


@dataclass
class NatureCNNSchema:
    """``encoder.net`` of the Nature-CNN's convolutions (its 3136 -> 512 layer is the ``head`` trunk)."""

    _target_: str = "jepa_rl.models.encoders.NatureCNN"
    in_channels: int = II("env.frame_stack")  # stacked frames in


@dataclass
class ViTSchema:
    """``encoder.net`` of the ViT-Tiny (the study's architecture)."""

    _target_: str = "jepa_rl.models.encoders.ViTEncoder"
    in_channels: int = II("env.frame_stack")  # stacked frames in
    image_size: int = 84  # observation height and width
    patch_size: int = 12  # 7x7 tokens
    width: int = 192  # token width
    depth: int = 4  # transformer blocks
    heads: int = 3  # attention heads (must divide width)
    mlp_ratio: float = 4.0  # MLP hidden width / token width
    pool: str = "mean"  # mean | attention: how patch tokens become the RL feature vector
    pos_embed: str = "sincos"  # sincos: fixed 2-D sin-cos (I-JEPA) | learned (in the encoder and its predictor)
    pos_scale: float = 1.0  # times the encoder's position embedding (docs/pretraining.md: content vs position)


@dataclass
class EncoderSchema:
    """``encoder`` (the one trained) and each ``encoders.<name>`` (for probes)."""

    name: str = MISSING  # config name: cnn, vit, jepa, ae
    freeze: bool = False  # true: keep the encoder's weights fixed, train only the heads
    lr_scale: float = 1.0  # encoder learning rate = ppo.learning_rate * lr_scale
    net: Any = MISSING  # the network (NatureCNNSchema or ViTSchema), built by instantiate
    objective: str | None = None  # jepa | ae: pretrained with it first; null: trained from scratch
    target: str = "tokens"  # with an objective: tokens | residual | standardised | whitened (objectives.py)
    horizon: int = 0  # with an objective: targets from the frame this many kept frames later in the game
    weights: str | None = None  # a file of encoder weights (state_dict) to start from instead

    def __post_init__(self) -> None:
        require(self.horizon >= 0, f"horizon={self.horizon} must be >= 0 (0: the targets of the frame itself)")


@dataclass
class HeadSchema:
    """``head``: what the agent trains on the encoder's features (checked by ``heads.PolicyHeads``)."""

    kind: str = "trunk"  # trunk: shared Linear(F, width)+ReLU, then linear heads | mlp: one per head | linear
    width: int = 512  # the trunk's (or each MLP's hidden) width; unused by linear


@dataclass
class ProbeSchema(ProbeSettings):
    """``probe``, whose replayed perturbations default to the evaluation's suite."""

    suite: list[str] = II("eval.suite")


@dataclass
class LoggerSchema:
    """``logger``: one W&B run per job (``wandb``) or none."""

    backend: str = "wandb"  # wandb | none
    project: str = "jepa-rl"  # W&B project
    entity: str | None = None  # W&B entity (team or user); null: the default one
    mode: str | None = None  # online | offline | disabled; null: WANDB_MODE, online when logged in, else offline
    group: str | None = None  # W&B group (the condition's seeds share it)
    name: str | None = None  # W&B run name
    tags: list[str] = field(default_factory=list)  # W&B tags
    init_timeout: float = 30.0  # seconds online mode may wait for the server before falling back to offline

    def __post_init__(self) -> None:
        require(self.backend in ("wandb", "none"), f"backend={self.backend} must be wandb or none")
        modes = (None, "online", "offline", "disabled")
        require(self.mode in modes, f"mode={self.mode} must be online, offline, disabled or null")
        require(self.init_timeout > 0, f"init_timeout={self.init_timeout} must be positive")


@dataclass
class BenchmarkSchema:
    """``benchmark``: what ``stage=benchmark`` measures, each ``repeats`` times (medians reported). The default
    run takes about five minutes on 2 cores; pretraining (e) and the perturbations' costs (f) are opt-in."""

    repeats: int = 3  # rounds of every measurement
    env_steps: int = 4000  # agent steps per emulator measurement
    ppo_iterations: int = 3  # PPO updates timed per measurement (after one warm-up)
    pretrain_batch: int = 256  # frames per timed pretraining step
    pretrain_steps: int = 5  # pretraining steps timed per measurement (after two warm-up)
    evaluation: bool = True  # (h): evaluation of eval.suite side by side, every game live
    eval_frames: int = 320  # (h): each game's frame cap (80 agent steps)
    # (e), opt-in: nets (names under `encoders`) whose JEPA and autoencoder steps are timed against a
    # forward+backward, e.g. [jepa,jepa_cnn,jepa_p6]
    pretrain_encoders: list[str] = field(default_factory=list)
    # (f), opt-in: suite names whose cost in the pipeline is timed, e.g. the study's and every corruption family
    # at severity 3: [clean,color_jitter,noise,mild,hard,gaussian_noise_3,...]
    perturbations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_positive_fields(
            self, "repeats", "env_steps", "ppo_iterations", "pretrain_batch", "pretrain_steps", "eval_frames"
        )


@dataclass
class JobSchema:
    """The top level of ``conf/config.yaml``: one job = one (env, encoder, seed, ...) cell."""

    stage: str = "train"  # train (pretraining first if needed, then evaluate) | pretrain | probe | benchmark
    seed: int = 1  # the run's seed (PPO, emulators, evaluation)
    device: str = "auto"  # auto (cuda if available) | cpu | cuda[:N]
    threads: int = 0  # torch and emulator threads; 0 = the launcher's CPUs per job
    env_groups: Any = "auto"  # training envs in groups overlapping emulation and acting: auto or a divisor of num_envs
    pipeline: str = "auto"  # frames perturbed, grayed, resized, stacked by: auto (torch on a GPU) | opencv | torch
    checkpoint_every: int = 500_000  # agent steps between checkpoints (one is also written at the end)
    experiment_name: str = "study"  # preset name, in paths and W&B groups
    condition: str | None = None  # a named condition of a sweep (multirun_sweeps/condition); reports group by it
    cache_dir: str = "cache"  # collected frames and pretrained encoders, shared by every job that needs them
    # The groups: each typed by its own schema above, through its YAML's defaults.
    env: Any = MISSING  # AtariSettings (jepa_rl.envs.pipeline): the game and the observation pipeline
    encoder: Any = MISSING  # EncoderSchema: the encoder PPO trains
    head: Any = MISSING  # HeadSchema: the trunk and heads PPO trains on the encoder's features
    perturbation: Any = MISSING  # PerturbationSchema: what the agent sees while TRAINING
    perturbations: dict[str, Any] = field(default_factory=dict)  # the named ones eval.suite can refer to
    encoders: dict[str, Any] = field(default_factory=dict)  # every encoder by name, for probes
    ppo: Any = MISSING  # PPOSettings (jepa_rl.rl.ppo)
    pretrain: Any = MISSING  # PretrainSettings
    probe: Any = MISSING  # ProbeSchema
    eval: Any = MISSING  # EvalSettings
    logger: Any = MISSING  # LoggerSchema
    benchmark: Any = MISSING  # BenchmarkSchema


def register() -> None:
    """Store every schema in Hydra's ConfigStore (the YAMLs name them in their defaults) and the resolvers."""
    store = ConfigStore.instance()
    store.store(name="job_schema", node=JobSchema)
    for name, node in (
        ("env", AtariSettings),
        ("perturbation", PerturbationSchema),
        ("encoder", EncoderSchema),
        ("head", HeadSchema),
        ("ppo", PPOSettings),
        ("pretrain", PretrainSettings),
        ("probe", ProbeSchema),
        ("eval", EvalSettings),
        ("logger", LoggerSchema),
        ("benchmark", BenchmarkSchema),
    ):
        store.store(name=f"{name}_schema", node=node)
    # Not a group: a group would show in --help as options of its own.
    store.store(name="nature_cnn_net_schema", node=NatureCNNSchema)
    store.store(name="vit_net_schema", node=ViTSchema)
    OmegaConf.register_new_resolver("short_dirname", short_dirname, replace=True)
