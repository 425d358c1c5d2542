"""``stage=probe``: how much game state each encoder's features hold, on clean and perturbed frames.

Held-out frames (``probe.frames``, their own seed) are collected once with their RAM; the same
games are then replayed under every perturbation of ``probe.suite`` (same actions, same emulator
states, other pixels). Games, not frames, are split into probe-training and test sets; test frames
byte-identical to a training frame are not scored, and variables of low entropy on the training
frames (``probe.min_entropy``, nats) are not probed, as in AtariARI. For each encoder of
``probe.encoders`` - a trained agent's (``probe.checkpoints.<name>``), a pretrained one (jepa,
ae) or a random init - linear probes are fit on clean training frames and scored on the
test frames under each perturbation, and the encoder's content share and feature rank
(``diagnostics.encoder_diagnostics``) are measured on the clean frames. Writes ``probes.json``
and PCA / nearest-neighbour figures.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain
from jepa_rl.config.resolve import Resolved, encoder_source
from jepa_rl.config.schema import ProbeSchema
from jepa_rl.config.validate import build_encoder_of, check_frame_set, config_key, settings
from jepa_rl.envs.perturbations import VisualPerturbation, suite_config
from jepa_rl.models.agent import PolicyRepresentation, agent_from_checkpoint, build_encoder
from jepa_rl.models.feature_standardisation import encode
from jepa_rl.pretrain.diagnostics import encoder_diagnostics
from jepa_rl.pretrain.encoder_cache import EncoderSource
from jepa_rl.pretrain.frame_sets import cached_frames, load_frames
from jepa_rl.pretrain.settings import FramesSettings
from jepa_rl.probes.figures import neighbours_figure, pca_figure
from jepa_rl.probes.linear import majority_f1, probe_encoder, repeats_reference
from jepa_rl.probes.ram_labels import GAME_VARIABLES, labels_from_ram, low_entropy_variables
from jepa_rl.probes.retrieval import nn_retrieval
from jepa_rl.runtime.json_files import write_json
from jepa_rl.runtime.tracking import stable_run_id, tracker_session

log = logging.getLogger(__name__)


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


def probe_frames(
    source: EncoderSource, frames_cfg: FramesSettings, suite: dict[str, VisualPerturbation]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The clean probe frame set (all arrays) and ``{perturbation: frames}`` for every suite entry."""
    cache, env, threads = source.cache_dir, source.env, source.threads
    clean_dir = cached_frames(cache, env, frames_cfg, threads=threads)
    clean = load_frames(clean_dir)
    views = {}
    for name, perturbation in suite.items():
        if perturbation.is_identity:
            views[name] = clean["frames"]
            continue
        replay = load_frames(cached_frames(cache, env, frames_cfg, perturbation, replay=clean_dir, threads=threads))
        if not np.array_equal(replay["ram"], clean["ram"]):  # the replay must revisit the same states
            raise RuntimeError(f"replaying the probe games under {name} reached other emulator states")
        views[name] = replay["frames"]
    return clean, views


def split_games(episode: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask over frames: a random ``test_fraction`` of the games (never part of a game)."""
    games = np.unique(episode)
    rng = np.random.default_rng(seed)
    test_games = rng.choice(games, size=max(1, round(test_fraction * len(games))), replace=False)
    return np.isin(episode, test_games)


def probe_rows(
    episode: np.ndarray, frames: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train_rows, test_rows, repeats)``: split by game; test frames equal to a training frame go to ``repeats``."""
    test = split_games(episode, test_fraction, seed)
    train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
    repeated = repeats_reference(frames, train_rows, test_rows)
    if repeated.all():
        raise ValueError(f"all {len(test_rows)} test frames repeat a training frame: collect more probe frames")
    return train_rows, test_rows[~repeated], test_rows[repeated]


def mean_f1(probes: dict[str, dict[str, dict[str, float]]], suite: list[str]) -> dict[str, float]:
    """Mean F1 over the probed variables per perturbation (NaN when every variable was dropped)."""
    return {s: float(np.mean([by_set[s]["f1"] for by_set in probes.values()])) if probes else math.nan for s in suite}


def probed_encoder(
    name: str, encoder_cfg: dict[str, Any], checkpoint: str | None, source: EncoderSource, seed: int, out: Path
) -> tuple[str, nn.Module]:
    """``(label, encoder)``: a trained agent's representation (its trunk's output), a pretrained encoder,
    or a random init seeded ``seed``."""
    if checkpoint:
        return f"{name}_agent", PolicyRepresentation(agent_from_checkpoint(checkpoint, source.device))
    net = encoder_cfg["net"]
    objective, target, horizon = (encoder_cfg[k] for k in ("objective", "target", "horizon"))
    weights = source.weights(net, objective, target, encoder_cfg["weights"], out, horizon)
    torch.manual_seed(seed)
    label = name if weights else f"{name}_random"
    return label, build_encoder(net, encoder_cfg["freeze"], weights).to(source.device)


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict[str, Any]:
    """Probe every encoder of ``probe.encoders``; write ``probes.json`` and figures; log them to W&B."""
    p: ProbeSchema = OmegaConf.to_object(cfg.probe)
    source, game, seed = encoder_source(cfg, res), cfg.env.game, cfg.seed
    suite = {name: instantiate(suite_config(cfg.perturbations, name)) for name in p.suite}
    encoders = {name: plain(cfg.encoders[name]) for name in p.encoders}
    tracking = {
        **source.logger,
        "group": f"probe-{cfg.env.name}-{cfg.experiment_name}",
        "name": f"probe-seed{seed}",
        "tags": [f"env:{cfg.env.name}", "probe", cfg.experiment_name],
        "config": plain(cfg),
    }
    clean, views = probe_frames(source, p.frames, suite)
    labels = labels_from_ram(clean["ram"], game)
    train_rows, test_rows, duplicates = probe_rows(clean["episode"], clean["frames"], p.test_fraction, p.frames.seed)
    train_labels = {k: v[train_rows] for k, v in labels.items()}
    dropped = low_entropy_variables(train_labels, p.min_entropy)
    train_labels = {k: v for k, v in train_labels.items() if k not in dropped}
    log.info(
        "probe: %d training frames, %d test frames (%d more repeat a training frame: not scored); "
        "not probed, below %.2f nats of label entropy: %s",
        len(train_rows), len(test_rows), len(duplicates), p.min_entropy,
        ", ".join(f"{k} {h:.2f}" for k, h in dropped.items()) or "none",
    )  # fmt: skip
    test_labels = {k: v[test_rows] for k, v in labels.items()}
    majority = majority_f1(train_labels, test_labels)
    log.info("probe: predicting each variable's most frequent training value scores %s", _scores(majority))
    results: dict[str, Any] = {}
    clean_test_features = {}
    for name, encoder_cfg in encoders.items():
        label, encoder = probed_encoder(name, encoder_cfg, p.checkpoints.get(name), source, seed, out)

        # Always float32: bf16 keeps 8 bits of mantissa, and a near-collapsed encoder holds the ball in
        # directions a thousandth as strong as its strongest, which bf16 rounds off. (The agent, too, runs
        # a frozen encoder in float32 when bf16 moves its features: train.standardise_features.)
        def feats(frames: np.ndarray, rows: np.ndarray, encoder: nn.Module = encoder) -> np.ndarray:
            return encode(encoder, frames, rows, p.batch_size, res.device, bf16=False)

        train_x = feats(clean["frames"], train_rows)
        test_x = {s: feats(v, test_rows) for s, v in views.items()}
        # The clean test features: already computed when the suite has clean, else computed once here.
        reference = test_x["clean"] if "clean" in test_x else feats(clean["frames"], test_rows)
        eval_sets = {s: (x, test_labels) for s, x in test_x.items()}
        probes, inputs = probe_encoder(
            train_x, train_labels, eval_sets, seed=seed, games=clean["episode"][train_rows], inputs=p.inputs
        )
        network = encoder.agent.encoder if isinstance(encoder, PolicyRepresentation) else encoder
        results[label] = {
            "probes": probes,
            "probe_inputs": inputs,  # variable -> the features its probes were fit on (probe.inputs)
            "mean_f1": mean_f1(probes, list(test_x)),
            "nn_retrieval": {s: nn_retrieval(reference, x) for s, x in test_x.items() if s != "clean"},
            "diagnostics": encoder_diagnostics(network, clean["frames"], res.device),
        }
        clean_test_features[label] = reference
        scores = _scores(results[label]["mean_f1"])
        found = "  ".join(f"{k} {v:.3g}" for k, v in results[label]["diagnostics"].items())
        whitened = ", ".join(k for k, v in inputs.items() if v == "whitened") or "none"
        log.info(
            "probe %-12s mean F1 over %d variables %s  (%s; whitened: %s)", label, len(probes), scores, found, whitened
        )
    summary = {
        "env_id": cfg.env.env_id,
        "game": game,
        "train_frames": len(train_rows),
        "test_frames": len(test_rows) + len(duplicates),  # frames of the test games
        "test_duplicates_dropped": len(duplicates),  # of those, byte-identical to a training frame: not scored
        "min_entropy": float(p.min_entropy),
        "inputs": p.inputs,  # the probes' candidate features: best (of both), standardised or whitened
        "dropped_variables": dropped,  # name -> label entropy (nats) on the training frames: not probed
        # The constant predictor's F1 on the test frames, per variable and averaged as mean_f1 is.
        "majority_f1": majority,
        "majority_mean_f1": float(np.mean(list(majority.values()))) if majority else math.nan,
        "suite": list(p.suite),
        "encoders": results,
    }
    write_json(summary, out / "probes.json")
    figures = write_figures(clean["frames"], labels, test_rows, clean_test_features, p.neighbours, out)
    report(tracking, out, summary, figures)
    return summary


def _scores(scores: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in scores.items())


def write_figures(frames, labels, test_rows, test_features, k: int, out: Path) -> dict[str, Path]:
    """PCA of the clean test features coloured by the first game variable, and nearest neighbours."""
    color_name = next(iter(labels))
    paths = {"pca": out / "probe_pca.png", "neighbours": out / "probe_neighbours.png"}
    pca_figure(test_features, labels[color_name][test_rows], color_name, paths["pca"])
    queries = np.random.default_rng(0).choice(len(test_rows), size=min(4, len(test_rows)), replace=False)
    neighbours_figure(np.asarray(frames[test_rows]), test_features, queries, k, paths["neighbours"])
    return paths


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
