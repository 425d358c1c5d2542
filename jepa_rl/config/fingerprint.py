"""A job's config as plain values, and the fingerprints of it that its checkpoint and results record.

A rerun compares its fingerprint with theirs (``runtime.resumption``): a checkpoint is resumed, and
results are kept, only by the config that made them.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from jepa_rl.envs.perturbations import suite_config
from jepa_rl.runtime.resumption import TRAINING_SECTIONS


def plain(node: Any) -> Any:
    """A config node as plain resolved containers (JSON-able, hashable into cache keys)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def training_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config sections a checkpoint depends on (stored in it, compared on resume)."""
    return {k: plain(cfg[k]) for k in TRAINING_SECTIONS}


def results_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config sections ``results.json`` depends on: training's and evaluation's."""
    suite = {name: plain(suite_config(cfg.perturbations, name)) for name in cfg.eval.suite}
    return {**training_fingerprint(cfg), "eval": plain(cfg.eval), "perturbations": suite}
