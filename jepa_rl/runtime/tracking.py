"""Experiment tracking: one Weights & Biases run per job, or nothing with ``logger=none``."""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def wandb_mode(requested: str | None) -> str:
    """``online`` / ``offline`` / ``disabled``: the config wins, then ``WANDB_MODE``, then login state."""
    if requested:
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:  # `wandb login` stores the key in ~/.netrc
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError):
        pass
    return "offline"


def stable_run_id(output_dir: Path) -> str:
    """A W&B run id derived from the job's output directory, so a resumed job continues its run."""
    return hashlib.sha1(str(Path(output_dir).resolve()).encode()).hexdigest()[:16]


class Tracker:
    """Logs stage-prefixed metrics (``charts/``, ``losses/``, ``eval/<perturbation>/``) to W&B.

    A job killed without warning resumes from a checkpoint older than its last logged step and
    trains those steps again. Steps an earlier segment of the run recorded (``logged_until``) are
    not logged a second time, so the segments of a requeued run cover disjoint steps (W&B histories
    must increase; ``wandb sync`` joins offline segments in order). Online, W&B enforces this itself.
    """

    def __init__(self, run: Any = None, logged_until: int = -1) -> None:
        self.run, self.logged_until = run, logged_until

    def log(self, metrics: dict[str, float], step: int, again: bool = False) -> None:
        """Log ``metrics`` at ``step``, unless an earlier segment of this run logged it (``again``: log anyway)."""
        if self.run and (step > self.logged_until or again):
            self.run.log(metrics, step=step)

    def table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None:
        if self.run:
            import wandb

            self.run.log({key: wandb.Table(columns=columns, data=rows)}, step=step)

    def images(self, paths: dict[str, Path], step: int | None = None) -> None:
        """Log image files (figures) under the given keys."""
        if self.run:
            import wandb

            self.run.log({key: wandb.Image(str(path)) for key, path in paths.items()}, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run:
            self.run.summary.update(values)

    def preempting(self) -> None:
        """Tell W&B the run stops to be resumed (shown as preempted, not crashed)."""
        if self.run:
            self.run.mark_preempting()

    def finish(self, exit_code: int = 0) -> None:
        if self.run:
            self.run.finish(exit_code=exit_code)
            self.run = None


def start_tracker(
    *,
    backend: str,
    project: str,
    entity: str | None,
    mode: str | None,
    group: str,
    name: str,
    tags: list[str],
    config: dict[str, Any],
    run_dir: Path,
    run_id: str,
    init_timeout: float = 30.0,
) -> Tracker:
    """Start the job's W&B run (``backend="wandb"``) or a no-op tracker (``backend="none"``).

    Online mode that cannot reach the server within ``init_timeout`` seconds falls back to offline.
    """
    if backend == "none":
        return Tracker()
    import wandb  # slow to import: only when used

    kwargs = dict(
        project=project,
        entity=entity,
        group=group,
        name=name,
        tags=tags,
        config=config,
        dir=str(run_dir),
        id=run_id,
        resume="allow",
        reinit="finish_previous",  # joblib workers are reused across jobs
    )
    resolved = wandb_mode(mode)
    if resolved == "online":
        try:  # without a reachable server, online init would wait out wandb's 90 s default, then fail the job
            run = wandb.init(mode="online", settings=wandb.Settings(init_timeout=init_timeout), **kwargs)
            return Tracker(run)  # the server knows the run's steps
        except Exception as e:
            log.warning(
                "W&B online init failed (%s: %s); falling back to offline mode: sync later with `wandb sync`",
                type(e).__name__,
                str(e).splitlines()[0] if str(e) else "",
            )
            wandb.teardown()  # the failed attempt still holds the run id in wandb's service process
            resolved = "offline"
    return Tracker(wandb.init(mode=resolved, **kwargs), previous_offline_step(run_dir, run_id))


@contextmanager
def tracker_session(**settings: Any) -> Iterator[Tracker]:
    """A tracker for the span of a ``with`` block (``start_tracker``'s arguments): finished at its end,
    marked failed (exit code 1) when the block raises, so one crashed stage leaves no half-open run."""
    tracker = start_tracker(**settings)
    try:
        yield tracker
    except BaseException:
        tracker.finish(exit_code=1)
        raise
    finally:
        tracker.finish()


def previous_offline_step(run_dir: Path, run_id: str) -> int:
    """The last step earlier offline segments of this run recorded, or -1 (none, or unreadable)."""
    from jepa_rl.runtime.wandb_history import last_offline_step

    try:
        return last_offline_step(Path(run_dir) / "wandb", run_id)
    except Exception as e:  # a format this reader does not know: log everything rather than fail the job
        log.warning("could not read earlier W&B segments of run %s (%s); logging every step", run_id, e)
        return -1
