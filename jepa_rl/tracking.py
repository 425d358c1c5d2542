"""Experiment tracking: one Weights & Biases run per job, or nothing with ``logger=none``."""

from __future__ import annotations

import hashlib
import netrc
import os
from pathlib import Path
from typing import Any


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
    """Logs stage-prefixed metrics (``charts/``, ``losses/``, ``eval/<perturbation>/``) to W&B."""

    def __init__(self, run: Any = None) -> None:
        self.run = run

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.run:
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
) -> Tracker:
    """Start the job's W&B run (``backend="wandb"``) or a no-op tracker (``backend="none"``)."""
    if backend == "none":
        return Tracker()
    import wandb  # slow to import: only when used

    run = wandb.init(
        project=project,
        entity=entity,
        group=group,
        name=name,
        tags=tags,
        config=config,
        dir=str(run_dir),
        mode=wandb_mode(mode),
        id=run_id,
        resume="allow",
        reinit="finish_previous",  # joblib workers are reused across jobs
    )
    return Tracker(run)
