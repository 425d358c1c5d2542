"""What a rerun of a train job finds in its directory: a checkpoint to resume, or results already made.

Both record the config sections they came from (``config.fingerprint``). A checkpoint trained with
another config is refused, and so are results trained with one (a rerun must not relabel them);
results evaluated with other evaluation settings make the job evaluate its final checkpoint again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jepa_rl.runtime.checkpoint import CheckpointError, load_checkpoint
from jepa_rl.runtime.json_files import read_json

log = logging.getLogger(__name__)

EPISODES_HEADER = "step,env,score,length"  # episodes.csv: the agent step a game ended at, its env, raw score, length
TRAINING_SECTIONS = ("seed", "env", "encoder", "head", "perturbation", "ppo", "pretrain")  # a different one refuses


def without_targets(config: Any) -> Any:
    """``config`` less its ``_target_`` keys, at any depth. They say which class built a section, not what
    it holds, and a config recorded before the packages moved names its classes by their old paths."""
    if isinstance(config, dict):
        return {k: without_targets(v) for k, v in config.items() if k != "_target_"}
    return config


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """Dotted key of the first difference between two nested dicts (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    return None if a == b else prefix.rstrip(".")


def checkpoint_to_resume(ckpt_path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The job's checkpoint to resume from (None: a fresh start); one trained with another config is refused."""
    if not ckpt_path.exists():
        return None
    state = load_checkpoint(ckpt_path)
    diff = first_difference(without_targets(state["config"]), without_targets(fingerprint))
    if diff:
        raise CheckpointError(
            f"{ckpt_path} was trained with a different {diff}; "
            "rerun with the original config or choose a new hydra.run.dir"
        )
    log.info("resuming from %s at step %d", ckpt_path, state["global_step"])
    return state


def finished_results(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The job's ``results.json`` if the config ``fingerprint`` (``config.fingerprint.results_fingerprint``)
    produced it; None when there is work to do. Results of another training config are refused."""
    if not path.exists():
        return None
    try:
        results = read_json(path)
    except ValueError as e:
        raise CheckpointError(f"{path} {e}; delete it to evaluate the checkpoint again") from e
    diff = first_difference(*map(without_targets, (results["config"], fingerprint))) if "config" in results else None
    if diff is None:
        return results
    if diff.split(".")[0] in TRAINING_SECTIONS:
        raise CheckpointError(
            f"{path} holds results trained with a different {diff}; "
            "rerun with the original config or choose a new hydra.run.dir (hydra.sweep.dir for -m)"
        )
    log.info("%s was evaluated with a different %s: evaluating the trained agent again", path, diff)
    return None


def keep_rows_until(csv_path: Path, global_step: int) -> None:
    """Drop episode rows logged after ``global_step`` (work the resumed run will redo). A last row without
    its newline was cut short by the kill: it is dropped too; any other row that does not parse is refused."""
    if not csv_path.exists():
        return
    try:
        text = csv_path.read_bytes().decode()
    except UnicodeDecodeError as e:
        raise CheckpointError(
            f"{csv_path} is not text; repair or delete it (it holds the training games' scores)"
        ) from e
    rows = text.splitlines()
    if rows and not text.endswith("\n") and episode_step(rows[-1]) is None:
        rows.pop()
    kept = []
    for number, row in enumerate(rows, 1):
        step = episode_step(row)
        if number == 1 and row == EPISODES_HEADER:
            continue
        if row and step is None:
            raise CheckpointError(
                f"{csv_path} line {number} is not 'step,env,score,length' ({row[:40]!r}); "
                "repair or delete it (it holds the training games' scores)"
            )
        if row and step <= global_step:
            kept.append(row)
    csv_path.write_text("".join(r + "\n" for r in [EPISODES_HEADER, *kept]))


def episode_step(row: str) -> int | None:
    """The agent step of an ``episodes.csv`` row (``step,env,score,length``), or None if it is not one."""
    try:
        step, _, score, _ = row.split(",")
        float(score)
        return int(step)
    except ValueError:
        return None
