"""Hydra callbacks: aggregate a sweep when it ends."""

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
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from jepa_rl.aggregate import AggregationError, aggregate

        sweep_dir = Path(config.hydra.sweep.dir)
        # Hydra turns a callback's exception into a warning: exit instead, so a broken report is not missed.
        try:
            summary = aggregate(sweep_dir)
        except AggregationError as e:
            sys.exit(f"error: no sweep report: {e}")
        except Exception as e:
            log.exception("aggregation failed")
            sys.exit(
                f"error: the sweep report for {sweep_dir} failed ({type(e).__name__}: {e}); "
                f"rerun it with: python -m jepa_rl.aggregate {sweep_dir}"
            )
        cells = summary["cells"].values()
        bad = [c for c in cells if c["status"] != "ok"]
        log.info("sweep report: %s (%d of %d cells)", sweep_dir / "REPORT.md", len(cells) - len(bad), len(cells))
        if bad:
            sys.exit(f"error: {len(bad)} of {len(cells)} cells did not finish; see {sweep_dir / 'REPORT.md'}")
