"""What a job learns from Hydra at run time: its output directory, its launcher, its sweep, its W&B group."""

from __future__ import annotations

import hashlib
import logging
import shutil
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def short_dirname(name: str, limit: int = 120) -> str:
    """A path component for ``name``: itself when short, else a readable prefix and a hash (file systems cap at 255)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 17]}-{hashlib.sha1(name.encode()).hexdigest()[:16]}"


def output_dir() -> Path:
    """This job's Hydra output directory (Hydra 1.3 does not chdir into it)."""
    return Path(HydraConfig.get().runtime.output_dir)


def launcher_settings() -> dict[str, Any]:
    """The launcher's config (``cpus_per_task``, ``n_jobs``...) as plain values."""
    return OmegaConf.to_container(HydraConfig.get().launcher, resolve=True)


def is_multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_id() -> str | None:
    """``<sweep name>/<timestamp>`` of this job's multirun (the last two parts of the sweep dir), else None."""
    if not is_multirun():
        return None
    return "/".join(Path(HydraConfig.get().sweep.dir).parts[-2:])


def sweep_tags() -> list[str]:
    """A tag shared by every run of a sweep, so a W&B dashboard filters to it."""
    sid = sweep_id()
    return [f"sweep:{sid}"[:64]] if sid else []


def condition_group(group: str, override_dirname: str, task_overrides: Sequence[str]) -> str:
    """The W&B group of a job: ``logger.group`` plus the overrides that set its condition apart.

    ``override_dirname`` leaves out the seed (``hydra.job.config.override_dirname``), so a condition's
    seeds share a group while conditions differing only in, e.g., ``encoder.lr_scale`` do not. A
    ``logger.group`` given on the command line is used as it is. W&B caps group names at 128 characters.
    """
    if not override_dirname or any(o.startswith("logger.group=") for o in task_overrides):
        return group
    return short_dirname(f"{group}-{override_dirname}", 128)


def job_group(group: str) -> str:
    """``condition_group`` for this job."""
    hc = HydraConfig.get()
    return condition_group(group, hc.job.override_dirname, hc.overrides.task)


def record_failure(error: BaseException) -> bool:
    """In a multirun, write the error to the job's ``error.txt`` and return True (the sweep goes on)."""
    if not is_multirun():
        return False
    out = output_dir()
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(traceback.format_exception(error))
    (out / "error.txt").write_text(f"{text}\n{type(error).__name__}: {error}\n")
    log.error("this cell failed (%s: %s); recorded in %s", type(error).__name__, error, out / "error.txt")
    return True


HYDRA_OWN = {".hydra", "launch.log"}  # what Hydra writes into a job's directory before the job runs


def discard_refused(out: Path, root: Path) -> None:
    """A job refused before it did anything leaves nothing on disk: remove ``out`` when it holds only
    Hydra's own files, then its parents up to ``root`` while they are empty. A directory holding
    anything else (a checkpoint, results) is never touched."""
    if not out.is_dir() or {p.name for p in out.iterdir()} - HYDRA_OWN:
        return
    for name in HYDRA_OWN:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    out.rmdir()
    for folder in out.parents:  # the folders Hydra made for it (outputs/<experiment>/...), when empty
        if folder == root or not folder.is_relative_to(root) or any(folder.iterdir()):
            break
        folder.rmdir()
