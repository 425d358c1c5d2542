"""Figures of encoder features: 2-D PCA coloured by a game variable, and each query frame's nearest neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from jepa_rl.probes.retrieval import nearest_neighbours


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection ``[N, 2]`` of centred features on their two principal axes, and the variance fraction of each."""
    centred = np.asarray(features, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    total = float(np.sum(s**2))
    explained = s[:2] ** 2 / total if total > 0 else np.zeros(2)
    return u[:, :2] * s[:2], explained


def pca_figure(features: dict[str, np.ndarray], color: np.ndarray, color_name: str, path: Path) -> None:
    """One 2-D PCA scatter per encoder (name -> features ``[N, D]``), coloured by ``color`` ``[N]``; saved as PNG.

    An encoder that tracks the colouring variable shows it as a smooth gradient across the plane.
    """
    # A bare Figure renders with Agg and leaves pyplot's global state (and backend) alone.
    fig = Figure(figsize=(4.2 * len(features), 3.8), layout="constrained")
    axes = fig.subplots(1, len(features), squeeze=False)[0]
    for ax, (name, x) in zip(axes, features.items(), strict=True):
        projection, explained = pca_2d(x)
        points = ax.scatter(
            projection[:, 0], projection[:, 1], c=color, s=3, cmap="viridis", alpha=0.7, linewidths=0, rasterized=True
        )
        ax.set_title(f"{name}\nPC1 {explained[0]:.1%}, PC2 {explained[1]:.1%} of variance", fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes.tolist(), label=color_name)
    fig.savefig(Path(path), dpi=120, format="png")


def neighbours_figure(
    frames: np.ndarray, features: dict[str, np.ndarray], queries: np.ndarray, k: int, path: Path
) -> None:
    """Each query frame followed by its ``k`` nearest neighbours, one block of rows per encoder; saved as PNG.

    ``frames`` is ``[N, 4, 84, 84]`` uint8 (the last frame of each stack is shown) and
    ``features`` maps an encoder name to its features ``[N, D]`` of the same frames.
    """
    queries = np.asarray(queries, dtype=np.int64)
    rows = len(features) * len(queries)
    fig = Figure(figsize=(1.1 * (k + 1), 1.2 * rows), layout="constrained")
    axes = fig.subplots(rows, k + 1, squeeze=False)
    for block, (name, x) in enumerate(features.items()):
        neighbours, distances = nearest_neighbours(x, queries, k)
        for i, query in enumerate(queries):
            row = axes[block * len(queries) + i]
            _show_frame(row[0], frames[query, -1], f"query #{query}")
            row[0].set_ylabel(name, fontsize=7)
            for ax, index, distance in zip(row[1:], neighbours[i], distances[i], strict=True):
                _show_frame(ax, frames[index, -1], f"#{index} d={distance:.1f}")
    fig.savefig(Path(path), dpi=100, format="png")


def _show_frame(ax: Axes, frame: np.ndarray, title: str) -> None:
    """A grayscale frame without ticks (but keeping the axis so a row label can be drawn)."""
    ax.imshow(frame, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
