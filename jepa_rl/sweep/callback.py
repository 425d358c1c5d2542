"""The Hydra callback that aggregates a sweep when it ends, and the sweep's W&B summary run.

Named in ``conf/config.yaml`` (``hydra.callbacks``), so Hydra builds it for every launch: it imports the
aggregation (plots, statistics) only when a multirun ends.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class AggregateSweep(Callback):
    """At the end of a multirun: ``cells.csv``, ``stats.json`` and ``REPORT.md`` in the sweep directory.

    Runs in the launching process and reads what each job wrote (jobs may run in other processes or
    on other machines). Exits with an error after writing the report when any cell failed.
    ``gif_steps`` bounds each gameplay GIF (``hydra.callbacks.aggregate.gif_steps``); ``reference`` is the
    condition the corruption error is measured against (``hydra.callbacks.aggregate.reference``), checked
    against the sweep's conditions before any job starts.
    """

    def __init__(self, gif_steps: int = 400, reference: str = "cnn") -> None:
        self.gif_steps, self.reference = gif_steps, reference

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        names = swept_conditions(config)
        if len(names) > 1 and self.reference not in names:
            sys.exit(
                f"error: hydra.callbacks.aggregate.reference={self.reference} is not a condition of this sweep; "
                f"choose one of {', '.join(names)}"
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Imported here: Hydra builds the callback for every launch, and only a multirun's end needs the plotting stack.
        from jepa_rl.sweep.aggregate import aggregate
        from jepa_rl.sweep.cells import AggregationError

        sweep_dir = Path(config.hydra.sweep.dir)
        # Hydra turns a callback's exception into a warning: exit instead, so a broken report is not missed.
        try:
            summary = aggregate(sweep_dir, gif_steps=self.gif_steps, reference=self.reference)
        except AggregationError as e:
            sys.exit(f"error: no sweep report: {e}")
        except Exception as e:
            log.exception("aggregation failed")
            sys.exit(
                f"error: the sweep report for {sweep_dir} failed ({type(e).__name__}: {e}); "
                f"rerun it with: python -m jepa_rl.sweep {sweep_dir}"
            )
        try:  # the W&B summary is a copy of the report: its failure must not skip the failed-cells exit below
            log_summary_run(config, sweep_dir, summary)
        except Exception as e:
            log.warning("no W&B summary run for %s (%s: %s)", sweep_dir, type(e).__name__, e)
        cells = summary["cells"].values()
        bad = [c for c in cells if c["status"] not in ("ok", "other_game")]  # another game's cells are reported too
        log.info("sweep report: %s (%d of %d cells)", sweep_dir / "REPORT.md", len(cells) - len(bad), len(cells))
        if bad:
            sys.exit(f"error: {len(bad)} of {len(cells)} cells did not finish; see {sweep_dir / 'REPORT.md'}")


def swept_conditions(config: DictConfig) -> list[str]:
    """The condition names a multirun sweeps over, from its sweeper's parameters and its command line: the
    values of ``condition`` (``+condition``), else of ``encoder``; empty when neither is swept."""
    swept = dict(config.hydra.sweeper.get("params") or {})
    for override in config.hydra.overrides.task:
        key, _, value = override.partition("=")
        swept[key] = value
    for key in ("+condition", "condition", "++condition", "encoder"):
        if key in swept:
            return [v.strip() for v in str(swept[key]).split(",")]
    return []


def log_summary_run(config: DictConfig, sweep_dir: Path, summary: dict[str, Any]) -> None:
    """One W&B run for the whole sweep (job type ``summary``): the per-cell table, statistics and plots."""

    from jepa_rl.config.fingerprint import plain
    from jepa_rl.runtime.tracking import stable_run_id, tracker_session

    logger = plain(config.logger)
    sid = "/".join(sweep_dir.parts[-2:])
    with tracker_session(
        **{**logger, "group": f"sweep-{sid}", "name": "summary", "tags": [f"sweep:{sid}"[:64], "summary"]},
        config={"sweep_dir": str(sweep_dir), "env_id": summary["env_id"], "suite": summary["suite"]},
        run_dir=sweep_dir,
        run_id=f"summary-{stable_run_id(sweep_dir)}",
    ) as tracker:
        rows = [[k, c["condition"], c["seed"], c["status"], c["problem"]] for k, c in summary["cells"].items()]
        tracker.table("sweep/cells", ["cell", "condition", "seed", "status", "problem"], rows)
        stat_rows = [
            [condition, pert, s["mean"], *s["mean_ci"], s["iqm"], *s["iqm_ci"]]
            for condition, per in summary["statistics"].items()
            for pert, s in per.items()
        ]
        columns = ["condition", "perturbation", "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi"]
        tracker.table("sweep/statistics", columns, stat_rows)
        tracker.summary({f"sweep/P({k})": v["p"] for k, v in summary["probability_of_improvement"].items()})
        tracker.images({f"sweep/{k}": Path(v) for k, v in summary["plots"].items()})
