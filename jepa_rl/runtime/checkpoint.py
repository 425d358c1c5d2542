"""Atomic, validated checkpoints: written to a temporary file then renamed, loaded with ``weights_only``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from jepa_rl.runtime.json_files import temporary_beside

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or written by another configuration."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically: a kill mid-write leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed before its rename
        stale.unlink(missing_ok=True)
    fd, tmp = temporary_beside(path)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_weights_only(path: Path) -> Any:
    """``torch.load`` of tensors and plain containers only; another program's pickle is refused, quietly
    (the caller names the file in one line)."""
    with warnings.catch_warnings():  # torch warns about a pickle protocol before refusing the file
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; raises ``CheckpointError`` with the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the path of a checkpoint.pt")
    try:
        state = load_weights_only(path)
    except Exception as e:  # noqa: BLE001  (a corrupt file raises whatever torch's unzipping and unpickling meet)
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(e).__name__}); delete it to start over"
        ) from e
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a jepa-rl checkpoint; delete it to start over")
    return state
