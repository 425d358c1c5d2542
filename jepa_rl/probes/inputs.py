"""What the linear probes are fit on: an encoder's features as they are, or PCA-whitened.

A linear probe could use any direction of the features, but a few epochs of Adam on features
standardised per dimension use only the strong ones; whitened, every direction weighs the same,
noise included. ``probes.probe_encoder`` fits both and keeps the one that fits validation games better.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Principal directions of the training features weaker than this fraction of the strongest are dropped
# by the whitening. float32 features hold about 7 significant digits, so a direction at 1e-5 of the
# strongest is still far above rounding; a collapsed ViT keeps its ball position near 1e-3 of it.
WHITEN_FLOOR = 1e-5
# What the probes may be fit on (``probes.inputs``): the better of the two on validation games, or one of them.
PROBE_INPUTS = ("best", "standardised", "whitened")


def pca_whitener(train_x: np.ndarray, floor: float = WHITEN_FLOOR) -> Callable[[np.ndarray], np.ndarray]:
    """The map that PCA-whitens features with the training set's statistics (applied to every set).

    It centres on the training mean and projects onto the training features' principal directions,
    each scaled to unit variance; directions below ``floor`` of the strongest singular value are
    dropped (numerically null). A linear probe can use any direction of the features in principle,
    but a few epochs of Adam on per-dimension standardised features only use the strong ones: an
    encoder whose variance sits in one direction (a near-collapsed one) would score on its
    conditioning rather than on what its features hold. Whitened, every encoder's probe starts from
    equally conditioned inputs: any invertible linear map of the features gives the same whitened
    features up to a rotation.
    """
    train_x = np.asarray(train_x, dtype=np.float64)
    mean = train_x.mean(axis=0)
    _, singular, axes = np.linalg.svd(train_x - mean, full_matrices=False)
    keep = singular > floor * singular[0] if len(singular) and singular[0] > 0 else np.zeros(len(singular), bool)
    projection = axes[keep].T * (math.sqrt(len(train_x)) / singular[keep])
    return lambda x: (np.asarray(x, dtype=np.float64) - mean) @ projection


def probe_inputs(
    train_x: np.ndarray, eval_sets: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], inputs: str
) -> dict[str, tuple[np.ndarray, dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]]]:
    """``{kind: (train features, eval sets)}`` for each candidate of ``inputs`` (one of ``PROBE_INPUTS``).

    ``standardised`` leaves the features as they are (each probe standardises them per dimension);
    ``whitened`` PCA-whitens them on the training set (``pca_whitener``); ``best`` offers both.
    """
    if inputs not in PROBE_INPUTS:
        raise ValueError(f"inputs={inputs} must be one of {', '.join(PROBE_INPUTS)}")
    views = {}
    if inputs in ("best", "standardised"):
        views["standardised"] = (train_x, eval_sets)
    if inputs in ("best", "whitened"):
        transform = pca_whitener(train_x)
        views["whitened"] = (transform(train_x), {n: (transform(x), y) for n, (x, y) in eval_sets.items()})
    return views
