"""Shared test helpers: compose the real config, and run the real entrypoint in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import jepa_rl.config  # noqa: F401  (registers the config schemas, as launch.py does)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Tiny but real: 4 envs, one 512-step rollout per update, one game per perturbation.
TINY = [
    "ppo.num_envs=4",
    "ppo.num_steps=64",
    "ppo.total_timesteps=512",
    "eval.episodes=1",
    "eval.num_envs=1",
    "checkpoint_every=256",
    "threads=1",
]


# Pretraining as small as it gets: 64 frames, two steps of 32.
TINY_PRETRAIN = [
    "pretrain.frames.num_frames=64",
    "pretrain.frames.num_envs=4",
    "pretrain.frames.keep_every=2",
    "pretrain.batch_size=32",
    "pretrain.epochs=1",
    "pretrain.log_every=1",
]


def compose_cfg(overrides: list[str] | None = None, hydra: bool = False) -> DictConfig:
    """The composed config, exactly as ``launch.py`` would see it (with ``hydra:`` when asked)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [], return_hydra_config=hydra)


def launch_command(args: list[str], env: dict | None = None) -> dict:
    """``subprocess`` arguments for ``python launch.py ARGS``, W&B offline and quiet unless ``env`` says otherwise."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    return {"args": [sys.executable, str(ROOT / "launch.py"), *args], "env": full_env}


def launch(args: list[str], tmp_path: Path, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python launch.py ARGS`` with its outputs under ``tmp_path``."""
    return subprocess.run(
        **launch_command(args, env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)
