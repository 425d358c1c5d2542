"""Content-addressed cache for expensive shared artifacts (collected frames, pretrained encoders).

An artifact lives in ``<root>/<kind>/<key>/``, where ``key`` hashes the spec that produced it
(every setting that changes its content). It is built in a temporary directory, its files'
SHA-256 sums are written to ``manifest.json``, and the directory is renamed into place: a reader
never sees a half-written artifact. A file lock per key makes the parallel jobs of a sweep build
each artifact once; the others wait and reuse it. An artifact whose files no longer match their
checksums is reported and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from jepa_rl.runtime.json_files import read_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Bump when the code that builds an artifact changes what it produces: old entries stop matching.
FORMAT_VERSION = 2  # 2: emulator seeds from SeedSequence children, per-environment perturbation streams


# A spec names the class a setting group builds (its ``_target_``) by the module path the class had when the
# first keys were made. So moving a module changes no key, and the artifacts cached before the package
# moved are still found; a class not listed here keys by the path it is given.
KEYED_AS = {
    "AtariPipeline": "jepa_rl.envs.AtariPipeline",
    "NatureCNN": "jepa_rl.encoders.NatureCNN",
    "ViTEncoder": "jepa_rl.encoders.ViTEncoder",
}


def keyed_classes(spec: Any) -> Any:
    """``spec`` with every ``_target_`` (at any depth) replaced by the name ``KEYED_AS`` keys its class by."""
    if isinstance(spec, dict):
        return {
            k: KEYED_AS.get(str(v).rsplit(".", 1)[-1], v) if k == "_target_" else keyed_classes(v)
            for k, v in spec.items()
        }
    if isinstance(spec, list | tuple):
        return [keyed_classes(v) for v in spec]
    return spec


def spec_key(spec: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable spec (its classes named by ``keyed_classes``)."""
    text = json.dumps({"format_version": FORMAT_VERSION, **keyed_classes(spec)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path, chunk: int = 1 << 24) -> str:
    """SHA-256 of a file, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path) -> str | None:
    """``None`` when every file listed in the manifest exists with its checksum, else what is wrong."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return "no manifest"
    try:
        files = read_json(manifest)["files"]
        files = dict(files)
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def cached_artifact(root: Path, kind: str, spec: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """The directory of the artifact ``spec`` describes, calling ``build(tmp_dir)`` only when it is absent.

    ``build`` writes the artifact's files into the directory it is given. Returns the final directory.
    """
    key = spec_key(spec)
    final = Path(root) / kind / key
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if final.exists():
            problem = verify(final)
            if problem is None:
                log.info("reusing cached %s %s", kind, final)
                return final
            log.warning("cached %s %s is corrupt (%s): rebuilding it", kind, final, problem)
            shutil.rmtree(final)
        tmp = final.parent / f".{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # left by a killed build
        tmp.mkdir()
        log.info("building %s %s", kind, final)
        build(tmp)
        (tmp / "spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True, default=str))
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"key": key, "files": files}, indent=2))
        for p in tmp.iterdir():  # on disk before the rename publishes them
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        os.replace(tmp, final)
    return final
