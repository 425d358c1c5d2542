"""Aggregate a sweep directory: every cell's ``results.json`` -> ``cells.csv``, statistics, plots, ``REPORT.md``.

Runs at the end of every multirun (``jepa_rl.sweep.callback.AggregateSweep``) and on demand::

    python -m jepa_rl.sweep multirun/grid-cpu/2026-11-27_12-00-00

The only module that ties the others together: cells -> statistics -> ``cells.csv``, figures, ``REPORT.md``
and ``stats.json``. Nothing in the package imports it but the callback and ``__main__``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from jepa_rl.envs.reference_scores import REFERENCE_SCORES, minimum_skill
from jepa_rl.sweep.cells import (
    NOT_A_PROBLEM,
    AggregationError,
    Cell,
    collect_cells,
    common_suite,
    flag_duplicates,
    invariance_suite,
    random_means,
    score_matrix,
    write_cells_csv,
)
from jepa_rl.sweep.games import across_games
from jepa_rl.sweep.plots import sweep_plots
from jepa_rl.sweep.report import write_report
from jepa_rl.sweep.robustness import robustness_statistics
from jepa_rl.sweep.statistics import comparisons, global_numpy_seed, interval_estimates, normalised

log = logging.getLogger(__name__)

USAGE = "usage: python -m jepa_rl.sweep SWEEP_DIR [--no-figures] [--reference CONDITION]"


def aggregate(
    sweep_dir: Path,
    reps: int = 2000,
    seed: int = 0,
    gif_steps: int = 400,
    figures: bool = True,
    reference: str = "cnn",
) -> dict[str, Any]:
    """Aggregate ``sweep_dir``: writes ``cells.csv``, ``stats.json``, the figures and ``REPORT.md`` there; returns
    the summary written to ``stats.json``. ``reps`` bootstrap resamples, seeded with ``seed``; gameplay GIFs
    of at most ``gif_steps`` agent steps. ``figures=False`` leaves the figures out (they take most of the time):
    the numbers and the report's tables are the same. ``reference``: the corruption error's reference condition."""
    sweep_dir = Path(sweep_dir)
    cells = collect_cells(sweep_dir)
    # The suite and the duplicates mark cells that cannot be compared: before anything counts the finished ones.
    suite = common_suite(cells)
    flag_duplicates(cells)
    write_cells_csv(cells, suite, sweep_dir / "cells.csv")
    env_id = next(c.env_id for c in cells if c.status != "other_game")
    scores = score_matrix(cells, suite)
    stats = interval_estimates(scores, reps, seed) if scores else {}
    known = env_id in REFERENCE_SCORES and scores
    # Normalised by each cell's own measured random policy (the published score where a cell has none).
    randoms = random_means(cells)
    norm = {k: normalised(v, env_id, randoms[k]) for k, v in scores.items()} if known else {}
    norm_stats = interval_estimates(norm, reps, seed) if known else {}
    pairs = comparisons(cells, scores, env_id, reps, seed)
    # Cells that played no games are still measured on identical states: their perturbations stand in for a suite.
    measured = suite or invariance_suite(cells)
    robust = robustness_statistics(cells, measured, reps, seed, reference, sweep_minimum_skill(cells, env_id))
    games = across_games(cells, sweep_dir, reps, seed)  # None unless the sweep plays several games
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
        "robustness": robust,
        "across_games": games,
    }
    plots = draw_figures(sweep_dir, cells, suite, measured, seed, gif_steps) if figures else {}
    summary["plots"] = {k: str(v) for k, v in plots.items()}
    drawn = summary["plots"] if figures else None
    write_report(sweep_dir, cells, suite, stats, pairs, drawn, norm_stats, robust, games)
    (sweep_dir / "stats.json").write_text(json.dumps(summary, indent=2))
    return summary


def sweep_minimum_skill(cells: list[Cell], env_id: str) -> float:
    """The points above its floor that retention asks of clean play in this sweep's protocol (a finished
    cell's ``eval.min_skill_share`` of the game's random-to-human range)."""
    done = [c for c in cells if c.status == "ok"]
    if not done:
        return 0.0
    share = OmegaConf.load(done[0].path / ".hydra" / "config.yaml").eval.get("min_skill_share", 0.1)
    return minimum_skill(env_id, share)


def draw_figures(
    sweep_dir: Path, cells: list[Cell], suite: list[str], measured: list[str], seed: int, gif_steps: int
) -> dict[str, Path]:
    """The sweep's figures, then the trained agents' (saliency, gameplay); name -> PNG or GIF path."""
    with global_numpy_seed(seed):  # seaborn's strip-plot jitter draws from numpy's global generator
        log.info("report: drawing the sweep's figures")
        figures = sweep_plots(sweep_dir, cells, suite, measured)
        if suite:  # no cell played games: no trained agent to show either
            # Imported here, not at the top: it loads torch and the agent stack, which only these figures need.
            from jepa_rl.sweep.agent_figures import sweep_agent_figures

            log.info("report: the trained agents' saliency and gameplay, from their checkpoints")
            figures.update(sweep_agent_figures(sweep_dir, cells, gif_steps))
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python -m jepa_rl.sweep SWEEP_DIR``: aggregate an existing sweep directory; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(
            f"{USAGE}\n\n(Re)build cells.csv, stats.json, the figures and REPORT.md of a sweep directory."
            "\n--no-figures: numbers and tables only (much faster on a large sweep)."
            "\n--reference CONDITION: the corruption error's reference condition (default cnn)."
        )
        return 0
    figures = "--no-figures" not in args
    args = [a for a in args if a != "--no-figures"]
    reference = "cnn"
    if "--reference" in args[:-1]:
        at = args.index("--reference")
        reference, args = args[at + 1], args[:at] + args[at + 2 :]
    if len(args) != 1 or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        summary = aggregate(Path(args[0]), figures=figures, reference=reference)
    except AggregationError as e:  # a wrong directory: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    bad = [k for k, c in summary["cells"].items() if c["status"] not in NOT_A_PROBLEM]
    print(f"wrote {Path(args[0]) / 'REPORT.md'} ({len(summary['cells']) - len(bad)} cells aggregated, {len(bad)} not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
