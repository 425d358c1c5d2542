"""Checkpoints: atomic on disk, and a missing or corrupt one refused in one line that names it and the fix."""

import os
import stat

import pytest
import torch
from helpers import CORRUPTIONS, corrupt

from jepa_rl.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jepa_rl.runtime.json_files import write_json


def test_a_checkpoint_loads_what_was_saved_and_a_missing_one_is_named(tmp_path):
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match="does not exist; pass the path of a checkpoint.pt"):
        load_checkpoint(path)
    save_checkpoint({"x": torch.zeros(3)}, path)
    assert load_checkpoint(path)["x"].shape == (3,)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupt_checkpoint_is_one_line_naming_it_and_the_fix(tmp_path, kind):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"agent": {"w": torch.ones(64, 64)}, "global_step": 1}, path)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(corrupt(path, kind))
    message = str(refused.value)
    assert message.startswith(f"checkpoint {path} is ") and message.endswith("delete it to start over")
    assert "\n" not in message


def test_another_programs_torch_file_is_not_a_checkpoint(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="model.pt is not a jepa-rl checkpoint; delete it to start over"):
        load_checkpoint(tmp_path / "model.pt")


def test_a_checkpoint_and_results_get_the_mode_the_umask_gives_any_new_file(tmp_path):
    """Not mkstemp's private 0600: on a shared cluster a colleague reads them as the umask allows."""
    old = os.umask(0o022)
    try:
        save_checkpoint({"x": torch.zeros(1)}, tmp_path / "checkpoint.pt")
        write_json({"a": 1}, tmp_path / "results.json")
        os.umask(0o077)
        write_json({"a": 1}, tmp_path / "private.json")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"checkpoint.pt": 0o644, "results.json": 0o644, "private.json": 0o600}
