"""The probe study's split of the frames and its summary of the probes."""

import numpy as np
import pytest

from jepa_rl.probes.study import mean_f1, probe_rows


def test_mean_f1_without_probed_variables_is_nan():
    assert np.isnan(mean_f1({}, ["clean"])["clean"])


def test_probe_rows_split_by_game_and_leave_out_repeated_test_frames():
    episode = np.repeat(np.arange(10), 6)
    frames = np.random.default_rng(1).integers(0, 256, (60, 2, 4, 4), dtype=np.uint8)
    frames[np.flatnonzero(np.diff(episode, prepend=-1))] = frames[0]  # every game opens with the same frame
    train_rows, test_rows, repeats = probe_rows(episode, frames, test_fraction=0.3, seed=2)
    assert set(episode[train_rows]).isdisjoint(episode[np.concatenate([test_rows, repeats])])
    assert len(repeats) == 3 and len(train_rows) + len(test_rows) + len(repeats) == 60
    assert all(np.array_equal(frames[r], frames[0]) for r in repeats)
    again = probe_rows(episode, frames, test_fraction=0.3, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train_rows, test_rows, repeats), strict=True))
    with pytest.raises(ValueError, match="repeat a training frame"):
        probe_rows(episode, np.zeros_like(frames), test_fraction=0.3, seed=2)
