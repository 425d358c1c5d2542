"""Checkpoints: atomic on disk, and a missing or corrupt one refused in one line that names it and the fix."""

import pytest
import torch
from helpers import CORRUPTIONS, corrupt

from jepa_rl.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


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
