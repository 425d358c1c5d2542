"""Small helpers shared by the stages: seeding, device and precision choice, the allocator, atomic JSON."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


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


def native_bf16(device: torch.device) -> bool:
    """True where ``device`` computes bf16 convolutions and matmuls in hardware: a CUDA GPU with bf16
    support, or a CPU with AVX512-BF16 or AMX. Elsewhere (AVX2-only CPUs: most laptops, AMD Zen 3
    and older) oneDNN emulates bf16, and a Nature-CNN update ran 13x slower than in float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own probes
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def use_bf16(autocast: str, device: torch.device, on_gpu: bool = True) -> bool:
    """Resolve an ``autocast`` setting: ``bf16``, ``none``, or ``auto`` = bf16 where ``device`` runs it
    natively (``native_bf16``), and on a GPU only when ``on_gpu``."""
    if autocast == "auto":
        return native_bf16(device) and (on_gpu or device.type == "cpu")
    if autocast == "bf16" and device.type == "cpu" and not native_bf16(device):
        log.warning("autocast=bf16 on a CPU without AVX512-BF16 or AMX is emulated and ~10x slower; use auto")
    return autocast == "bf16"


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep the blocks torch frees for reuse instead of returning them to the OS.

    torch's CPU allocator is plain malloc/free. glibc serves large blocks (over 128 KB at first) with
    fresh pages from the kernel and hands them back on free, so every activation and gradient of a PPO
    minibatch is page-faulted in and zeroed again: about 160k page faults and a quarter of a Nature-CNN
    update's time on 2 cores. Blocks up to 32 MB (glibc's limit for this setting) now come from the
    heap, and the heap keeps what is freed for the next minibatch: resident memory stays at the peak
    of the working set instead of falling back between minibatches. Returns False where the C library
    is not glibc (nothing changes there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write JSON atomically (rename over the old file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
