"""Across games: a sweep over several games summarised as rliable intends (Agarwal et al. 2021).

Each cell's clean score is human-normalised, ``(score - random) / (human - published random)``, from its
own measured random policy (the published one where it has none) over the game's published range, whose
scale a measured floor cannot shrink (``statistics.normalised``); games whose measured random play is far
from the published one are named in the report (``FLOOR_DRIFT``). Per
condition the scores form a ``[seeds, games]`` matrix (the seeds every game of that condition has),
summarised by the interquartile mean with a bootstrap stratified over games, and by a performance
profile: the share of runs whose normalised score exceeds each threshold tau.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from jepa_rl.envs.reference_scores import REFERENCE_SCORES
from jepa_rl.sweep.cells import Cell
from jepa_rl.sweep.statistics import bootstrap, normalised

TAUS = np.linspace(0.0, 2.0, 81)  # thresholds of the performance profiles (normalised score)
FLOOR_DRIFT = 0.25  # measured random play this share of the published range from the published one is named


def clean_scores(cells: list[Cell]) -> dict[str, dict[str, dict[int, float]]]:
    """``{condition: {env_id: {seed: normalised clean score}}}`` of the finished cells (of any game) that
    evaluated clean on a game with a published human score."""
    out: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for c in cells:
        if c.status not in ("ok", "other_game") or not c.results or "clean" not in c.results.get("eval", {}):
            continue
        if c.env_id not in REFERENCE_SCORES:
            continue
        random = (c.results.get("random_policy") or {}).get("mean")
        score = np.array([c.results["eval"]["clean"]["mean"]])
        out[c.condition][c.env_id][c.seed] = float(normalised(score, c.env_id, random)[0])
    return out


def game_matrices(cells: list[Cell]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per condition that played every game of the sweep, its ``[seeds, games]`` matrix (the seeds all
    those games have), and the games; empty for a sweep of one game (conditions that played only some
    games are left out: an aggregate over other games is not comparable)."""
    scores = clean_scores(cells)
    games = sorted({g for per_game in scores.values() for g in per_game})
    if len(games) < 2:
        return {}, games
    matrices = {}
    for condition, per_game in scores.items():
        if set(per_game) != set(games):
            continue
        seeds = sorted(set.intersection(*(set(per_game[g]) for g in games)))
        if seeds:
            matrices[condition] = np.array([[per_game[g][s] for g in games] for s in seeds])
    return matrices, games


def iqm_over_games(matrices: dict[str, np.ndarray], reps: int, seed: int) -> dict[str, dict[str, Any]]:
    """IQM and mean of each condition's normalised scores over all its runs (seeds x games), with
    95% CIs of a bootstrap stratified over games (rliable's)."""

    def summary(x: np.ndarray) -> np.ndarray:
        flat = np.sort(x.ravel())
        cut = len(flat) // 4
        return np.array([flat[cut : len(flat) - cut].mean(), flat.mean()])

    out = {}
    for condition, matrix in matrices.items():
        point, ci = bootstrap({condition: matrix}, summary, reps, seed)
        out[condition] = {
            "runs": int(matrix.shape[0]),
            "games": int(matrix.shape[1]),
            "iqm": float(point[condition][0]),
            "iqm_ci": [float(ci[condition][0, 0]), float(ci[condition][1, 0])],
            "mean": float(point[condition][1]),
            "mean_ci": [float(ci[condition][0, 1]), float(ci[condition][1, 1])],
        }
    return out


def performance_profiles(matrices: dict[str, np.ndarray], path: Path) -> Path:
    """The share of runs (seeds x games) scoring above each normalised threshold, one line per condition."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for condition, matrix in sorted(matrices.items()):
        ax.plot(TAUS, [(matrix > tau).mean() for tau in TAUS], label=condition)
    ax.set(xlabel="human-normalised clean score tau", ylabel="fraction of runs > tau", title="Performance profiles")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def drifted_floors(cells: list[Cell], games: list[str]) -> dict[str, dict[str, float]]:
    """Per game whose cells' mean measured random play is more than ``FLOOR_DRIFT`` of its published range
    from the published random score: ``{published, measured, range, shift}`` (shift in shares of the range)."""
    out = {}
    for game in games:
        measured = [
            c.results["random_policy"]["mean"]
            for c in cells
            if c.env_id == game and c.status in ("ok", "other_game") and (c.results or {}).get("random_policy")
        ]
        if not measured:
            continue
        published, human = REFERENCE_SCORES[game]
        shift = (float(np.mean(measured)) - published) / (human - published)
        if abs(shift) > FLOOR_DRIFT:
            out[game] = {"published": published, "measured": float(np.mean(measured)), "range": human - published}
            out[game]["shift"] = shift
    return out


def across_games(cells: list[Cell], sweep_dir: Path, reps: int, seed: int) -> dict[str, Any] | None:
    """The cross-game summary of a multi-game sweep (None for one game): statistics, the games whose measured
    random play drifted from the published one, and the profile figure."""
    matrices, games = game_matrices(cells)
    if not matrices:
        return None
    return {
        "games": games,
        "statistics": iqm_over_games(matrices, reps, seed),
        "drifted_floors": drifted_floors(cells, games),
        "profile": str(performance_profiles(matrices, sweep_dir / "performance_profiles.png")),
    }


def across_games_section(summary: dict[str, Any]) -> list[str]:
    """The report's lines for ``across_games``'s summary."""
    lines = [
        f"## Across games: {', '.join(summary['games'])}",
        "",
        "Human-normalised clean scores: (score - random play measured by each cell, the published one where it "
        "has none) / (human - published random), so a measured floor moves a game's zero, never its scale. "
        "IQM and mean over runs (seeds x games), 95% CI of a bootstrap stratified over games.",
        "",
        "| condition | runs x games | IQM | mean |",
        "|---|---|---|---|",
    ]
    for condition, s in sorted(summary["statistics"].items()):
        iqm = f"{s['iqm']:.3f} [{s['iqm_ci'][0]:.3f}, {s['iqm_ci'][1]:.3f}]"
        mean = f"{s['mean']:.3f} [{s['mean_ci'][0]:.3f}, {s['mean_ci'][1]:.3f}]"
        lines.append(f"| {condition} | {s['runs']} x {s['games']} | {iqm} | {mean} |")
    for game, d in summary.get("drifted_floors", {}).items():
        lines += [
            "",
            f"- **{game}**: its cells' random play measured {d['measured']:.1f}, {d['shift']:+.0%} of its published "
            f"{d['range']:.1f}-point random-to-human range from the published {d['published']:.1f}: its normalised "
            "scores start from the measured floor, on the published scale; read that game's share of the IQM with it.",
        ]
    return [*lines, "", f"![performance profiles]({Path(summary['profile']).name})"]
