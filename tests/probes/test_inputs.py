"""PCA whitening of probe features, and the candidate inputs of the probes."""

import numpy as np
import pytest

from jepa_rl.probes.inputs import pca_whitener, probe_inputs


def test_pca_whitener_uses_training_statistics_and_drops_null_directions():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(500, 3)) @ np.array([[5.0, 0, 1], [0, 0.01, 0], [0, 0, 2]]) + 4
    train = np.concatenate([train, train[:, :1] * 2], axis=1)  # a fourth column that repeats the first
    transform = pca_whitener(train)
    white = transform(train)
    assert white.shape == (500, 3)  # the repeated column adds no direction
    np.testing.assert_allclose(white.T @ white / 500, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-9)
    assert not np.allclose(transform(train + 1).mean(axis=0), 0)  # a shifted set stays shifted
    assert pca_whitener(np.ones((20, 4)))(np.ones((5, 4))).shape == (5, 0)  # constant: nothing to probe


def test_probe_inputs_offers_the_candidates_asked_for():
    x = np.random.default_rng(0).normal(size=(50, 4)) * [1.0, 10.0, 100.0, 1000.0]
    sets = {"test": (x[:10], {"ball_x": np.zeros(10)})}
    assert list(probe_inputs(x, sets, "best")) == ["standardised", "whitened"]
    standardised, white = probe_inputs(x, sets, "best").values()
    assert standardised[0] is x and np.allclose(white[0].std(axis=0), 1.0)
    assert list(probe_inputs(x, sets, "whitened")) == ["whitened"]
    with pytest.raises(ValueError, match="inputs=pca must be one of best, standardised, whitened"):
        probe_inputs(x, sets, "pca")
