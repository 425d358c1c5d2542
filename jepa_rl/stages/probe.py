"""``stage=probe``: how much game state each encoder's features hold, on clean and perturbed frames
(``probes.study``); writes ``probes.json``, PCA and nearest-neighbour figures, and a W&B run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain
from jepa_rl.config.resolve import Resolved, encoder_source
from jepa_rl.config.schema import ProbeSchema
from jepa_rl.config.validate import build_encoder_of, check_frame_set, config_key, settings
from jepa_rl.envs.perturbations import suite_config
from jepa_rl.models.agent import agent_from_checkpoint
from jepa_rl.probes.ram_labels import GAME_VARIABLES
from jepa_rl.probes.study import probe_study, write_figures
from jepa_rl.runtime.json_files import write_json
from jepa_rl.runtime.tracking import stable_run_id, tracker_session


def check(cfg: DictConfig) -> None:
    """The probe settings, every probed encoder (a checkpoint's agent, or the net and its pretrainer), the logger."""
    p = settings(cfg.probe, "probe")
    check_frame_set(p.frames, "probe.frames")
    if cfg.env.game not in GAME_VARIABLES:
        known = ", ".join(sorted(GAME_VARIABLES))
        raise ConfigError(f"stage=probe: env={cfg.env.name} has no RAM annotations to probe; use env= one of {known}")
    for name in p.encoders:
        choices = ", ".join(cfg.encoders)
        if name not in cfg.encoders:
            raise ConfigError(f"probe.encoders names unknown encoder '{name}'; choose from {choices}")
        checkpoint = p.checkpoints.get(name)
        if checkpoint:
            with config_key(f"probe.checkpoints.{name}={checkpoint}"):
                agent_from_checkpoint(checkpoint, torch.device("cpu"))
        else:
            build_encoder_of(cfg, name, with_pretrainer=True)
    settings(cfg.logger, "logger")


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict[str, Any]:
    """Probe every encoder of ``probe.encoders``; write ``probes.json`` and figures; log them to W&B."""
    p: ProbeSchema = OmegaConf.to_object(cfg.probe)
    source, seed = encoder_source(cfg, res), cfg.seed
    suite = {name: instantiate(suite_config(cfg.perturbations, name)) for name in p.suite}
    encoders = {name: plain(cfg.encoders[name]) for name in p.encoders}
    found, split, features = probe_study(source, p, suite, encoders, cfg.env.game, seed, res.device, out)
    summary = {"env_id": cfg.env.env_id, "game": cfg.env.game, **found}
    write_json(summary, out / "probes.json")
    figures = write_figures(split.clean["frames"], split.labels, split.test_rows, features, p.neighbours, out)
    tracking = {
        **source.logger,
        "group": f"probe-{cfg.env.name}-{cfg.experiment_name}",
        "name": f"probe-seed{seed}",
        "tags": [f"env:{cfg.env.name}", "probe", cfg.experiment_name],
        "config": plain(cfg),
    }
    report(tracking, out, summary, figures)
    return summary


def report(tracking: dict[str, Any], out: Path, summary: dict[str, Any], figures: dict[str, Path]) -> None:
    """Log the probe table, retrieval scores and figures to the stage's own W&B run (``tracking``: its settings)."""
    with tracker_session(**tracking, run_dir=out, run_id=f"probe-{stable_run_id(out)}") as tracker:
        rows = [
            [label, var, pert, score["f1"], score.get("r2")]
            for label, res in summary["encoders"].items()
            for var, by_pert in res["probes"].items()
            for pert, score in by_pert.items()
        ]
        tracker.table("probe/table", ["encoder", "variable", "perturbation", "f1", "r2"], rows)
        dropped_rows = [[var, entropy] for var, entropy in summary["dropped_variables"].items()]
        tracker.table("probe/dropped_variables", ["variable", "entropy_nats"], dropped_rows)
        tracker.summary(
            {
                f"probe/{label}/{pert}/{metric}": value
                for label, res in summary["encoders"].items()
                for metric in ("mean_f1", "nn_retrieval", "diagnostics")
                for pert, value in res[metric].items()
            }
        )
        tracker.images({f"probe/{name}": path for name, path in figures.items()})
