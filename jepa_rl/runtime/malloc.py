"""The C allocator's settings for torch's CPU tensors."""

from __future__ import annotations

import ctypes
import sys


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep the blocks torch frees for reuse instead of returning them to the OS.

    torch's CPU allocator is plain malloc/free. glibc serves large blocks (over 128 KB at first) with
    fresh pages from the kernel and hands them back on free, so every activation and gradient of a PPO
    minibatch is page-faulted in and zeroed again (docs/performance.md has the measured cost). Blocks up to
    32 MB (glibc's limit for this setting) now come from the heap, and the heap keeps what is freed
    for the next minibatch: resident memory stays at the peak of the working set instead of falling
    back between minibatches. Returns False where the C library is not glibc (nothing changes there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))
