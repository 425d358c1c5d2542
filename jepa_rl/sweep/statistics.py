"""The statistics of a sweep, after Agarwal et al. 2021 (``rliable``): pure functions of score matrices, no files.

Mean and interquartile mean over seeds with stratified-bootstrap 95% confidence intervals, normalised scores
(0 = random play, 1 = human), and the probability of improvement between conditions. Every bootstrap is seeded,
so that a report rebuilt from the same cells gives the same intervals in any process.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from jepa_rl.envs.reference_scores import REFERENCE_SCORES

if TYPE_CHECKING:  # only for annotations: the statistics read no cells' files
    from jepa_rl.sweep.cells import Cell


def normalised(score: np.ndarray, env_id: str, random: float | np.ndarray | None = None) -> np.ndarray:
    """(score - random) / (human - published random): the share of the game's published random-to-human
    range above random play. ``random`` (NaN where unknown) is the measured random play, defaulting to the
    published one; it moves the zero only, never the scale: a measured random one point higher would halve
    DoubleDunk's 2.2-point range as a denominator, and let that game dominate an average over games.
    NaN for games without a human score."""
    if env_id not in REFERENCE_SCORES:
        return np.full_like(score, np.nan, dtype=float)
    published, human = REFERENCE_SCORES[env_id]
    random = published if random is None else np.where(np.isnan(random), published, random)
    return (score - random) / (human - published)


@contextmanager
def global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator inside the block, and give it back its previous state after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def bootstrap(
    scores: dict[str, Any], func: Callable[..., np.ndarray], reps: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's stratified-bootstrap point estimates and 95% CIs, seeded: the same intervals in every process."""
    from rliable import library as rly  # imported here: rliable pulls in arch and scipy, slow to import

    logging.getLogger("absl").setLevel(logging.WARNING)  # rliable logs a line per estimate
    # rliable 1.2.0 draws its resample indices with np.random.choice, ignoring random_state: seed the global one.
    with warnings.catch_warnings(), global_numpy_seed(seed):
        warnings.simplefilter("ignore", FutureWarning)  # arch deprecates the RandomState that rliable passes it
        return rly.get_interval_estimates(scores, func, reps=reps, random_state=np.random.RandomState(seed))


def interval_estimates(scores: dict[str, np.ndarray], reps: int, seed: int) -> dict[str, dict[int, dict[str, Any]]]:
    """Mean and IQM over seeds per perturbation, with stratified-bootstrap 95% CIs (rliable).

    One bootstrap per condition over its ``[seeds, perturbations]`` matrix: rliable's stratified
    bootstrap resamples the seeds of each perturbation (task) on its own, so each column gets the
    bootstrap it would get alone, in one call instead of one per perturbation.
    """

    def per_column(x: np.ndarray) -> np.ndarray:
        # rliable's aggregate_mean and aggregate_iqm of each column on its own. The IQM is scipy's
        # trim_mean(0.25), written out: int(n / 4) runs cut from each end of the sorted column.
        cut = len(x) // 4
        return np.concatenate([x.mean(axis=0), np.sort(x, axis=0)[cut : len(x) - cut].mean(axis=0)])

    stats: dict[str, dict[int, dict[str, Any]]] = {}
    for condition, matrix in scores.items():
        point, ci = bootstrap({condition: matrix}, per_column, reps, seed)
        n = matrix.shape[1]
        stats[condition] = {
            j: {
                "mean": float(point[condition][j]),
                "mean_ci": [float(ci[condition][0, j]), float(ci[condition][1, j])],
                "iqm": float(point[condition][n + j]),
                "iqm_ci": [float(ci[condition][0, n + j]), float(ci[condition][1, n + j])],
            }
            for j in range(n)
        }
    return stats


def improvement_probability(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's ``probability_of_improvement`` without a scipy call per task: ``[1]`` array.

    P(X_m > Y_m) for task m is the Mann-Whitney U statistic over all run pairs divided by their
    number (ties count a half); averaged over tasks. The same numbers (tested), faster (docs/performance.md
    has the figure), which matters because the bootstrap calls it thousands of times per pair of conditions.
    """
    wins = (x[:, None, :] > y[None, :, :]) + 0.5 * (x[:, None, :] == y[None, :, :])  # [runs_x, runs_y, tasks]
    return np.array([wins.mean(axis=(0, 1)).mean()])


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> dict[str, Any]:
    """P(X > Y) over perturbations (tasks) and seed pairs, with a stratified-bootstrap 95% CI (rliable)."""
    point, ci = bootstrap({"pair": (x, y)}, improvement_probability, reps, seed)
    return {"p": float(point["pair"][0]), "ci": [float(ci["pair"][0, 0]), float(ci["pair"][1, 0])]}


def comparisons(
    cells: list[Cell], scores: dict[str, np.ndarray], env_id: str, reps: int, seed: int
) -> dict[str, dict[str, Any]]:
    """P(jepa > cnn) and P(jepa > ae) on normalised scores over all perturbations, between conditions whose
    other varying overrides are equal (e.g. the same ``ppo.total_timesteps``)."""
    kinds = sorted({(c.condition, c.encoder, c.variant) for c in cells if c.condition in scores})
    out = {}
    for x, y in (("jepa", "cnn"), ("jepa", "ae")):
        for ka, encoder_a, variant_a in kinds:
            for kb, encoder_b, variant_b in kinds:
                if (encoder_a, encoder_b) != (x, y) or variant_a != variant_b:
                    continue
                xa, yb = scores[ka], scores[kb]
                # P(X > Y) depends only on the order of the scores, which normalising keeps: raw scores do for
                # games without reference scores (normalised ones would be all NaN).
                if env_id in REFERENCE_SCORES:
                    xa, yb = normalised(xa, env_id), normalised(yb, env_id)
                out[f"{ka} > {kb}"] = probability_of_improvement(xa, yb, reps, seed)
    return out


def summed_skill_ratio(skill: np.ndarray, kept: np.ndarray, reps: int, seed: int) -> dict[int, dict[str, Any]]:
    """Per column of ``kept`` (``[seeds, perturbations]``, points kept above the floor): ``sum(kept) /
    sum(skill)`` over seeds (``skill``: ``[seeds]``, clean points above the floor), with a 95% percentile
    bootstrap interval that resamples whole seeds (their skill and what they kept together).

    A ratio of sums weighs each seed by its skill: a seed that barely cleared its floor, whose own ratio
    is mostly noise, cannot swing it as it swings a mean of ratios (and IQM trims nothing from 3 seeds).
    rliable's stratified bootstrap resamples each column on its own, which would part a seed's kept
    points from its skill: arch's IID bootstrap (which rliable builds on) resamples rows.
    """
    from arch.bootstrap import IIDBootstrap  # imported here, as rliable: slow to import

    rows = np.column_stack([skill, kept])

    def ratio(x: np.ndarray) -> np.ndarray:
        return x[:, 1:].sum(axis=0) / x[:, 0].sum()

    point = ratio(rows)
    ci = IIDBootstrap(rows, seed=seed).conf_int(ratio, reps=reps, method="percentile") if len(rows) > 1 else None
    return {
        j: {"retention": float(point[j]), "ci": [float(v) for v in (ci[:, j] if ci is not None else [point[j]] * 2)]}
        for j in range(kept.shape[1])
    }
