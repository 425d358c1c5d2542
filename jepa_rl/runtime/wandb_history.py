"""What a W&B run file (``run-<id>.wandb``) recorded: its run id and the steps of its history rows.

W&B has no public reader for these files. The format (stable across the 0.x SDKs) is a LevelDB-style
log: a 7-byte header, then 32 KiB blocks of records, each a 7-byte header (CRC32C, length, type: 1
full, 2 first, 3 middle, 4 last) around a serialized ``Record`` protobuf. A killed writer leaves a
truncated last record, ignored here.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every complete record of the file, in order."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":  # an explicit check: asserts vanish under python -O
        raise ValueError(f"{path} is not a W&B run file")
    out, pos, parts = [], HEADER, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if pos + HEADER + length > len(data):
            break  # the last record of a killed writer
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            break  # zero-filled tail of a file that was not closed
        parts += chunk
        if kind in (1, 4):  # full, last
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            out.append(record)
            parts = b""
    return out


def history_steps(path: Path) -> list[int]:
    """The ``step`` of every history row in the run file, in the order they were logged."""
    return [r.history.step.num for r in records(path) if r.WhichOneof("record_type") == "history"]


def run_id(path: Path) -> str | None:
    """The run id the file belongs to (None if the writer was killed before recording it)."""
    return next((r.run.run_id for r in records(path) if r.WhichOneof("record_type") == "run"), None)


def last_offline_step(wandb_dir: Path, run: str) -> int:
    """The last history step the offline segments of run ``run`` under ``wandb_dir`` recorded (-1: none)."""
    steps = [max(history_steps(f), default=-1) for f in Path(wandb_dir).glob(f"offline-run-*-{run}/run-{run}.wandb")]
    return max(steps, default=-1)
