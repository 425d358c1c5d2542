"""Validation by building: the builders each stage's ``check(cfg)`` calls, cheaply and before any work.

Every range check lives with the component that owns the value (its constructor, or its settings
schema's ``__post_init__``); this module only builds them and names the config key of a failure.
``jepa_rl.job.validate`` runs the job's checks, then the stage's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl.config import ConfigError
from jepa_rl.config.schema import STAGES
from jepa_rl.envs import game_shifts
from jepa_rl.envs.perturbations import suite_config
from jepa_rl.envs.pipeline import make_env
from jepa_rl.models.agent import Agent, agent_from_checkpoint, build_encoder, make_optimizer
from jepa_rl.models.heads import PolicyHeads
from jepa_rl.pretrain.loop import mask_config
from jepa_rl.pretrain.masks import sample_masks
from jepa_rl.pretrain.objectives import make_pretrainer
from jepa_rl.runtime.checkpoint import CheckpointError

T = TypeVar("T")


@contextmanager
def config_key(key: str) -> Iterator[None]:
    """Turn a component's ``ValueError`` (``name=value must ...``) into a ``ConfigError`` naming ``key``."""
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError, RuntimeError, CheckpointError, InstantiationException) as e:
        cause = e.__cause__ if isinstance(e, InstantiationException) and e.__cause__ else e
        message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        head = message.split(" ", 1)[0]
        nested = "=" in head and head.split("=")[0].isidentifier() and "=" not in key  # key.field=value
        joined = f"{key}.{message}" if nested else f"{key}: {message}"
        raise ConfigError(joined) from e


def settings(node: DictConfig, key: str) -> Any:
    """A settings group as its schema dataclass (its ``__post_init__`` checks the ranges)."""
    with config_key(key):
        return OmegaConf.to_object(node)


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """``instantiate(node)``, a constructor's range error named by ``key``."""
    with config_key(key):
        return instantiate(node, **kwargs)


def checked(key: str, make: Callable[[], T]) -> T:
    """``make()``, a range error named by ``key``."""
    with config_key(key):
        return make()


def require(ok: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)


def check_job(cfg: DictConfig) -> None:
    """The top-level keys the job itself owns."""
    require(cfg.stage in STAGES, f"stage={cfg.stage} is not a stage; choose one of {', '.join(STAGES)}")
    require(cfg.seed >= 0, f"seed={cfg.seed} must be a non-negative int")
    require(cfg.checkpoint_every > 0, f"checkpoint_every={cfg.checkpoint_every} must be a positive step count")
    require(cfg.threads >= 0, f"threads={cfg.threads} must be >= 0 (0: the CPUs of this job)")


def build_perturbations(cfg: DictConfig) -> dict[str, Any]:
    """The training perturbation and every named one; the suites must name known ones."""
    build(cfg.perturbation, "perturbation")
    built = {name: build(node, f"perturbations.{name}") for name, node in cfg.perturbations.items()}
    for key in ("eval.suite", "eval.snapshot_suite", "probe.suite", "benchmark.perturbations"):
        for name in OmegaConf.select(cfg, key):
            if name not in built:  # a corruption family at a severity, by its name
                try:
                    node = suite_config(cfg.perturbations, name)
                except ValueError as e:
                    raise ConfigError(f"{key} names {e}") from None
                built[name] = build(OmegaConf.create(node), f"{key}={name}")
            with config_key(f"{key}={name}"):  # a recolouring, mode or difficulty this game has
                game_shifts.check(cfg.env.game, built[name].game_shift)
    return built


def build_pipeline(cfg: DictConfig) -> None:
    """One environment of the pipeline, as training builds it (the game's ROM, ranges, the perturbation)."""
    perturbation = build(cfg.perturbation, "perturbation")
    env = checked("env", lambda: make_env(cfg.env, 1, 0, perturbation, num_threads=1))
    env.close()


def encoder_key(name: str) -> str:
    return "encoder" if name == "encoder" else f"encoders.{name}"


def build_encoder_of(cfg: DictConfig, name: str, with_pretrainer: bool) -> torch.nn.Module:
    """``encoder`` or ``encoders.<name>``: its net (with its weights file), and the pretrainer that would make it."""
    key = encoder_key(name)
    enc = cfg.encoder if name == "encoder" else cfg.encoders[name]
    settings(enc, key)
    require(
        not enc.horizon or enc.objective is not None,
        f"{key}.horizon={enc.horizon} sets a pretraining target, and {key} has no objective; "
        "drop it or pretrain (encoder=jepa or ae)",
    )
    with torch.device("meta"):  # shapes and ranges only: no memory, no initialisation (a CNN's QR takes seconds)
        build(enc.net, f"{key}.net")
        encoder = checked(key, lambda: build_encoder(enc.net, enc.freeze, None))
    if enc.weights:  # on the CPU: the file's tensors are read and compared with the net's
        with config_key(f"{key}.weights={enc.weights}"):
            build_encoder(enc.net, enc.freeze, Path(enc.weights))
    elif enc.objective and with_pretrainer:
        pretrain = settings(cfg.pretrain, "pretrain")
        check_frame_set(pretrain.frames, "pretrain.frames")
        with torch.device("meta"):
            model = checked(key, lambda: make_pretrainer(enc.net, enc.objective, enc.target, pretrain))
        check_masks(pretrain, model.encoder.grid)
    return encoder


def check_frame_set(frames: Any, key: str) -> None:
    """A frame set's policy checkpoint, when it mixes one in, must load (a corrupt file is named here)."""
    if frames.policy_fraction > 0:
        with config_key(f"{key}.policy_checkpoint={frames.policy_checkpoint}"):
            agent_from_checkpoint(frames.policy_checkpoint, torch.device("cpu"))


def check_masks(pretrain: Any, grid: int) -> None:
    """The mask geometry on the encoder's real patch grid, sampled once at the pretraining batch size."""
    masks = checked("pretrain.masks", lambda: mask_config(pretrain.masks, grid))
    # A geometry that rarely leaves min_context patches fails here, not hours into a job.
    checked("pretrain.masks", lambda: sample_masks(pretrain.batch_size, masks, torch.Generator().manual_seed(0)))


def build_agent_of(cfg: DictConfig) -> None:
    """The agent and its optimizer, with a stand-in action count (the game's is known once its env exists)."""
    encoder = build_encoder_of(cfg, "encoder", with_pretrainer=True)
    head = settings(cfg.head, "head")
    with torch.device("meta"):
        kind_width = {"kind": head.kind, "width": head.width}
        heads = checked("head", lambda: PolicyHeads(**kind_width, feature_dim=encoder.feature_dim, num_actions=4))
        agent = Agent(encoder, heads)
        checked("encoder", lambda: make_optimizer(agent, cfg.ppo.learning_rate, cfg.encoder.lr_scale))
