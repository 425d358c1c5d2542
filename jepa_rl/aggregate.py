"""Aggregate a sweep directory: every cell's ``results.json`` -> ``cells.csv``, statistics, ``REPORT.md``.

Runs at the end of every multirun (``jepa_rl.callbacks.AggregateSweep``) and on demand::

    python -m jepa_rl.aggregate multirun/grid-cpu/2026-11-27_12-00-00

A cell is a job directory (it has ``.hydra/``). Cells without results are listed as failed (the
job recorded an ``error.txt``) or missing (still running, or killed), never dropped. Statistics
follow Agarwal et al. 2021 (``rliable``): mean and interquartile mean over seeds with stratified
bootstrap 95% confidence intervals, and the probability of improvement between conditions.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# Random and human reference scores (Mnih et al. 2015 / Badia et al. 2020), for normalised scores.
REFERENCE_SCORES = {"ALE/Breakout-v5": (1.7, 30.5), "ALE/Pong-v5": (-20.7, 14.6)}
# Keys that identify a cell but not its condition.
NOT_CONDITION = {"seed", "encoder", "+condition", "condition"}


class AggregationError(ValueError):
    """Nothing to aggregate, or cells that cannot be compared; the message names the file."""


@dataclass
class Cell:
    """One job of the sweep and what it produced."""

    path: Path
    condition: str
    seed: int
    status: str  # ok | failed | missing | malformed
    env_id: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    encoder: str = ""  # the encoder's config name: cnn, vit, jepa, ae
    variant: str = ""  # the label's varying overrides, "key=value ..." ("" when none vary)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job directory under ``sweep_dir`` (those holding a ``.hydra/config.yaml``)."""
    return sorted(p.parent.parent for p in Path(sweep_dir).rglob(".hydra/config.yaml"))


def read_cell(job: Path, cfg: DictConfig, name: str, varying: list[str]) -> Cell:
    """The cell in ``job`` (resolved config ``cfg``): its condition label, seed and results (or why there are none).

    The label is ``name`` followed by the job's value of each ``varying`` override.
    """
    given = overrides(job)
    variant = " ".join(f"{k}={given.get(k, '-')}" for k in varying)
    label = f"{name} {variant}" if variant else name
    cell = Cell(job, label, int(cfg.seed), "missing", env_id=cfg.env.env_id, encoder=cfg.encoder.name, variant=variant)
    results_path = job / "results.json"
    if results_path.exists():
        try:
            cell.results = json.loads(results_path.read_text())
            cell.status = "ok" if isinstance(cell.results.get("eval"), dict) else "malformed"
        except json.JSONDecodeError as e:
            cell.status = "malformed"
            cell.problem = f"{results_path} is not valid JSON ({e.msg} at line {e.lineno})"
        if cell.status == "malformed" and not cell.problem:
            cell.problem = f"{results_path} has no 'eval' mapping"
    elif (job / "error.txt").exists():
        cell.status, cell.problem = "failed", (job / "error.txt").read_text().strip().splitlines()[-1]
    else:
        cell.problem = "no results.json (the job did not finish)"
    return cell


def overrides(job: Path) -> dict[str, str]:
    """The command-line overrides of a job (``key=value``)."""
    return dict(o.split("=", 1) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml") if "=" in o)


def varying_overrides(jobs: list[Path]) -> list[str]:
    """Override keys whose values differ between jobs (besides seed and encoder): they name conditions."""
    given = [overrides(job) for job in jobs]  # each job's overrides.yaml read once
    keys = {k for g in given for k in g}
    return sorted(k for k in keys - NOT_CONDITION if len({g.get(k) for g in given}) > 1)


def condition_names(configs: dict[Path, DictConfig]) -> dict[Path, str]:
    """Each job's condition name: its ``condition`` (else its encoder), plus ``/<encoder>`` where that name
    covers cells with different encoders, so that a constant ``condition=`` does not merge them."""
    base = {job: cfg.get("condition") or cfg.encoder.name for job, cfg in configs.items()}
    encoders: dict[str, set[str]] = {}
    for job, name in base.items():
        encoders.setdefault(name, set()).add(configs[job].encoder.name)
    return {
        job: f"{name}/{configs[job].encoder.name}" if len(encoders[name]) > 1 else name for job, name in base.items()
    }


def main_game(cells: list[Cell]) -> str:
    """The game most cells play; a tie goes to the first name in sorted order (never to hash order)."""
    counts = Counter(c.env_id for c in cells)
    return min(counts, key=lambda env: (-counts[env], str(env)))


def collect_cells(sweep_dir: Path) -> list[Cell]:
    """Read every cell of a sweep; raises ``AggregationError`` when there is nothing to aggregate."""
    jobs = job_dirs(sweep_dir)
    if not jobs:
        raise AggregationError(f"{sweep_dir} holds no job directories (.hydra/config.yaml); pass a sweep directory")
    configs = {job: OmegaConf.load(job / ".hydra" / "config.yaml") for job in jobs}
    names, varying = condition_names(configs), varying_overrides(jobs)
    cells = [read_cell(job, configs[job], names[job], varying) for job in jobs]
    # One game per report: the most common one; cells of other games are listed, not mixed in.
    main_env = main_game(cells)
    for c in cells:
        if c.env_id != main_env:
            c.status = "other_game"
            c.problem = f"{c.path / '.hydra' / 'config.yaml'} plays {c.env_id}; this report is for {main_env}"
    return cells


def normalised(score: np.ndarray, env_id: str) -> np.ndarray:
    """(score - random) / (human - random); NaN for games without reference scores."""
    if env_id not in REFERENCE_SCORES:
        return np.full_like(score, np.nan, dtype=float)
    random, human = REFERENCE_SCORES[env_id]
    return (score - random) / (human - random)


def score_matrix(cells: list[Cell], suite: list[str]) -> dict[str, np.ndarray]:
    """Per condition: ``[seeds, perturbations]`` mean raw returns (one row per finished seed)."""
    out: dict[str, list[list[float]]] = {}
    for c in cells:
        if c.status == "ok":
            out.setdefault(c.condition, []).append([c.results["eval"][p]["mean"] for p in suite])
    return {k: np.array(v, dtype=float) for k, v in out.items()}


@contextmanager
def global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator inside the block, and give it back its previous state after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def bootstrap(scores: dict, func, reps: int, seed: int) -> tuple[dict, dict]:
    """rliable's stratified-bootstrap point estimates and 95% CIs, seeded: the same intervals in every process."""
    from rliable import library as rly

    logging.getLogger("absl").setLevel(logging.WARNING)  # rliable logs a line per estimate
    # rliable 1.2.0 draws its resample indices with np.random.choice, ignoring random_state: seed the global one.
    with warnings.catch_warnings(), global_numpy_seed(seed):
        warnings.simplefilter("ignore", FutureWarning)  # arch deprecates the RandomState that rliable passes it
        return rly.get_interval_estimates(scores, func, reps=reps, random_state=np.random.RandomState(seed))


def interval_estimates(scores: dict[str, np.ndarray], reps: int, seed: int) -> dict[str, dict[str, Any]]:
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

    stats: dict[str, dict[str, Any]] = {}
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
    number (ties count a half); averaged over tasks. The same numbers (tested), about 10x faster,
    which matters because the bootstrap calls it thousands of times per pair of conditions.
    """
    wins = (x[:, None, :] > y[None, :, :]) + 0.5 * (x[:, None, :] == y[None, :, :])  # [runs_x, runs_y, tasks]
    return np.array([wins.mean(axis=(0, 1)).mean()])


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> dict[str, Any]:
    """P(X > Y) over perturbations (tasks) and seed pairs, with a stratified-bootstrap 95% CI (rliable)."""
    point, ci = bootstrap({"pair": (x, y)}, improvement_probability, reps, seed)
    return {"p": float(point["pair"][0]), "ci": [float(ci["pair"][0, 0]), float(ci["pair"][1, 0])]}


def write_cells_csv(cells: list[Cell], suite: list[str], path: Path) -> None:
    """One row per cell: status, condition, seed, mean return per perturbation, robustness ratio."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["condition", "seed", "status", *suite, "robustness_ratio", "train_sps", "path", "problem"])
        for c in cells:
            ev = c.results.get("eval", {}) if c.status == "ok" else {}
            means = [ev[p]["mean"] if p in ev else "" for p in suite]
            ratio = c.results.get("robustness_ratio", "") if c.status == "ok" else ""
            sps = c.results.get("train_sps", "") if c.status == "ok" else ""
            writer.writerow(
                [c.condition, c.seed, c.status, *means, ratio, sps, str(c.path.relative_to(path.parent)), c.problem]
            )


def robustness_ratios(cells: list[Cell]) -> np.ndarray:
    """The finished cells' robustness ratios (a run whose clean mean is <= 0 has none)."""
    return np.array([c.results["robustness_ratio"] for c in cells if c.results.get("robustness_ratio") is not None])


def fmt_ci(value: float, ci: list[float], digits: int = 1) -> str:
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def mean_std(values: np.ndarray, digits: int) -> str:
    """``mean ± sample std`` (ddof=1) of ``values``; the mean alone for a single value, ``-`` for none."""
    if len(values) == 0:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def study_table(cells: list[Cell], suite: list[str]) -> str:
    """The study's table in markdown: mean ± sample std over seeds per perturbation, and the robustness ratio."""
    rows = ["| condition | seeds | " + " | ".join(suite) + " | robustness ratio |"]
    rows.append("|---" * (len(suite) + 3) + "|")
    for condition in sorted({c.condition for c in cells}):
        done = [c for c in cells if c.condition == condition and c.status == "ok"]
        means = np.array([[c.results["eval"][p]["mean"] for p in suite] for c in done]).reshape(len(done), len(suite))
        cols = [mean_std(means[:, j], 1) for j in range(len(suite))]
        rows.append(
            f"| {condition} | {len(done)} | " + " | ".join(cols) + f" | {mean_std(robustness_ratios(done), 2)} |"
        )
    return "\n".join(rows)


def statistics_table(stats: dict[str, dict[int, dict]], suite: list[str], key: str, digits: int = 1) -> str:
    """Markdown table of a statistic (``mean`` or ``iqm``) with its 95% CI per condition and perturbation."""
    rows = ["| condition | " + " | ".join(suite) + " |", "|---" * (len(suite) + 1) + "|"]
    for condition, per in sorted(stats.items()):
        rows.append(
            f"| {condition} | "
            + " | ".join(fmt_ci(per[j][key], per[j][f"{key}_ci"], digits) for j in range(len(suite)))
            + " |"
        )
    return "\n".join(rows)


def aggregate(sweep_dir: Path, reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Aggregate ``sweep_dir``: writes ``cells.csv``, ``stats.json`` and ``REPORT.md`` there; returns the stats."""
    sweep_dir = Path(sweep_dir)
    cells = collect_cells(sweep_dir)
    suite = common_suite(cells)
    flag_duplicates(cells)
    write_cells_csv(cells, suite, sweep_dir / "cells.csv")
    env_id = next(c.env_id for c in cells if c.status != "other_game")
    scores = score_matrix(cells, suite)
    stats = interval_estimates(scores, reps, seed) if scores else {}
    known = env_id in REFERENCE_SCORES and scores
    norm_stats = interval_estimates({k: normalised(v, env_id) for k, v in scores.items()}, reps, seed) if known else {}
    pairs = comparisons(cells, scores, env_id, reps, seed)
    summary = {
        "sweep_dir": str(sweep_dir),
        "env_id": env_id,
        "suite": suite,
        "cells": {
            str(c.path.relative_to(sweep_dir)): {
                "condition": c.condition,
                "seed": c.seed,
                "status": c.status,
                "problem": c.problem,
            }
            for c in cells
        },
        "statistics": {k: {suite[j]: v for j, v in per.items()} for k, per in stats.items()},
        "normalised_statistics": {k: {suite[j]: v for j, v in per.items()} for k, per in norm_stats.items()},
        "probability_of_improvement": pairs,
    }
    from jepa_rl.plots import sweep_plots
    from jepa_rl.report import write_report

    with global_numpy_seed(seed):  # seaborn's strip-plot jitter draws from numpy's global generator
        summary["plots"] = {k: str(v) for k, v in sweep_plots(sweep_dir, cells, suite).items()}
    write_report(sweep_dir, cells, suite, stats, pairs, summary["plots"], norm_stats)
    (sweep_dir / "stats.json").write_text(json.dumps(summary, indent=2))
    return summary


def common_suite(cells: list[Cell]) -> list[str]:
    """The perturbations most finished cells evaluated, compared as sets (a tie goes to the first cell's, in path
    order), in the order of the first cell evaluating them; finished cells that evaluated another set are marked
    malformed."""
    done = [c for c in cells if c.status == "ok"]
    counts = Counter(frozenset(c.results["eval"]) for c in done)  # insertion order: path order
    if not counts:
        return []
    common = max(counts, key=counts.__getitem__)  # max keeps the first of equal counts
    suite = next(list(c.results["eval"]) for c in done if set(c.results["eval"]) == common)
    for c in done:
        if set(c.results["eval"]) != common:
            c.status = "malformed"
            c.problem = (
                f"{c.path / 'results.json'} evaluates {list(c.results['eval'])}, not {suite} "
                f"(the suite of {counts[common]} of {len(done)} finished cells)"
            )
    return suite


def flag_duplicates(cells: list[Cell]) -> None:
    """Mark a finished cell malformed when an earlier one (path order) has its condition and seed: averaging the
    two would count one seed twice."""
    first: dict[tuple[str, int], Cell] = {}
    for c in cells:
        if c.status != "ok":
            continue
        other = first.setdefault((c.condition, c.seed), c)
        if other is not c:
            c.status = "malformed"
            c.problem = (
                f"same condition ({c.condition}) and seed ({c.seed}) as {other.path}; only that one is aggregated"
            )


def comparisons(cells: list[Cell], scores: dict[str, np.ndarray], env_id: str, reps: int, seed: int) -> dict[str, Any]:
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
                if env_id in REFERENCE_SCORES:
                    xa, yb = normalised(xa, env_id), normalised(yb, env_id)
                out[f"{ka} > {kb}"] = probability_of_improvement(xa, yb, reps, seed)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m jepa_rl.aggregate SWEEP_DIR``: aggregate an existing sweep directory."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m jepa_rl.aggregate SWEEP_DIR", file=sys.stderr)
        return 2
    try:
        summary = aggregate(Path(args[0]))
    except AggregationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    bad = [k for k, c in summary["cells"].items() if c["status"] != "ok"]
    print(f"wrote {Path(args[0]) / 'REPORT.md'} ({len(summary['cells']) - len(bad)} cells aggregated, {len(bad)} not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
