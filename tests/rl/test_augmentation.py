"""DrQ's random shift: the same stack shifted as a whole, by at most the padding, border repeated."""

import torch

from jepa_rl.rl.augmentation import random_shift


def test_each_stack_moves_as_a_whole_by_at_most_the_padding():
    torch.manual_seed(0)
    obs = torch.zeros(64, 4, 84, 84, dtype=torch.uint8)
    obs[:, :, 40, 50] = 255  # one bright pixel, far from the border
    shifted = random_shift(obs, pad=4)
    assert shifted.dtype == torch.uint8 and shifted.shape == obs.shape
    where = (shifted == 255).nonzero()  # [k, 4]: sample, frame, row, col
    assert len(where) == 64 * 4  # nothing lost, nothing duplicated
    offsets = {(int(b), int(r) - 40, int(c) - 50) for b, _, r, c in where}
    assert len(offsets) == 64  # every frame of a stack moved alike
    assert all(abs(dr) <= 4 and abs(dc) <= 4 for _, dr, dc in offsets)
    assert len({(dr, dc) for _, dr, dc in offsets}) > 20  # offsets vary across samples


def test_the_border_is_repeated():
    torch.manual_seed(1)
    obs = torch.arange(84, dtype=torch.uint8).repeat(2, 1, 84, 1)  # column index as the value
    shifted = random_shift(obs, pad=4)
    for b in range(2):
        row = shifted[b, 0, 0].long()
        assert row.min() >= 0 and row.max() <= 83
        assert torch.all(row.diff() >= 0) and torch.all(row.diff() <= 1)  # a clamp of a shifted ramp
