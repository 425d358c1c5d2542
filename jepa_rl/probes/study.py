"""The probe study of one game: held-out frames with their RAM, replayed under each perturbation, games
split into probe-training and test sets, and each encoder's linear probes, retrieval and diagnostics.

Held-out frames (``ProbeSettings.frames``, their own seed) are collected once with their RAM; the same
games are then replayed under every perturbation of the suite (same actions, same emulator states,
other pixels). Games, not frames, are split into probe-training and test sets; test frames
byte-identical to a training frame are not scored, and variables of low entropy on the training
frames (``min_entropy``, nats) are not probed, as in AtariARI. For each encoder - a trained agent's
(a checkpoint), a pretrained one (jepa, ae) or a random init - linear probes are fit on clean
training frames and scored on the test frames under each perturbation, and the encoder's content
share and feature rank (``pretrain.diagnostics.encoder_diagnostics``) are measured on the clean frames.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.models.agent import PolicyRepresentation, agent_from_checkpoint, build_encoder
from jepa_rl.models.feature_standardisation import encode
from jepa_rl.pretrain.diagnostics import encoder_diagnostics
from jepa_rl.pretrain.encoder_cache import EncoderSource
from jepa_rl.pretrain.frame_sets import cached_frames, load_frames
from jepa_rl.pretrain.settings import FramesSettings
from jepa_rl.probes.figures import neighbours_figure, pca_figure
from jepa_rl.probes.linear import majority_f1, probe_encoder, repeats_reference
from jepa_rl.probes.ram_labels import labels_from_ram, low_entropy_variables
from jepa_rl.probes.retrieval import nn_retrieval
from jepa_rl.probes.settings import ProbeSettings

log = logging.getLogger(__name__)


@dataclass
class ProbeSplit:
    """The clean probe frames (all arrays), their labels, and the rows of each part of the split."""

    clean: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    train_rows: np.ndarray
    test_rows: np.ndarray  # scored
    duplicates: np.ndarray  # test frames byte-identical to a training frame: not scored


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


def split_probe_frames(clean: dict[str, np.ndarray], game: str, settings: ProbeSettings) -> ProbeSplit:
    """Label the clean frames from their RAM and split them by game (``probe_rows``)."""
    labels = labels_from_ram(clean["ram"], game)
    train, test, duplicates = probe_rows(
        clean["episode"], clean["frames"], settings.test_fraction, settings.frames.seed
    )
    return ProbeSplit(clean, labels, train, test, duplicates)


def probe_study(
    source: EncoderSource,
    settings: ProbeSettings,
    suite: dict[str, VisualPerturbation],
    encoders: dict[str, dict[str, Any]],
    game: str,
    seed: int,
    device: torch.device,
    out: Path,
) -> tuple[dict[str, Any], ProbeSplit, dict[str, np.ndarray]]:
    """Probe every encoder of ``encoders`` (name -> its ``encoder`` settings, plain): ``(summary, split,
    {label: clean test features})``; the summary is what ``probes.json`` holds, less the game's ids."""
    clean, views = probe_frames(source, settings.frames, suite)
    split = split_probe_frames(clean, game, settings)
    train_labels = {k: v[split.train_rows] for k, v in split.labels.items()}
    dropped = low_entropy_variables(train_labels, settings.min_entropy)
    train_labels = {k: v for k, v in train_labels.items() if k not in dropped}
    log.info(
        "probe: %d training frames, %d test frames (%d more repeat a training frame: not scored); "
        "not probed, below %.2f nats of label entropy: %s",
        len(split.train_rows), len(split.test_rows), len(split.duplicates), settings.min_entropy,
        ", ".join(f"{k} {h:.2f}" for k, h in dropped.items()) or "none",
    )  # fmt: skip
    test_labels = {k: v[split.test_rows] for k, v in split.labels.items()}
    majority = majority_f1(train_labels, test_labels)
    log.info("probe: predicting each variable's most frequent training value scores %s", scores_line(majority))
    results, features = {}, {}
    for name, encoder_cfg in encoders.items():
        label, encoder = probed_encoder(name, encoder_cfg, settings.checkpoints.get(name), source, seed, out)
        labelled = (train_labels, test_labels)
        results[label], features[label] = probe_one(label, encoder, split, views, labelled, settings, seed, device)
    summary = {
        "train_frames": len(split.train_rows),
        "test_frames": len(split.test_rows) + len(split.duplicates),  # frames of the test games
        "test_duplicates_dropped": len(split.duplicates),  # of those, byte-identical to a training frame: not scored
        "min_entropy": float(settings.min_entropy),
        "inputs": settings.inputs,  # the probes' candidate features: best (of both), standardised or whitened
        "dropped_variables": dropped,  # name -> label entropy (nats) on the training frames: not probed
        # The constant predictor's F1 on the test frames, per variable and averaged as mean_f1 is.
        "majority_f1": majority,
        "majority_mean_f1": float(np.mean(list(majority.values()))) if majority else math.nan,
        "suite": list(settings.suite),
        "encoders": results,
    }
    return summary, split, features


def probe_one(
    label: str,
    encoder: nn.Module,
    split: ProbeSplit,
    views: dict[str, np.ndarray],
    labelled: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    settings: ProbeSettings,
    seed: int,
    device: torch.device,
) -> tuple[dict[str, Any], np.ndarray]:
    """One encoder's probes, retrieval and diagnostics, and its clean test features; ``labelled`` holds the
    probed variables' labels of the training and the test rows."""
    train_labels, test_labels = labelled

    # Always float32: bf16 keeps 8 bits of mantissa, and a near-collapsed encoder holds the ball in
    # directions a thousandth as strong as its strongest, which bf16 rounds off. (The agent, too, runs
    # a frozen encoder in float32 when bf16 moves its features: pretrain.encoder_cache.standardise_features.)
    def feats(frames: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return encode(encoder, frames, rows, settings.batch_size, device, bf16=False)

    clean = split.clean
    train_x = feats(clean["frames"], split.train_rows)
    test_x = {s: feats(v, split.test_rows) for s, v in views.items()}
    # The clean test features: already computed when the suite has clean, else computed once here.
    reference = test_x["clean"] if "clean" in test_x else feats(clean["frames"], split.test_rows)
    eval_sets = {s: (x, test_labels) for s, x in test_x.items()}
    games = clean["episode"][split.train_rows]
    probes, inputs = probe_encoder(train_x, train_labels, eval_sets, seed=seed, games=games, inputs=settings.inputs)
    network = encoder.agent.encoder if isinstance(encoder, PolicyRepresentation) else encoder
    result = {
        "probes": probes,
        "probe_inputs": inputs,  # variable -> the features its probes were fit on (probe.inputs)
        "mean_f1": mean_f1(probes, list(test_x)),
        "nn_retrieval": {s: nn_retrieval(reference, x) for s, x in test_x.items() if s != "clean"},
        "diagnostics": encoder_diagnostics(network, clean["frames"], device),
    }
    found = "  ".join(f"{k} {v:.3g}" for k, v in result["diagnostics"].items())
    whitened = ", ".join(k for k, v in inputs.items() if v == "whitened") or "none"
    log.info(
        "probe mean F1 over %d variables %s  (%s; whitened: %s)",
        len(probes),
        scores_line(result["mean_f1"]),
        found,
        whitened,
    )
    return result, reference


def scores_line(scores: dict[str, float]) -> str:
    """``name score`` pairs on one line, for the log."""
    return "  ".join(f"{k} {v:.3f}" for k, v in scores.items())


def write_figures(
    frames: np.ndarray, labels: dict[str, np.ndarray], test_rows: np.ndarray, test_features: dict, k: int, out: Path
) -> dict[str, Path]:
    """PCA of the clean test features coloured by the first game variable, and nearest neighbours."""
    color_name = next(iter(labels))
    paths = {"pca": out / "probe_pca.png", "neighbours": out / "probe_neighbours.png"}
    pca_figure(test_features, labels[color_name][test_rows], color_name, paths["pca"])
    queries = np.random.default_rng(0).choice(len(test_rows), size=min(4, len(test_rows)), replace=False)
    neighbours_figure(np.asarray(frames[test_rows]), test_features, queries, k, paths["neighbours"])
    return paths
