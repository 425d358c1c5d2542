"""The diagnostics of what an encoder learned: each measure on inputs whose answer is known."""

import numpy as np
import pytest
import torch
from helpers import played_frames

from jepa_rl.pretrain.diagnostics import content_share, effective_rank, pretrainer_diagnostics, weight_distance
from jepa_rl.pretrain.loop import mask_config
from jepa_rl.pretrain.objectives import make_pretrainer


def test_content_share_is_the_variance_around_each_positions_mean():
    gen = torch.Generator().manual_seed(0)
    layout = 2.0 * torch.randn(1, 49, 16, generator=gen)  # variance 4, the same in every frame
    content = torch.randn(4096, 49, 16, generator=gen)  # variance 1, frame to frame
    assert content_share(layout + content) == pytest.approx(1 / 5, abs=0.01)
    assert content_share(layout.expand(8, -1, -1)) == 0.0


def test_effective_rank_counts_the_directions_used():
    gen = torch.Generator().manual_seed(0)
    assert effective_rank(torch.randn(4096, 8, generator=gen)) == pytest.approx(8, abs=0.2)
    line = torch.randn(4096, 1, generator=gen) * torch.arange(1.0, 9.0)  # one direction in 8 dimensions
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)


def test_weight_distance_is_relative_to_the_target():
    a, b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    b.load_state_dict(a.state_dict())
    assert weight_distance(a, b) == 0.0
    with torch.no_grad():
        for p in a.parameters():
            p.mul_(1.5)
    assert weight_distance(a, b) == pytest.approx(0.5)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_a_frame_that_never_changes_is_all_layout(jepa_settings, jepa_net, objective):
    """One frame repeated: no content, and the position-only oracle predicts every target exactly."""
    frames = np.repeat(played_frames(1), 16, axis=0)
    model = make_pretrainer(jepa_net, objective, "tokens", jepa_settings)
    found = pretrainer_diagnostics(model, frames, mask_config(jepa_settings.masks, 7), torch.device("cpu"))
    assert found["content_share"] < 1e-6 and found["oracle_loss"] < 1e-9 < found["model_loss"]
    assert found["weight_distance"] == 0.0  # the target is still the encoder's copy


def test_on_played_frames_an_untrained_jepa_is_worse_than_the_layout(jepa_settings, jepa_net):
    frames = played_frames(64)
    model = make_pretrainer(jepa_net, "jepa", "tokens", jepa_settings)
    found = pretrainer_diagnostics(model, frames, mask_config(jepa_settings.masks, 7), torch.device("cpu"))
    assert found["oracle_loss"] < found["model_loss"]
    assert 0 < found["content_share"] < 1 and 1 < found["effective_rank"] < 64


def test_with_later_frames_the_targets_are_theirs(jepa_settings, jepa_net):
    """Every frame's later one is the same frame: its targets are one constant, which the oracle predicts."""
    frames = played_frames(32)
    model = make_pretrainer(jepa_net, "jepa", "tokens", jepa_settings)
    masks = mask_config(jepa_settings.masks, 7)
    same = pretrainer_diagnostics(model, frames, masks, torch.device("cpu"), later=np.full(32, 5))
    own = pretrainer_diagnostics(model, frames, masks, torch.device("cpu"), later=np.arange(32))
    assert same["oracle_loss"] < 1e-9 < own["oracle_loss"]
    assert own == pretrainer_diagnostics(model, frames, masks, torch.device("cpu"))  # later = itself: as without
