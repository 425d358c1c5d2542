"""Read the history steps a W&B run file (``run-<id>.wandb``) recorded, to check what a run logged.

The file is W&B's LevelDB-style log: a 7-byte header, then 32 KiB blocks of records, each with a
7-byte header (CRC32C, length, type: 1 full, 2 first, 3 middle, 4 last) around a serialized
``Record`` protobuf.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, parts = [], HEADER, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
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


def run_id(path: Path) -> str:
    """The run id the file belongs to."""
    return next(r.run.run_id for r in records(path) if r.WhichOneof("record_type") == "run")
