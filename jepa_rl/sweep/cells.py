"""The cells of a sweep: one per job directory (it has ``.hydra/``), with its condition, seed and results.

Cells without results are kept, marked failed (the job recorded an ``error.txt``) or missing (still running, or
killed), never dropped; cells that cannot be compared with the rest (another game, another suite, a second run
of the same condition and seed) are marked too, with the file that says why.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from jepa_rl.runtime.json_files import read_json

# Keys that identify a cell but not its condition.
# Overrides that do not name a condition: the seed, the encoder (named already), and the game (a task:
# each report is for one game, and the cross-game section compares a condition over all of them).
NOT_CONDITION = {"seed", "encoder", "+condition", "condition", "env"}


# Cells whose policy invariance was measured: finished ones, and those that played no games (eval.episodes=0).
MEASURED_INVARIANCE = ("ok", "no_games")
# Statuses that are not a problem to report (a cell of another game is listed apart).
NOT_A_PROBLEM = (*MEASURED_INVARIANCE, "other_game")


class AggregationError(ValueError):
    """Nothing to aggregate, or cells that cannot be compared; the message names the file."""


@dataclass
class Cell:
    """One job of the sweep and what it produced."""

    path: Path
    condition: str
    seed: int
    status: str  # ok | no_games (policy invariance only) | failed | missing | malformed | other_game
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
            cell.results = read_json(results_path)
            cell.status = "ok" if isinstance(cell.results.get("eval"), dict) else "malformed"
        except ValueError as e:
            cell.status, cell.problem = "malformed", f"{results_path} {e}"
        if cell.status == "ok" and not cell.results["eval"]:  # eval.episodes=0: its policy invariance only
            cell.status = "no_games"
            cell.problem = f"{results_path} holds no games (eval.episodes=0): in the policy-invariance tables only"
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


def invariance_suite(cells: list[Cell]) -> list[str]:
    """Where no cell played games (all ``eval.episodes=0``): clean and the perturbations whose policy invariance
    every such cell measured, in the first one's order; empty otherwise."""
    rows = [c.results.get("policy_invariance") or {} for c in cells if c.status == "no_games"]
    if not rows or any(c.status == "ok" for c in cells):
        return []
    return ["clean", *(p for p in rows[0] if all(p in r for r in rows))]


def flag_duplicates(cells: list[Cell]) -> None:
    """Mark a finished cell malformed when an earlier one (path order) has its condition and seed: averaging the
    two would count one seed twice."""
    first: dict[tuple[str, int], Cell] = {}
    for c in cells:
        if c.status not in MEASURED_INVARIANCE:  # a seed measured twice counts twice in invariance too
            continue
        other = first.setdefault((c.condition, c.seed), c)
        if other is not c:
            c.status = "malformed"
            c.problem = (
                f"same condition ({c.condition}) and seed ({c.seed}) as {other.path}; only that one is aggregated"
            )


def score_matrix(cells: list[Cell], suite: list[str]) -> dict[str, np.ndarray]:
    """Per condition: ``[seeds, perturbations]`` mean raw returns (one row per finished seed)."""
    out: dict[str, list[list[float]]] = {}
    for c in cells:
        if c.status == "ok":
            out.setdefault(c.condition, []).append([c.results["eval"][p]["mean"] for p in suite])
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def random_means(cells: list[Cell]) -> dict[str, np.ndarray]:
    """Per condition: ``[seeds, 1]`` the random policy's mean score each finished cell measured under its
    protocol (NaN where a cell did not), aligned with ``score_matrix``'s rows."""
    out: dict[str, list[list[float]]] = {}
    for c in cells:
        if c.status == "ok":
            out.setdefault(c.condition, []).append([(c.results.get("random_policy") or {}).get("mean", np.nan)])
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def measured_random(cells: list[Cell]) -> float | None:
    """The mean random-policy score the finished cells measured (None when none did)."""
    values = [m for v in random_means(cells).values() for m in v[:, 0] if not np.isnan(m)]
    return float(np.mean(values)) if values else None


def robustness_ratios(cells: list[Cell]) -> np.ndarray:
    """The finished cells' robustness ratios (a run whose clean mean is <= 0 has none)."""
    return np.array([c.results["robustness_ratio"] for c in cells if c.results.get("robustness_ratio") is not None])


def write_cells_csv(cells: list[Cell], suite: list[str], path: Path) -> None:
    """One row per cell: status, condition, seed, mean return per perturbation, robustness ratio."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        others = [p for p in suite if p != "clean"]
        writer.writerow(
            ["condition", "seed", "status", *suite, "random_policy", *(f"retention:{p}" for p in others)]
            + ["robustness_ratio", "train_sps", "path", "problem"]
        )
        for c in cells:
            # Only finished cells have numbers to show: a malformed cell's results are not to be trusted.
            r = c.results if c.status == "ok" else {}
            ev, kept = r.get("eval", {}), r.get("retention") or {}
            means = [ev[p]["mean"] if p in ev else "" for p in suite]
            random = (r.get("random_policy") or {}).get("mean", "")
            row = [c.condition, c.seed, c.status, *means, random, *(kept.get(p, "") for p in others)]
            row += [r.get("robustness_ratio", ""), r.get("train_sps", ""), str(c.path.relative_to(path.parent))]
            writer.writerow([*row, c.problem])
