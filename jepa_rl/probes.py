"""AtariARI-style representation probes (Anand et al. 2019) on frozen encoder features.

A probe asks how much of the game state an encoder's features make *linearly* available:
for every state variable read from the emulator RAM (ball position, paddle position,
score, ...) a linear classifier is trained on frozen features to predict the variable's
byte value, and scored with the support-weighted F1 over the classes of the evaluation
set. Position variables also get the R² of a closed-form ridge regression, which rewards
an encoding that is ordered in space, not merely separable.

Two further diagnostics, shown as figures in the study this project replicates:

- ``nn_retrieval``: does a perturbed frame's feature vector still sit closest to the clean
  version of the same frame? (a direct measure of invariance to the visual perturbation);
- ``pca_figure`` / ``neighbours_figure``: 2-D PCA of the features coloured by a state
  variable, and the frames nearest to a few query frames in each encoder's feature space.

Everything here works on plain arrays: collecting frames, RAM and features is the caller's job.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# RAM addresses of the AtariARI annotations (Anand et al. 2019, ``atariari/benchmark/ram_annotations.py``).
GAME_VARIABLES: dict[str, dict[str, int]] = {
    "breakout": {"ball_x": 99, "ball_y": 101, "player_x": 72, "blocks_hit_count": 77, "score": 84},
    "pong": {
        "player_y": 51,
        "player_x": 46,
        "enemy_y": 50,
        "enemy_x": 45,
        "ball_x": 49,
        "ball_y": 54,
        "enemy_score": 13,
        "player_score": 14,
    },
}

# Variables that are screen coordinates: these also get a ridge-regression R².
POSITION_VARIABLES: frozenset[str] = frozenset(
    name for variables in GAME_VARIABLES.values() for name in variables if name.endswith(("_x", "_y"))
)

NUM_BYTE_VALUES = 256
# Floor on feature standard deviations: dead units (constant features) must not divide by zero.
STD_FLOOR = 1e-6


def labels_from_ram(ram: np.ndarray, game: str) -> dict[str, np.ndarray]:
    """Per-variable int64 labels ``[N]`` from RAM snapshots ``[N, 128]`` (uint8) of ``game``."""
    if game not in GAME_VARIABLES:
        raise ValueError(f"no RAM annotations for game {game!r}; known games: {sorted(GAME_VARIABLES)}")
    ram = np.asarray(ram)
    if ram.ndim != 2 or ram.shape[1] != 128:
        raise ValueError(f"expected RAM of shape [N, 128], got {ram.shape}")
    return {name: ram[:, address].astype(np.int64) for name, address in GAME_VARIABLES[game].items()}


def _standardiser(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and floored standard deviation of the training features (applied to every set)."""
    train_x = np.asarray(train_x, dtype=np.float64)
    return train_x.mean(axis=0), np.maximum(train_x.std(axis=0), STD_FLOOR)


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Support-weighted mean of per-class F1 over the classes present in ``y_true``.

    Matches scikit-learn's ``f1_score(average="weighted")``: a class that is predicted but
    absent from ``y_true`` has zero support, so it only costs through the precision of the others.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape} vs {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("weighted_f1 of an empty set")
    classes, support = np.unique(y_true, return_counts=True)
    hits = y_true == y_pred
    true_pos = np.array([np.count_nonzero(hits & (y_true == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.count_nonzero(y_pred == c) for c in classes], dtype=np.float64)
    # F1 = 2 TP / (predicted + support); the denominator is at least the support, so never zero.
    f1 = 2.0 * true_pos / (predicted + support)
    return float(np.sum(f1 * support) / support.sum())


def fit_linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]],
    seed: int = 0,
    l2: float = 1e-4,
    lr: float = 1e-2,
    batch_size: int = 512,
    epochs: int = 8,
    patience: int = 3,
    val_fraction: float = 0.1,
) -> dict[str, float]:
    """Train a linear classifier of byte values on frozen features; weighted F1 per eval set.

    The probe is a multinomial logistic regression on features standardised with the training
    statistics, with an L2 penalty ``l2 * |W|²`` on the weights (not the biases). As in AtariARI
    it is trained with Adam and early stopping: the weights kept are those of the epoch with the
    lowest cross-entropy on a validation split carved from the training set (``val_fraction``),
    and training stops after ``patience`` epochs without improvement.

    Training budget: at most ``epochs`` passes of minibatch Adam, the learning rate decayed to
    zero on a cosine. A pass over the data costs the same for minibatch Adam and for full-batch
    L-BFGS, but L-BFGS needed 30+ passes for the F1 that eight decayed Adam passes reach: on
    synthetic 16k x 512 features with 16-256 classes these came within 0.005 F1 of a 60-epoch
    Adam run at a tenth of the rate, in about a second for 256 classes on one CPU thread.

    Only the byte values present in the training labels get an output: a value never seen in
    training would be pushed to the lowest logit anyway, and dropping it cuts the cost roughly in
    proportion (few variables take all 256 values). Weights start at zero, so the seed only fixes
    the validation split and the minibatch order: the result is deterministic for a given seed
    (and number of torch threads).

    Args:
        train_x, train_y: features ``[N, D]`` and integer labels ``[N]`` (byte values 0-255).
        eval_sets: name -> ``(features [M, D], labels [M])``.
        seed: seeds the validation split and the minibatch order.
    """
    train_y = np.asarray(train_y)
    if train_y.min() < 0 or train_y.max() >= NUM_BYTE_VALUES:
        raise ValueError("probe labels must be byte values in [0, 255]")
    classes, targets = np.unique(train_y, return_inverse=True)
    mean, std = _standardiser(train_x)

    def standardise(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32))

    if len(classes) == 1:  # nothing to learn: every prediction is the one training value
        return {name: weighted_f1(y, np.full(len(y), classes[0])) for name, (_, y) in eval_sets.items()}
    x, y = standardise(train_x), torch.from_numpy(targets.astype(np.int64))
    weight, bias = _train_softmax(x, y, len(classes), seed, l2, lr, batch_size, epochs, patience, val_fraction)
    scores = {}
    with torch.no_grad():
        for name, (eval_x, eval_y) in eval_sets.items():
            predicted = classes[(standardise(eval_x) @ weight + bias).argmax(dim=1).numpy()]
            scores[name] = weighted_f1(eval_y, predicted)
    return scores


def _train_softmax(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    seed: int,
    l2: float,
    lr: float,
    batch_size: int,
    epochs: int,
    patience: int,
    val_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine-decayed minibatch Adam on softmax regression; the best validation epoch's ``(weight, bias)``."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    n_val = int(len(x) * val_fraction) if len(x) * val_fraction >= 10 else 0  # too few: keep the last epoch
    val, fit = order[:n_val], order[n_val:]
    weight = torch.zeros(x.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    # The L2 penalty as Adam's (coupled) weight decay, and a fused step: every separate tensor op of
    # a small step is a thread synchronisation, which dominates when cores are shared.
    optimizer = torch.optim.Adam([{"params": [weight], "weight_decay": 2 * l2}, {"params": [bias]}], lr=lr, fused=True)
    total_steps, step = epochs * -(-len(fit) // batch_size), 0
    best_loss, best, stale = float("inf"), (weight.detach(), bias.detach()), 0
    for _ in range(epochs):
        for batch in fit[torch.randperm(len(fit), generator=generator)].split(batch_size):
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
            loss = torch.nn.functional.cross_entropy(torch.addmm(bias, x[batch], weight), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if not n_val:
            continue
        with torch.no_grad():
            val_loss = torch.nn.functional.cross_entropy(torch.addmm(bias, x[val], weight), y[val]).item()
        if val_loss < best_loss:
            best_loss, best, stale = val_loss, (weight.detach().clone(), bias.detach().clone()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    return best if n_val else (weight.detach(), bias.detach())


def ridge_r2(
    train_x: np.ndarray,
    train_y: np.ndarray,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]],
    alpha: float = 1.0,
) -> dict[str, float]:
    """Closed-form ridge regression on standardised features; R² per eval set.

    Features are standardised with the training statistics and the intercept (the training
    mean of ``y``) is not penalised. R² = 1 - SS_res / SS_tot, with SS_tot taken about each
    eval set's own mean, so predicting a constant scores at most 0. For a constant eval target
    (SS_tot = 0) R² is 1 for a perfect fit and 0 otherwise, as in scikit-learn.
    """
    mean, std = _standardiser(train_x)
    x = (np.asarray(train_x, dtype=np.float64) - mean) / std
    y = np.asarray(train_y, dtype=np.float64)
    y_mean = y.mean()
    coef = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y - y_mean))
    scores = {}
    for name, (eval_x, eval_y) in eval_sets.items():
        eval_y = np.asarray(eval_y, dtype=np.float64)
        predicted = (np.asarray(eval_x, dtype=np.float64) - mean) / std @ coef + y_mean
        ss_res = float(np.sum((eval_y - predicted) ** 2))
        ss_tot = float(np.sum((eval_y - eval_y.mean()) ** 2))
        scores[name] = 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
    return scores


def probe_encoder(
    train_x: np.ndarray,
    train_labels: dict[str, np.ndarray],
    eval_sets: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Probe every variable of ``train_labels``: variable -> eval-set name -> scores.

    Scores are ``{"f1": ...}``, plus ``"r2"`` for the variables in ``POSITION_VARIABLES``.
    ``eval_sets`` maps a name to ``(features, labels)`` with the same variables as ``train_labels``.
    """
    results: dict[str, dict[str, dict[str, float]]] = {}
    for variable, train_y in train_labels.items():
        sets = {name: (x, labels[variable]) for name, (x, labels) in eval_sets.items()}
        f1 = fit_linear_probe(train_x, train_y, sets, seed=seed)
        results[variable] = {name: {"f1": score} for name, score in f1.items()}
        if variable in POSITION_VARIABLES:
            for name, score in ridge_r2(train_x, train_y, sets).items():
                results[variable][name]["r2"] = score
    return results


def _squared_distances(queries: np.ndarray, reference: np.ndarray, reference_sq: np.ndarray) -> np.ndarray:
    """``|q - r|²`` for every pair, by the expansion ``|q|² - 2 q·r + |r|²`` (one matrix product)."""
    return (queries**2).sum(axis=1, keepdims=True) - 2.0 * queries @ reference.T + reference_sq


def nn_retrieval(clean: np.ndarray, perturbed: np.ndarray, chunk_size: int = 512) -> float:
    """Fraction of perturbed frames whose nearest clean neighbour is the clean version of the same frame.

    Row ``i`` of ``perturbed`` and of ``clean`` are features of the same frame. Both sets are
    standardised with the clean set's statistics, so every feature dimension counts on the
    scale over which it varies between frames. A tie counts as a hit: Atari games repeat
    frames exactly, and an identical clean frame is as good a match as the frame itself.
    Distances are computed ``chunk_size`` query rows at a time, never ``N x N`` at once.
    """
    if clean.shape != perturbed.shape:
        raise ValueError(f"clean and perturbed features differ in shape: {clean.shape} vs {perturbed.shape}")
    mean, std = _standardiser(clean)
    clean_z = ((clean - mean) / std).astype(np.float32)
    perturbed_z = ((perturbed - mean) / std).astype(np.float32)
    clean_sq = (clean_z**2).sum(axis=1)
    hits = 0
    for start in range(0, len(clean_z), chunk_size):
        rows = np.arange(start, min(start + chunk_size, len(clean_z)))
        distances = _squared_distances(perturbed_z[rows], clean_z, clean_sq)
        hits += int(np.count_nonzero(distances[np.arange(len(rows)), rows] <= distances.min(axis=1)))
    return hits / len(clean_z)


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


def nearest_neighbours(features: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``[Q, k]`` and distances of the ``k`` rows nearest to each query row (itself excluded).

    Distances are Euclidean on features standardised with their own statistics, as in ``nn_retrieval``.
    """
    mean, std = _standardiser(features)
    z = ((features - mean) / std).astype(np.float32)
    queries = np.asarray(queries, dtype=np.int64)
    squared = _squared_distances(z[queries], z, (z**2).sum(axis=1))
    squared[np.arange(len(queries)), queries] = np.inf
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return order, np.sqrt(np.maximum(np.take_along_axis(squared, order, axis=1), 0.0))


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
