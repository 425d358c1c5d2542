"""The stages a job runs, one module per ``stage=`` value: ``train`` (pretraining first when the encoder
needs it, then PPO, then evaluation), ``pretrain``, ``probe`` and ``benchmark``.

Each module has ``check(cfg)``, which builds what the stage will build (validation, before any work),
and ``run(cfg, out, resolved)``, which unpacks the config, builds the parts, runs the domain packages
and writes the outputs: wiring only. May import every package but ``sweep``; only ``job`` imports it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from omegaconf import DictConfig

from jepa_rl.config.resolve import Resolved


def stage_module(stage: str) -> ModuleType:
    """``jepa_rl.stages.<stage>`` (``stage`` is one of ``schema.STAGES``, checked by ``validate``)."""
    return importlib.import_module(f"jepa_rl.stages.{stage}")


def check_stage(cfg: DictConfig) -> None:
    """Build what ``cfg.stage`` will build; raises ``ConfigError``."""
    stage_module(cfg.stage).check(cfg)


def run_stage(cfg: DictConfig, out: Path, resolved: Resolved) -> dict[str, Any]:
    """Run ``cfg.stage``, writing its outputs in ``out``."""
    return stage_module(cfg.stage).run(cfg, out, resolved)
