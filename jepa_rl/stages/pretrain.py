"""``stage=pretrain``: cache the encoder's frames and pretrained weights; write ``pretrain.json``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain
from jepa_rl.config.resolve import Resolved, encoder_source
from jepa_rl.config.validate import build_encoder_of, settings
from jepa_rl.pretrain.encoder_cache import DIAGNOSTICS_FILE, read_history
from jepa_rl.runtime.json_files import write_json

log = logging.getLogger(__name__)


def check(cfg: DictConfig) -> None:
    """The encoder must have an objective; build it and its pretrainer, check the settings."""
    if cfg.encoder.objective is None:
        raise ConfigError(
            f"stage=pretrain needs a pretrained encoder; encoder={cfg.encoder.name} has no objective "
            "(use encoder=jepa or encoder=ae)"
        )
    build_encoder_of(cfg, "encoder", with_pretrainer=True)
    settings(cfg.logger, "logger")


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict[str, Any]:
    """Pretrain (or find in the cache) the encoder of ``cfg``; returns what ``pretrain.json`` holds."""
    source, objective = encoder_source(cfg, res), cfg.encoder.objective
    weights = source.encoder(plain(cfg.encoder.net), objective, cfg.encoder.target, out, cfg.encoder.horizon)
    summary = {
        "objective": objective,
        "target": cfg.encoder.target,
        "horizon": cfg.encoder.horizon,
        "encoder_weights": str(weights),
        "frames": str(source.frames()),
        "history": read_history(weights.parent / "history.csv"),
        "diagnostics": json.loads((weights.parent / DIAGNOSTICS_FILE).read_text()),
    }
    write_json(summary, out / "pretrain.json")
    log.info("pretrained %s encoder: %s", objective, weights)
    return summary
