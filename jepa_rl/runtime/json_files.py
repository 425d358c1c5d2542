"""A job's JSON files: written atomically (a reader never sees half a file), read back with one line
saying what is wrong with a file that is not what was written."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def temporary_beside(path: Path) -> tuple[int, str]:
    """A new file next to ``path`` to write and rename over it: ``(fd, name)``. ``mkstemp`` makes it
    private (0600); it gets the mode any program's new file gets (0666 less the umask), so that a
    colleague on a shared cluster can read the results."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write JSON atomically (rename over the old file)."""
    fd, tmp = temporary_beside(path)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a ``ValueError`` says what the file is instead (not text, not JSON,
    not an object), for the caller to name the file and the fix."""
    try:
        data = json.loads(Path(path).read_bytes().decode())
    except UnicodeDecodeError:
        raise ValueError("is not text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"holds a JSON {type(data).__name__}, not an object")
    return data
