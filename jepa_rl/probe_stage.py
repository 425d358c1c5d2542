"""``stage=probe``: how much game state each encoder's features hold, on clean and perturbed frames.

Held-out frames (``probe.frames``, their own seed) are collected once with their RAM; the same
games are then replayed under every perturbation of ``probe.suite`` (same actions, same emulator
states, other pixels). Games, not frames, are split into probe-training and test sets; test frames
byte-identical to a training frame are not scored, and variables of low entropy on the training
frames (``probe.min_entropy``, nats) are not probed, as in AtariARI. For each encoder of
``probe.encoders`` - a trained agent's (``probe.checkpoints.<name>``), a pretrained one (jepa,
ae) or a random init - linear probes are fit on clean training frames and scored on the
test frames under each perturbation. Writes ``probes.json`` and PCA / nearest-neighbour figures.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from jepa_rl.agent import agent_from_checkpoint, build_encoder
from jepa_rl.config import build_perturbation
from jepa_rl.frames import cached_frames, load_frames
from jepa_rl.pretrained import encoder_weights, plain
from jepa_rl.probes import (
    labels_from_ram,
    low_entropy_variables,
    neighbours_figure,
    nn_retrieval,
    pca_figure,
    probe_encoder,
    repeats_reference,
)
from jepa_rl.tracking import stable_run_id, start_tracker
from jepa_rl.utils import use_bf16, write_json

log = logging.getLogger(__name__)


def probe_frames(cfg: DictConfig, threads: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The clean probe frame set (all arrays) and ``{perturbation: frames}`` for every suite entry."""
    env, frames_cfg, cache = plain(cfg.env), plain(cfg.probe.frames), Path(cfg.cache_dir)
    clean_dir = cached_frames(cache, env, frames_cfg, threads=threads)
    clean = load_frames(clean_dir)
    views = {}
    for name in cfg.probe.suite:
        perturbation = build_perturbation(cfg.perturbations[name], f"perturbations.{name}")
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


def probed_encoder(cfg: DictConfig, name: str, device: torch.device, threads: int, out: Path) -> tuple[str, nn.Module]:
    """``(label, encoder)``: a trained agent's encoder, a pretrained one, or a random init."""
    checkpoint = cfg.probe.checkpoints.get(name)
    if checkpoint:
        return f"{name}_agent", agent_from_checkpoint(checkpoint, device).encoder
    enc_cfg = cfg.encoders[name]
    weights = encoder_weights(cfg, enc_cfg, device, threads, out)
    torch.manual_seed(cfg.seed)
    label = name if weights else f"{name}_random"
    return label, build_encoder(enc_cfg, weights).to(device)


@torch.no_grad()
def features(
    encoder: nn.Module, frames: np.ndarray, rows: np.ndarray, batch: int, device: torch.device, autocast: bool
) -> np.ndarray:
    """Encoder features ``[len(rows), F]`` float32 of ``frames[rows]``, as the policy would see them."""
    encoder.eval()
    out = []
    for i in range(0, len(rows), batch):
        obs = torch.from_numpy(np.asarray(frames[rows[i : i + batch]])).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out.append(encoder(obs).float().cpu().numpy())
    return np.concatenate(out)


def probe_stage(cfg: DictConfig, out: Path, device: torch.device, threads: int) -> dict[str, Any]:
    """Probe every encoder of ``probe.encoders``; write ``probes.json`` and figures; log them to W&B."""
    p = cfg.probe
    clean, views = probe_frames(cfg, threads)
    labels = labels_from_ram(clean["ram"], cfg.env.game)
    train_rows, test_rows, duplicates = probe_rows(clean["episode"], clean["frames"], p.test_fraction, p.frames.seed)
    train_labels = {k: v[train_rows] for k, v in labels.items()}
    dropped = low_entropy_variables(train_labels, p.min_entropy)
    train_labels = {k: v for k, v in train_labels.items() if k not in dropped}
    log.info(
        "probe: %d training frames, %d test frames (%d more repeat a training frame: not scored); "
        "not probed, below %.2f nats of label entropy: %s",
        len(train_rows),
        len(test_rows),
        len(duplicates),
        p.min_entropy,
        ", ".join(f"{k} {h:.2f}" for k, h in dropped.items()) or "none",
    )
    autocast = use_bf16(cfg.ppo.autocast, device)
    results: dict[str, Any] = {}
    clean_test_features = {}
    for name in p.encoders:
        label, encoder = probed_encoder(cfg, name, device, threads, out)
        train_x = features(encoder, clean["frames"], train_rows, p.batch_size, device, autocast)
        test_x = {s: features(encoder, v, test_rows, p.batch_size, device, autocast) for s, v in views.items()}
        # The clean test features: already computed when the suite has clean, else computed once here.
        reference = (
            test_x["clean"]
            if "clean" in test_x
            else features(encoder, clean["frames"], test_rows, p.batch_size, device, autocast)
        )
        eval_sets = {s: (x, {k: v[test_rows] for k, v in labels.items()}) for s, x in test_x.items()}
        probes = probe_encoder(train_x, train_labels, eval_sets, seed=cfg.seed, games=clean["episode"][train_rows])
        results[label] = {
            "probes": probes,
            "mean_f1": mean_f1(probes, list(test_x)),
            "nn_retrieval": {s: nn_retrieval(reference, x) for s, x in test_x.items() if s != "clean"},
        }
        clean_test_features[label] = reference
        scores = "  ".join(f"{s} {f:.3f}" for s, f in results[label]["mean_f1"].items())
        log.info("probe %-12s mean F1 over %d variables %s", label, len(probes), scores)
    summary = {
        "env_id": cfg.env.env_id,
        "game": cfg.env.game,
        "train_frames": len(train_rows),
        "test_frames": len(test_rows) + len(duplicates),  # frames of the test games
        "test_duplicates_dropped": len(duplicates),  # of those, byte-identical to a training frame: not scored
        "min_entropy": float(p.min_entropy),
        "dropped_variables": dropped,  # name -> label entropy (nats) on the training frames: not probed
        "suite": list(p.suite),
        "encoders": results,
    }
    write_json(summary, out / "probes.json")
    figures = write_figures(clean["frames"], labels, test_rows, clean_test_features, p.neighbours, out)
    report(cfg, out, summary, figures)
    return summary


def write_figures(frames, labels, test_rows, test_features, k: int, out: Path) -> dict[str, Path]:
    """PCA of the clean test features coloured by the first game variable, and nearest neighbours."""
    color_name = next(iter(labels))
    paths = {"pca": out / "probe_pca.png", "neighbours": out / "probe_neighbours.png"}
    pca_figure(test_features, labels[color_name][test_rows], color_name, paths["pca"])
    queries = np.random.default_rng(0).choice(len(test_rows), size=min(4, len(test_rows)), replace=False)
    neighbours_figure(np.asarray(frames[test_rows]), test_features, queries, k, paths["neighbours"])
    return paths


def report(cfg: DictConfig, out: Path, summary: dict[str, Any], figures: dict[str, Path]) -> None:
    """Log the probe table, retrieval scores and figures to the stage's own W&B run."""
    tracker = start_tracker(
        **{
            **plain(cfg.logger),
            "group": f"probe-{cfg.env.name}-{cfg.experiment_name}",
            "name": f"probe-seed{cfg.seed}",
            "tags": [f"env:{cfg.env.name}", "probe", cfg.experiment_name],
        },
        config=plain(cfg),
        run_dir=out,
        run_id=f"probe-{stable_run_id(out)}",
    )
    try:
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
                for metric in ("mean_f1", "nn_retrieval")
                for pert, value in res[metric].items()
            }
        )
        tracker.images({f"probe/{name}": path for name, path in figures.items()})
    finally:
        tracker.finish()
