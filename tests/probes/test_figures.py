"""Figures of encoder features: the 2-D PCA, and the PCA and nearest-neighbour PNGs."""

import numpy as np
import pytest
from helpers import encoded

from jepa_rl.probes.figures import neighbours_figure, pca_2d, pca_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pca_2d_finds_the_dominant_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3)) * np.array([1.0, 10.0, 3.0])
    projection, explained = pca_2d(x)
    assert projection.shape == (4000, 2)
    assert explained == pytest.approx([100 / 110, 9 / 110], abs=0.02)
    assert abs(np.corrcoef(projection[:, 0], x[:, 1])[0, 1]) > 0.99


def assert_png(path):
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_pca_figure_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    color = rng.integers(0, 200, 300)
    features = {"cnn": rng.normal(size=(300, 32)), "jepa": encoded(color, 32)}
    path = tmp_path / "pca.png"
    pca_figure(features, color, "player_x", path)
    assert_png(path)


def test_neighbours_figure_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 4, 84, 84), dtype=np.uint8)
    features = {"cnn": rng.normal(size=(40, 16)), "jepa": rng.normal(size=(40, 8))}
    path = tmp_path / "neighbours.png"
    neighbours_figure(frames, features, np.array([0, 7, 30]), k=4, path=path)
    assert_png(path)
