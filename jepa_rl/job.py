"""One job of ``launch.py``: validate the config by building it, resolve ``auto`` once, run the stage.

A failure the user can fix (a config value, a missing or corrupt file) is one line on stderr. In a
multirun a failed cell is recorded in its own ``error.txt`` and the sweep goes on, so the report at
its end is still written and lists the failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from jepa_rl.config import ConfigError
from jepa_rl.config.command_line import check_writable
from jepa_rl.config.hydra_runtime import discard_refused, launcher_settings, output_dir, record_failure
from jepa_rl.config.resolve import resolve
from jepa_rl.config.validate import build_perturbations, check_job, settings
from jepa_rl.models.agent import BlindEncoder
from jepa_rl.runtime import preemption
from jepa_rl.runtime.checkpoint import CheckpointError
from jepa_rl.runtime.malloc import retain_freed_memory
from jepa_rl.stages import check_stage, run_stage


def validate(cfg: DictConfig) -> None:
    """Build what the job will build from ``cfg`` (no games, no frames, no training); raises ``ConfigError``."""
    check_job(cfg)
    build_perturbations(cfg)
    settings(cfg.pretrain, "pretrain")  # every stage's encoder source (or benchmark's steps) holds it
    check_stage(cfg)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Validate ``cfg``, resolve its ``auto`` values, then run ``cfg.stage`` in the job's output directory."""
    out = output_dir()
    validate(cfg)
    resolved = resolve(cfg, launcher_settings())
    check_writable(out)
    retain_freed_memory()
    torch.set_num_threads(resolved.threads)
    with preemption.guard():  # SLURM's warning signals: checkpoint, then requeue
        return run_stage(cfg, out, resolved)


def main(cfg: DictConfig) -> None:
    """``launch.py``'s job: ``run``, with errors reported as the module docstring says."""
    try:
        run(cfg)
    except Exception as e:
        if record_failure(e):
            return
        if isinstance(e, ConfigError | CheckpointError | BlindEncoder):
            if isinstance(e, ConfigError):  # refused before any work: its directory holds only Hydra's files
                discard_refused(output_dir(), Path.cwd())
            sys.exit(f"error: {e}")
        raise
