"""AtariARI-style representation probes (Anand et al. 2019) on frozen encoder features.

A probe asks how much of the game state an encoder's features make *linearly* available:
for every state variable read from the emulator RAM (ball position, paddle position,
score, ...) a linear classifier is trained on frozen features to predict the variable's
byte value, and scored with the support-weighted F1 over the classes of the evaluation
set. Position variables also get the R² of a closed-form ridge regression, which rewards
an encoding that is ordered in space, not merely separable. Each variable's probes see the
features standardised per dimension or PCA-whitened on the training frames (``probes.inputs``),
whichever fits the validation games better (``probe_encoder``), so that what they find depends
less on how the encoder scales its directions.

Nearest-neighbour retrieval is in ``retrieval``, the figures in ``probes.figures``.

Everything here works on plain arrays: collecting frames, RAM and features is the caller's job.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from jepa_rl.probes.inputs import probe_inputs
from jepa_rl.probes.ram_labels import POSITION_VARIABLES

NUM_BYTE_VALUES = 256
# Floor on feature standard deviations: dead units (constant features) must not divide by zero.
STD_FLOOR = 1e-6


def repeats_reference(frames: np.ndarray, reference_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Boolean mask over ``rows``: whose frame (every byte of its stack) equals the frame of a reference row.

    Games repeat frames exactly (a random policy replays the same openings), and a test frame equal
    to a training frame measures memorisation, not generalisation: AtariARI removes them. Rows are
    compared by a 128-bit hash of their bytes, so ``frames`` (e.g. a memory map) is read once.
    """

    def digest(row: int) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(frames[row]).tobytes(), digest_size=16).digest()

    seen = {digest(row) for row in np.asarray(reference_rows)}
    return np.array([digest(row) in seen for row in np.asarray(rows)], dtype=bool)


def standardiser(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def majority_f1(train_labels: dict[str, np.ndarray], test_labels: dict[str, np.ndarray]) -> dict[str, float]:
    """The control every probe must beat: weighted F1 of predicting each variable's most frequent training value."""
    scores = {}
    for variable, train_y in train_labels.items():
        values, counts = np.unique(train_y, return_counts=True)
        test_y = np.asarray(test_labels[variable])
        scores[variable] = weighted_f1(test_y, np.full(len(test_y), values[counts.argmax()]))
    return scores


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
    games: np.ndarray | None = None,
) -> tuple[dict[str, float], float]:
    """Train a linear classifier of byte values on frozen features: ``(weighted F1 per eval set,
    validation cross-entropy of the weights kept)``; the latter is NaN without a validation set.

    The probe is a multinomial logistic regression on features standardised with the training
    statistics, with an L2 penalty ``l2 * |W|²`` on the weights (not the biases). As in AtariARI
    it is trained with Adam and early stopping: the weights kept are those of the epoch with the
    lowest cross-entropy on a validation split carved from the training set (``val_fraction``,
    whole games when ``games`` is given: see ``validation_split``), and training stops after
    ``patience`` epochs without improvement.

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
        games: game (episode) id ``[N]`` of each training frame, or None to split by frame.
    """
    train_y = np.asarray(train_y)
    if train_y.min() < 0 or train_y.max() >= NUM_BYTE_VALUES:
        raise ValueError("probe labels must be byte values in [0, 255]")
    classes, targets = np.unique(train_y, return_inverse=True)
    mean, std = standardiser(train_x)

    def standardise(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32))

    if len(classes) == 1:  # nothing to learn: every prediction is the one training value
        return {name: weighted_f1(y, np.full(len(y), classes[0])) for name, (_, y) in eval_sets.items()}, 0.0
    x, y = standardise(train_x), torch.from_numpy(targets.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    val, fit = validation_split(len(x), val_fraction, generator, games)
    weight, bias, val_loss = _train_softmax(
        x, y, len(classes), val, fit, generator, l2, lr, batch_size, epochs, patience
    )
    scores = {}
    with torch.no_grad():
        for name, (eval_x, eval_y) in eval_sets.items():
            predicted = classes[(standardise(eval_x) @ weight + bias).argmax(dim=1).numpy()]
            scores[name] = weighted_f1(eval_y, predicted)
    return scores, val_loss


def validation_split(
    n: int, val_fraction: float, generator: torch.Generator, games: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(val, fit)`` row indices: a random ``val_fraction`` of ``n`` rows for early stopping.

    With ``games`` (a game id per row) whole games are held out, in a random order, until they reach
    ``val_fraction`` of the rows: consecutive frames of one game are near copies, so a frame-level
    split would score the probe on frames it has all but seen. Fewer than 10 validation rows, or a
    single game, give no validation set (``val`` empty: training keeps its last epoch).
    """
    if n * val_fraction < 10 or (games is not None and len(np.unique(games)) < 2):
        return torch.empty(0, dtype=torch.int64), torch.randperm(n, generator=generator)
    if games is None:
        order = torch.randperm(n, generator=generator)
        n_val = int(n * val_fraction)
        return order[:n_val], order[n_val:]
    ids, game_of_row = np.unique(np.asarray(games), return_inverse=True)
    order = torch.randperm(len(ids), generator=generator).numpy()
    # The fewest games (in this order) that reach the target, leaving at least one game to fit.
    taken = min(int(np.searchsorted(np.cumsum(np.bincount(game_of_row)[order]), n * val_fraction)) + 1, len(ids) - 1)
    held = np.isin(game_of_row, order[:taken])
    return torch.from_numpy(np.flatnonzero(held)), torch.from_numpy(np.flatnonzero(~held))


def _train_softmax(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    val: torch.Tensor,
    fit: torch.Tensor,
    generator: torch.Generator,
    l2: float,
    lr: float,
    batch_size: int,
    epochs: int,
    patience: int,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Cosine-decayed minibatch Adam on softmax regression: the best validation epoch's ``(weight, bias)``
    and its validation cross-entropy (the last epoch's weights and NaN without validation rows)."""
    n_val = len(val)
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
    return (*best, best_loss) if n_val else (weight.detach(), bias.detach(), math.nan)


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
    mean, std = standardiser(train_x)
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
    games: np.ndarray | None = None,
    inputs: str = "best",
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, str]]:
    """Probe every variable of ``train_labels``: ``(variable -> eval-set name -> scores, variable -> inputs)``.

    Scores are ``{"f1": ...}``, plus ``"r2"`` for the variables in ``POSITION_VARIABLES``.
    ``eval_sets`` maps a name to ``(features, labels)`` with (at least) the variables of
    ``train_labels``; ``games`` (a game id per training frame) makes early stopping validate on whole games.

    ``inputs`` (``probes.inputs``): with ``best``, each variable's softmax probe is fit on the
    standardised and on the whitened features, and the one with the lower validation cross-entropy
    is kept (ties, and no validation set, keep the standardised one); its ridge regression uses the
    same features. Neither is right for every encoder. Standardised, a few epochs of Adam use only
    the strong directions, so a near-collapsed encoder's weak ones are lost; whitened, every
    direction is as strong as any other, so a wide encoder's noise directions (a random
    Nature-CNN's 3,136) weigh as much as its signal.
    """
    views = probe_inputs(train_x, eval_sets, inputs)
    results: dict[str, dict[str, dict[str, float]]] = {}
    chosen: dict[str, str] = {}
    for variable, train_y in train_labels.items():
        fits = {}
        for kind, (x, view_sets) in views.items():
            sets = {name: (ex, labels[variable]) for name, (ex, labels) in view_sets.items()}
            f1, val_loss = fit_linear_probe(x, train_y, sets, seed=seed, games=games)
            fits[kind] = (math.inf if math.isnan(val_loss) else val_loss, f1, x, sets)
        chosen[variable] = min(fits, key=lambda kind: fits[kind][0])  # the first of equals
        _, f1, x, sets = fits[chosen[variable]]
        results[variable] = {name: {"f1": score} for name, score in f1.items()}
        if variable in POSITION_VARIABLES:
            for name, score in ridge_r2(x, train_y, sets).items():
                results[variable][name]["r2"] = score
    return results, chosen
