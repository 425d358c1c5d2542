"""Configuration checks that run before any work: each failure is one line naming the key and the fix."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from jepa_rl.masks import MaskConfig, sample_masks
from jepa_rl.perturbations import VisualPerturbation

GROUPS = (
    "env",
    "encoder",
    "perturbation",
    "ppo",
    "pretrain",
    "probe",
    "eval",
    "logger",
    "experiment",
    "hydra/launcher",
)
# Launchers that Hydra and its plugins register in code (conf/hydra/launcher adds slurm and local).
PLUGIN_LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")
STAGES = ("train", "pretrain", "probe", "benchmark")
OBJECTIVES = ("jepa", "ae")


@dataclass
class AtariEnvSchema:
    """Typed defaults of every ``conf/env/<game>.yaml``: the shared observation pipeline (``jepa_rl.envs``)."""

    _target_: str = "jepa_rl.envs.AtariPipeline"
    name: str = "???"  # short name used in paths and W&B groups
    env_id: str = "???"  # gymnasium id of the game, reported in results.json
    game: str = "???"  # ale-py ROM name (snake_case)
    sticky_actions: float = 0.25  # repeat_action_probability (Machado et al. 2018); CleanRL's scores use 0.0
    noop_max: int = 30  # random no-ops at the start of each game
    max_frames: int = 108_000  # emulator frames per game (30 minutes of play)
    frame_skip: int = 4  # emulator frames per agent step, max-pooled over the last two
    frame_stack: int = 4
    fire_reset: bool = True  # press FIRE at the start of each game (for games that need it)
    full_action_space: bool = False


def short_dirname(name: str, limit: int = 120) -> str:
    """A path component for ``name``: itself when short, else a readable prefix and a hash (file systems cap at 255)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 17]}-{hashlib.sha1(name.encode()).hexdigest()[:16]}"


OmegaConf.register_new_resolver("short_dirname", short_dirname, replace=True)

# A schema is not applied to a YAML of the same name: each env YAML lists this one in its defaults.
ConfigStore.instance().store(name="atari_env_schema", node=AtariEnvSchema)


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


def key_values(overrides: list[str]) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of each ``key=value`` command-line override, without Hydra's ``+``/``~`` prefixes."""
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep:
            yield key.lstrip("+~"), value


def check_group_choices(overrides: list[str], conf_dir: Path) -> None:
    """Reject ``group=option`` overrides naming a file that is not in ``conf/<group>/``.

    Hydra reports these too, but in a multi-line trace; this check answers in one line.
    """
    for key, value in key_values(overrides):
        if key not in GROUPS:
            continue
        choices = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        if key == "hydra/launcher":
            choices = sorted({*choices, *PLUGIN_LAUNCHERS})
        for option in value.split(","):  # multirun sweeps list options with commas
            if option and option != "null" and option not in choices:
                raise ConfigError(f"{key}={option} is not a known option; choose one of {', '.join(choices)}")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: DictConfig) -> None:
    """Check ranges and cross-references of a composed config; raises ``ConfigError``."""
    ppo, env, ev = cfg.ppo, cfg.env, cfg.eval
    _require(isinstance(cfg.seed, int) and cfg.seed >= 0, f"seed={cfg.seed} must be a non-negative int")
    _require(ppo.num_envs > 0, f"ppo.num_envs={ppo.num_envs} must be positive; use e.g. ppo.num_envs=8")
    _require(ppo.num_steps > 0, f"ppo.num_steps={ppo.num_steps} must be positive; use e.g. ppo.num_steps=128")
    groups = cfg.env_groups
    _require(
        groups == "auto" or (isinstance(groups, int) and groups > 0 and ppo.num_envs % groups == 0),
        f"env_groups={groups} must be auto or a positive number that divides ppo.num_envs={ppo.num_envs}",
    )
    rollout = ppo.num_envs * ppo.num_steps
    _require(
        ppo.total_timesteps >= rollout,
        f"ppo.total_timesteps={ppo.total_timesteps} is smaller than one rollout "
        f"(ppo.num_envs * ppo.num_steps = {rollout}); raise ppo.total_timesteps or shrink the rollout",
    )
    _require(
        ppo.num_minibatches > 0 and rollout % ppo.num_minibatches == 0,
        f"ppo.num_minibatches={ppo.num_minibatches} must divide the batch of {rollout} transitions",
    )
    _require(ppo.update_epochs > 0, f"ppo.update_epochs={ppo.update_epochs} must be positive")
    _require(ppo.learning_rate > 0, f"ppo.learning_rate={ppo.learning_rate} must be positive")
    _require(0 <= ppo.gamma <= 1, f"ppo.gamma={ppo.gamma} must be in [0, 1]")
    _require(0 <= ppo.gae_lambda <= 1, f"ppo.gae_lambda={ppo.gae_lambda} must be in [0, 1]")
    _require(ppo.autocast in ("auto", "none", "bf16"), f"ppo.autocast={ppo.autocast} must be auto, none or bf16")
    _require(0 <= env.sticky_actions <= 1, f"env.sticky_actions={env.sticky_actions} must be in [0, 1]")
    _require(0 <= ev.sticky_actions <= 1, f"eval.sticky_actions={ev.sticky_actions} must be in [0, 1]")
    _require(env.max_frames > 0, f"env.max_frames={env.max_frames} must be positive")
    _require(ev.episodes > 0, f"eval.episodes={ev.episodes} must be positive; use e.g. eval.episodes=30")
    _require(ev.num_envs > 0, f"eval.num_envs={ev.num_envs} must be positive")
    _require(len(ev.suite) > 0, "eval.suite is empty; list perturbations, e.g. eval.suite=[clean,noise]")
    known = list(cfg.perturbations)
    for name in ev.suite:
        _require(name in known, f"eval.suite names unknown perturbation '{name}'; choose from {', '.join(known)}")
    build_perturbation(cfg.perturbation, "perturbation")
    for name in known:
        build_perturbation(cfg.perturbations[name], f"perturbations.{name}")
    _require(cfg.checkpoint_every > 0, f"checkpoint_every={cfg.checkpoint_every} must be a positive step count")
    _require(cfg.stage in STAGES, f"stage={cfg.stage} is not a stage; choose one of {', '.join(STAGES)}")
    for name in known_encoders(cfg):
        validate_encoder(cfg.encoders[name] if name != "encoder" else cfg.encoder, name)
    if cfg.stage == "pretrain":
        _require(
            cfg.encoder.objective is not None,
            f"stage=pretrain needs a pretrained encoder; encoder={cfg.encoder.name} has no objective "
            "(use encoder=jepa or encoder=ae)",
        )
    validate_pretrain(cfg.pretrain)
    if cfg.stage == "probe":
        validate_probe(cfg)


def known_encoders(cfg: DictConfig) -> list[str]:
    """``encoder`` (the one trained) and every ``encoders.<name>``."""
    return ["encoder", *cfg.encoders]


def validate_encoder(enc: DictConfig, key: str) -> None:
    """An encoder config: objective, weights file, lr_scale, freeze with a trainable pooling."""
    prefix = "encoder" if key == "encoder" else f"encoders.{key}"
    _require(enc.lr_scale >= 0, f"{prefix}.lr_scale={enc.lr_scale} must be >= 0")
    _require(
        enc.objective in (None, *OBJECTIVES),
        f"{prefix}.objective={enc.objective} is not an objective; choose {' or '.join(OBJECTIVES)} (or null)",
    )
    _require(
        enc.objective is None or enc.net._target_.endswith("ViTEncoder"),
        f"{prefix}.objective={enc.objective} pretrains a ViT; {prefix}.net is {enc.net._target_}",
    )
    _require(
        not enc.weights or Path(enc.weights).is_file(),
        f"{prefix}.weights={enc.weights} does not exist; pass an encoder.pt file or null",
    )
    _require(
        not (enc.freeze and enc.net.get("pool") == "attention"),
        f"{prefix}.net.pool=attention is a trained layer, which a frozen encoder cannot train; "
        f"use {prefix}.net.pool=mean or {prefix}.freeze=false",
    )


def validate_pretrain(p: DictConfig) -> None:
    """Ranges of ``pretrain.*``, including a mask geometry that leaves a context."""
    for key in ("epochs", "batch_size", "log_every"):
        _require(p[key] > 0, f"pretrain.{key}={p[key]} must be positive")
    for key in ("lr", "start_lr", "final_lr"):
        _require(p[key] >= 0, f"pretrain.{key}={p[key]} must be >= 0")
    _require(0 <= p.warmup < 1, f"pretrain.warmup={p.warmup} (a fraction of the steps) must be in [0, 1)")
    _require(0 <= p.ema_start <= p.ema_end <= 1, "pretrain.ema_start <= pretrain.ema_end must lie in [0, 1]")
    _require(p.autocast in ("auto", "none", "bf16"), f"pretrain.autocast={p.autocast} must be auto, none or bf16")
    for key in ("width", "depth", "heads"):
        _require(p.predictor[key] > 0, f"pretrain.predictor.{key}={p.predictor[key]} must be positive")
    try:
        masks = MaskConfig(**{k: tuple(v) if isinstance(v, ListConfig) else v for k, v in p.masks.items()})
        # A geometry that rarely leaves min_context patches fails here, not hours into a job.
        sample_masks(p.batch_size, masks, torch.Generator().manual_seed(0))
    except (TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"pretrain.{e}") from e
    validate_frames(p.frames, "pretrain.frames")


def validate_frames(f: DictConfig, key: str) -> None:
    """A frame-collection config."""
    for name in ("num_frames", "keep_every", "num_envs"):
        _require(f[name] > 0, f"{key}.{name}={f[name]} must be positive")
    _require(0 <= f.policy_fraction <= 1, f"{key}.policy_fraction={f.policy_fraction} must be in [0, 1]")
    _require(
        f.policy_fraction == 0 or (f.policy_checkpoint and Path(f.policy_checkpoint).is_file()),
        f"{key}.policy_fraction={f.policy_fraction} needs {key}.policy_checkpoint=PATH to a PPO checkpoint.pt "
        f"(got {f.policy_checkpoint})",
    )


def validate_probe(cfg: DictConfig) -> None:
    """``probe.*``: known encoders and perturbations, existing checkpoints, a usable split."""
    p = cfg.probe
    for name in p.encoders:
        choices = ", ".join(cfg.encoders)
        _require(name in cfg.encoders, f"probe.encoders names unknown encoder '{name}'; choose from {choices}")
        ckpt = p.checkpoints.get(name)
        _require(
            not ckpt or Path(ckpt).is_file(), f"probe.checkpoints.{name}={ckpt} does not exist; pass a checkpoint.pt"
        )
    for name in p.suite:
        choices = ", ".join(cfg.perturbations)
        _require(name in cfg.perturbations, f"probe.suite names unknown perturbation '{name}'; choose from {choices}")
    _require(0 < p.test_fraction < 1, f"probe.test_fraction={p.test_fraction} must be in (0, 1)")
    _require(p.batch_size > 0 and p.neighbours > 0, "probe.batch_size and probe.neighbours must be positive")
    validate_frames(p.frames, "probe.frames")


def build_perturbation(node: DictConfig, key: str) -> VisualPerturbation:
    """Instantiate one perturbation config, prefixing range errors with its config key."""
    try:
        return instantiate(node)
    except Exception as e:  # instantiate wraps constructor errors
        cause = e.__cause__ or e
        raise ConfigError(f"{key}: {cause}") from e


def check_writable(directory: Path, fix: str = "hydra.run.dir=PATH (or hydra.sweep.dir=PATH with -m)") -> None:
    """Fail early, and in one line, when outputs cannot be written to ``directory``; ``fix`` names the override."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"output directory {directory} is not writable ({e.strerror}); choose another with {fix}"
        ) from e


def check_output_root(overrides: list[str]) -> None:
    """Before Hydra creates the job directory: can the run (or sweep) directory be created?

    Creates and probes the literal part of ``hydra.run.dir`` / ``hydra.sweep.dir`` (up to the
    first interpolation), or the working directory where the defaults put outputs.
    """
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(overrides) else "hydra.run.dir"
    target = Path.cwd()
    for override in overrides:
        if override.startswith(key + "="):
            target = Path(override.split("=", 1)[1].split("${", 1)[0] or ".").absolute()
    check_writable(target, fix=f"{key}=PATH")


def check_launcher(overrides: list[str]) -> None:
    """A SLURM launcher needs SLURM's commands: say so in one line instead of submitit's trace."""
    for key, value in key_values(overrides):
        if key == "hydra/launcher" and value in ("slurm", "submitit_slurm") and not shutil.which("sbatch"):
            raise ConfigError(
                f"hydra/launcher={value} submits to SLURM, but there is no sbatch here; run it where SLURM is "
                "(a login node), or use hydra/launcher=local or joblib on this machine"
            )


def resolve_threads(requested: int, parallel_jobs: int = 1) -> int:
    """Threads per job: ``requested`` if > 0, else the CPUs this process may run on (SLURM's allocation,
    not the node's count) shared evenly among parallel jobs."""
    if requested > 0:
        return requested
    return max(1, len(os.sched_getaffinity(0)) // max(1, parallel_jobs))
