"""Nearest-neighbour retrieval of clean frames from perturbed ones, and nearest neighbours."""

import numpy as np
import pytest

from jepa_rl.probes.retrieval import nearest_neighbours, nn_retrieval

# --- nearest-neighbour retrieval ------------------------------------------------------------------


def test_nn_retrieval_perfect_for_tiny_noise_and_chance_when_shuffled():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(500, 32)) * rng.uniform(0.1, 10, 32) + 5
    assert nn_retrieval(clean, clean + 1e-3 * rng.normal(size=clean.shape), chunk_size=64) == 1.0
    assert nn_retrieval(clean, clean[rng.permutation(500)], chunk_size=64) < 0.02


def test_nn_retrieval_standardises_with_clean_statistics():
    # Noise of 5-10% of each dimension's spread: harmless once standardised, but unscaled distances
    # would be all dimension 0, whose noise (100) exceeds the gaps between frames along it.
    rng = np.random.default_rng(3)
    clean = rng.normal(size=(1000, 8)) * np.array([1000.0] + [0.01] * 7)
    perturbed = clean + rng.normal(size=clean.shape) * np.array([100.0] + [0.0005] * 7)
    assert nn_retrieval(clean, perturbed) == 1.0


def test_nn_retrieval_counts_exactly_the_unmoved_rows_across_chunks():
    rng = np.random.default_rng(1)
    clean = rng.normal(size=(300, 16))
    perturbed = clean.copy()
    perturbed[:100] = clean[np.roll(np.arange(100), 1)]  # first 100 rows point at another frame
    assert nn_retrieval(clean, perturbed, chunk_size=37) == pytest.approx(200 / 300)


def test_nn_retrieval_counts_a_duplicate_clean_frame_as_half_a_hit():
    clean = np.random.default_rng(2).normal(size=(50, 8))
    clean[10] = clean[20]  # a repeated frame: a random tie-break finds the right copy half the time
    assert nn_retrieval(clean, clean.copy()) == pytest.approx(49 / 50)


def test_nn_retrieval_of_collapsed_features_is_chance():
    rng = np.random.default_rng(4)
    constant = np.full((300, 16), 0.1, np.float32)
    assert nn_retrieval(constant, constant.copy(), chunk_size=64) == pytest.approx(1 / 300)
    assert nn_retrieval(constant, constant + 2.0) == pytest.approx(1 / 300)
    # Five distinct feature vectors: each group of c tied rows is found 1/c of the time, 5/N in all.
    five = rng.normal(size=(5, 16))[rng.integers(0, 5, 300)] * 100
    assert nn_retrieval(five, five + 1e-3 * rng.normal(size=five.shape), chunk_size=64) == pytest.approx(5 / 300)
    informative = rng.normal(size=(300, 16))
    assert nn_retrieval(informative, informative + 0.05 * rng.normal(size=informative.shape)) > 0.95


def test_nn_retrieval_ignores_a_unit_dead_on_clean_frames():
    # Unit 0 never fires on clean frames and fires on perturbed ones: it moves every query by the
    # same amount from every clean row, so it must not blur the ranking by the other units.
    rng = np.random.default_rng(5)
    clean = np.abs(rng.normal(size=(400, 16)))
    clean[:, 0] = 0.0
    perturbed = clean + 0.01 * rng.normal(size=clean.shape)
    perturbed[:, 0] = 0.5
    assert nn_retrieval(clean, perturbed) == 1.0


def test_nearest_neighbours_excludes_the_query_and_sorts_by_distance():
    features = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
    indices, distances = nearest_neighbours(features, np.array([2, 0]), k=3)
    np.testing.assert_array_equal(indices, [[1, 0, 3], [1, 2, 3]])
    assert np.all(np.diff(distances, axis=1) > 0)
