"""Small helpers shared by the stages: seeding, device choice, atomic JSON."""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the emulator and perturbations take their own seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # As CleanRL: cuDNN's default algorithm choice may accumulate with atomics, so a GPU run would not repeat.
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def pick_device(requested: str) -> torch.device:
    """``auto`` means CUDA when available, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write JSON atomically (rename over the old file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
