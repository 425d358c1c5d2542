"""Nearest neighbours in an encoder's feature space: retrieval of a perturbed frame's clean version.

``nn_retrieval`` asks whether a perturbed frame's feature vector still sits closest to the clean
version of the same frame: a direct measure of invariance to the visual perturbation, shown as a
figure in the study this project replicates. ``nearest_neighbours`` serves the probe stage's
neighbour figure. Distances are Euclidean on features standardised per dimension.
"""

from __future__ import annotations

import numpy as np

from jepa_rl.probes.linear import STD_FLOOR, standardiser

# Relative tolerance under which two squared distances count as a tie in ``nn_retrieval``: the float32
# expansion |q|² - 2 q·r + |r|² is exact only to about 1e-6 of |q|² + |r|², so identical clean rows
# (repeated frames, a collapsed encoder's constant features) can come out a rounding error apart.
TIE_TOLERANCE = 1e-5


def _squared_distances(queries: np.ndarray, reference: np.ndarray, reference_sq: np.ndarray) -> np.ndarray:
    """``|q - r|²`` for every pair, by the expansion ``|q|² - 2 q·r + |r|²`` (one matrix product)."""
    return (queries**2).sum(axis=1, keepdims=True) - 2.0 * queries @ reference.T + reference_sq


def nn_retrieval(clean: np.ndarray, perturbed: np.ndarray, chunk_size: int = 512) -> float:
    """Rate at which a perturbed frame's nearest clean neighbour is the clean version of the same frame.

    Row ``i`` of ``perturbed`` and of ``clean`` are features of the same frame. Both sets are
    standardised with the clean set's statistics, so every feature dimension counts on the
    scale over which it varies between frames. A query whose ``t`` nearest clean rows tie (within
    ``TIE_TOLERANCE``) scores ``1 / t`` if its own row is among them: the hit rate of a random
    tie-break. Counting a tie as a hit would give a collapsed encoder (constant features, every
    row tied) a perfect score; this way it scores chance, ``1 / N``. Distances are computed
    ``chunk_size`` query rows at a time, never ``N x N`` at once.
    """
    if clean.shape != perturbed.shape:
        raise ValueError(f"clean and perturbed features differ in shape: {clean.shape} vs {perturbed.shape}")
    clean, perturbed = np.asarray(clean, dtype=np.float64), np.asarray(perturbed, dtype=np.float64)
    # A dimension constant over the clean rows adds the same amount to every distance from a query, so it
    # cannot rank them; dropped, because a unit dead on clean frames but active on perturbed ones would
    # be huge once standardised and its float32 rounding would swamp the dimensions that do vary.
    varying = clean.std(axis=0) > STD_FLOOR
    clean, perturbed = clean[:, varying], perturbed[:, varying]
    mean, std = standardiser(clean)
    clean_z = ((clean - mean) / std).astype(np.float32)
    perturbed_z = ((perturbed - mean) / std).astype(np.float32)
    clean_sq = (clean_z**2).sum(axis=1)
    score = 0.0
    for start in range(0, len(clean_z), chunk_size):
        rows = np.arange(start, min(start + chunk_size, len(clean_z)))
        distances = _squared_distances(perturbed_z[rows], clean_z, clean_sq)
        slack = TIE_TOLERANCE * ((perturbed_z[rows] ** 2).sum(axis=1, keepdims=True) + clean_sq)
        tied = distances <= distances.min(axis=1, keepdims=True) + slack  # [rows, N]
        score += float(np.sum(tied[np.arange(len(rows)), rows] / tied.sum(axis=1)))
    return score / len(clean_z)


def nearest_neighbours(features: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``[Q, k]`` and distances of the ``k`` rows nearest to each query row (itself excluded).

    Distances are Euclidean on features standardised with their own statistics, as in ``nn_retrieval``.
    """
    mean, std = standardiser(features)
    z = ((features - mean) / std).astype(np.float32)
    queries = np.asarray(queries, dtype=np.int64)
    squared = _squared_distances(z[queries], z, (z**2).sum(axis=1))
    squared[np.arange(len(queries)), queries] = np.inf
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return order, np.sqrt(np.maximum(np.take_along_axis(squared, order, axis=1), 0.0))
