"""Fixed standardisation of features: statistics measured on frames, stored with the agent, bf16 checked."""

import numpy as np
import pytest
import torch
from helpers import played_frames, vit

from jepa_rl.models.feature_standardisation import FeatureNorm, encode, feature_statistics

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frames():
    return played_frames(128)


def test_standardised_features_have_zero_mean_and_unit_std_on_the_frames(frames):
    encoder = vit(depth=1).requires_grad_(False)
    stats = feature_statistics(encoder, frames, CPU, measure_bf16=False, batch=64)
    assert stats["frames"] == 128 and "bf16_error_over_spread" not in stats
    norm = FeatureNorm(192)
    norm.set_statistics(stats["mean"], stats["std"])
    z = norm(torch.from_numpy(encode(encoder, frames, np.arange(128), 64, CPU, bf16=False)))
    assert z.mean(0).abs().max() < 1e-3
    assert z.std(0, unbiased=False).sub(1).abs().max() < 0.05  # exactly 1 but for the variance's epsilon
    assert set(norm.state_dict()) == {"mean", "std"}  # buffers: saved in checkpoints, never trained
    assert not list(norm.parameters())


def test_the_bf16_error_is_measured_against_the_spread_across_frames(frames):
    encoder = vit(depth=1).requires_grad_(False)
    some = frames[::4]  # 32: bf16 on a CPU without native support is several times slower than float32
    stats = feature_statistics(encoder, some, CPU, measure_bf16=True, batch=16)
    # Random-init ViT features vary little between Breakout frames: bf16's rounding is a visible share of it.
    assert 0.001 < stats["bf16_error_over_spread"] < 1
    spread = feature_statistics(encoder, some[::-1].copy(), CPU, measure_bf16=True, batch=16)
    assert spread["bf16_error_over_spread"] == pytest.approx(stats["bf16_error_over_spread"], rel=1e-6)
