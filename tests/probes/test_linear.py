"""Linear probes of frozen features: weighted F1, the softmax probe and its validation split, ridge R²,
whitening and the probes' inputs, test frames that repeat training frames."""

import numpy as np
import pytest
import torch
from helpers import encoded

from jepa_rl.probes.linear import (
    fit_linear_probe,
    majority_f1,
    probe_encoder,
    repeats_reference,
    ridge_r2,
    validation_split,
    weighted_f1,
)
from jepa_rl.probes.ram_labels import GAME_VARIABLES, labels_from_ram


def split_labels(n: int, values: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, values, n) * (256 // values)


# --- weighted F1 ----------------------------------------------------------------------------------


def test_weighted_f1_hand_computed():
    # class 0: P=2/2, R=2/3 -> F1=0.8 (support 3); class 1: P=1/2, R=1/2 -> 0.5 (2);
    # class 2: P=1/2, R=1/1 -> 2/3 (1). Weighted: (3*0.8 + 2*0.5 + 1*2/3) / 6.
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    assert weighted_f1(y_true, y_pred) == pytest.approx((2.4 + 1.0 + 2 / 3) / 6)


def test_majority_f1_predicts_the_most_frequent_training_value():
    train = {"ball_x": np.array([5, 5, 5, 9]), "score": np.array([1, 2, 2, 2])}
    test = {"ball_x": np.array([5, 9]), "score": np.array([1, 1, 1, 2])}
    # ball_x: predicts 5 -> class 5 F1 2/3 (support 1), class 9 F1 0. score: predicts 2 -> class 2 F1 2/5 (support 1).
    assert majority_f1(train, test) == pytest.approx({"ball_x": 1 / 3, "score": 0.1})


def test_weighted_f1_class_only_predicted_has_no_weight_but_costs_recall():
    # Only class 7 is in y_true: P=1, R=1/2 -> F1=2/3; the stray prediction 9 has zero support.
    assert weighted_f1(np.array([7, 7]), np.array([7, 9])) == pytest.approx(2 / 3)
    assert weighted_f1(np.array([3, 1, 3]), np.array([3, 1, 3])) == 1.0
    assert weighted_f1(np.array([3, 3]), np.array([1, 1])) == 0.0


# --- linear probe and ridge -----------------------------------------------------------------------


def test_probe_recovers_linearly_encoded_variable():
    train_y, test_y = split_labels(3000, 32, seed=0), split_labels(1000, 32, seed=1)
    train_x, test_x = encoded(train_y, seed=0), encoded(test_y, seed=1)
    f1, _ = fit_linear_probe(train_x, train_y, {"test": (test_x, test_y), "train": (train_x, train_y)}, seed=0)
    assert f1["test"] > 0.9
    r2 = ridge_r2(train_x, train_y, {"test": (test_x, test_y)})
    assert r2["test"] > 0.9


def test_probe_on_noise_is_near_chance():
    rng = np.random.default_rng(0)
    train_y, test_y = split_labels(3000, 16, seed=0), split_labels(1000, 16, seed=1)
    train_x, test_x = rng.normal(size=(3000, 64)), rng.normal(size=(1000, 64))
    assert fit_linear_probe(train_x, train_y, {"test": (test_x, test_y)})[0]["test"] < 0.15  # chance is 1/16
    assert ridge_r2(train_x, train_y, {"test": (test_x, test_y)})["test"] < 0.05


def test_probe_is_deterministic_given_seed_and_predicts_byte_values():
    train_y, test_y = split_labels(600, 8, seed=0) + 3, split_labels(300, 8, seed=1) + 3  # values 3, 35, ...
    train_x, test_x = encoded(train_y, noise=3.0, seed=0), encoded(test_y, noise=3.0, seed=1)
    sets = {"test": (test_x, test_y)}
    first, _ = fit_linear_probe(train_x, train_y, sets, seed=5)
    again, _ = fit_linear_probe(train_x, train_y, sets, seed=5)
    assert first == again
    assert first["test"] > 0.5  # predictions are mapped back to the original byte values
    with pytest.raises(ValueError, match="byte"):
        fit_linear_probe(train_x, train_y + 300, sets)


def test_probe_standardises_eval_features_with_train_statistics():
    # One feature equal to the label (0 or 1). Shifted by 10, every eval frame looks like class 1
    # to a probe that uses the training statistics; standardising per set would hide the shift.
    y = np.arange(200) % 2
    x = y[:, None].astype(np.float64) + np.random.default_rng(0).normal(scale=0.05, size=(200, 1))
    f1, _ = fit_linear_probe(x, y, {"same": (x, y), "shifted": (x + 10, y)})
    assert f1["same"] == 1.0
    assert f1["shifted"] == pytest.approx(1 / 3)  # class 1: P=1/2, R=1 -> F1=2/3; class 0: 0


def test_validation_split_holds_out_whole_games():
    games = np.repeat(np.arange(20), np.arange(20) % 5 + 8)  # 20 games of 8-12 frames
    val, fit = validation_split(len(games), 0.2, torch.Generator().manual_seed(3), games)
    assert sorted(np.concatenate([val.numpy(), fit.numpy()])) == list(range(len(games)))
    assert set(games[val.numpy()]).isdisjoint(games[fit.numpy()])
    assert 0.2 * len(games) <= len(val) < 0.2 * len(games) + 12  # the target, overshot by less than one game
    again, _ = validation_split(len(games), 0.2, torch.Generator().manual_seed(3), games)
    other, _ = validation_split(len(games), 0.2, torch.Generator().manual_seed(4), games)
    assert torch.equal(val, again) and not torch.equal(val, other)


def test_validation_split_needs_two_games_and_ten_rows():
    one_game = validation_split(200, 0.2, torch.Generator().manual_seed(0), np.zeros(200))
    by_frame = validation_split(200, 0.2, torch.Generator().manual_seed(0))
    few_rows = validation_split(40, 0.2, torch.Generator().manual_seed(0), np.arange(40) // 4)
    assert len(one_game[0]) == 0 and len(one_game[1]) == 200
    assert len(by_frame[0]) == 40 and len(few_rows[0]) == 0


def test_probe_validating_on_games_is_deterministic():
    train_y = split_labels(600, 8, seed=0)
    train_x, games = encoded(train_y, noise=3.0, seed=0), np.arange(600) // 30
    sets = {"test": (encoded(train_y[:200], noise=3.0, seed=1), train_y[:200])}
    first, _ = fit_linear_probe(train_x, train_y, sets, seed=2, games=games)
    assert first == fit_linear_probe(train_x, train_y, sets, seed=2, games=games)[0] and first["test"] > 0.5


def test_probe_with_a_single_training_value_predicts_it():
    x = np.random.default_rng(0).normal(size=(50, 8))
    f1, _ = fit_linear_probe(x, np.full(50, 9), {"same": (x, np.full(50, 9)), "other": (x, np.full(50, 2))})
    assert f1 == {"same": 1.0, "other": 0.0}


def test_ridge_r2_hand_computed_uses_train_statistics_and_eval_mean():
    # y = 2x is fitted exactly; eval predictions are [2, 4] against targets [2, 5]:
    # SS_res = 1, SS_tot about the eval mean 3.5 is 4.5, so R² = 1 - 1/4.5. Standardising the eval
    # features with their own statistics, or taking SS_tot about the train mean or zero, gives another value.
    train_x, train_y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0.0, 2.0, 4.0, 6.0])
    scores = ridge_r2(train_x, train_y, {"eval": (np.array([[1.0], [2.0]]), np.array([2.0, 5.0]))}, alpha=1e-9)
    assert scores["eval"] == pytest.approx(1 - 1 / 4.5, abs=1e-6)


def test_ridge_r2_of_a_constant_eval_target():
    train_x, train_y = np.array([[0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 2.0])
    fitted = ridge_r2(train_x, train_y, {"exact": (np.array([[1.0], [1.0]]), np.array([1.0, 1.0]))}, alpha=0)
    missed = ridge_r2(train_x, train_y, {"missed": (np.array([[1.0], [2.0]]), np.array([1.0, 1.0]))}, alpha=0)
    assert fitted["exact"] == pytest.approx(1.0) and missed["missed"] == 0.0


def test_probe_encoder_reports_f1_everywhere_and_r2_for_positions():
    train = labels_from_ram(np.random.default_rng(0).integers(0, 4, (400, 128), dtype=np.uint8) * 60, "breakout")
    held = labels_from_ram(np.random.default_rng(1).integers(0, 4, (200, 128), dtype=np.uint8) * 60, "breakout")
    train_x = np.concatenate([encoded(train["ball_x"], 16, seed=0), encoded(train["score"], 16, seed=2)], axis=1)
    held_x = np.concatenate([encoded(held["ball_x"], 16, seed=1), encoded(held["score"], 16, seed=3)], axis=1)
    results, inputs = probe_encoder(train_x, train, {"held": (held_x, held)}, seed=0)
    assert set(results) == set(inputs) == set(GAME_VARIABLES["breakout"])
    assert set(results["ball_x"]["held"]) == {"f1", "r2"}
    assert set(results["score"]["held"]) == {"f1"}
    assert results["ball_x"]["held"]["f1"] > 0.9 and results["score"]["held"]["f1"] > 0.9
    assert results["ball_y"]["held"]["f1"] < 0.6  # not in the features: chance is 1/4
    # Whitened, the 16 noise directions weigh as much as the signal's, and Adam's eight full-batch steps
    # on 400 frames spread the weights over them: the validation frames see it and keep standardised.
    assert inputs["ball_x"] == inputs["score"] == "standardised"
    whitened, _ = probe_encoder(train_x, train, {"held": (held_x, held)}, seed=0, inputs="whitened")
    assert whitened["ball_x"]["held"]["f1"] < 0.8


def weak_direction_features(labels: np.ndarray, seed: int) -> np.ndarray:
    """A near-collapsed encoder: one shared direction 1000x stronger than the one carrying ``labels``."""
    rng = np.random.default_rng(seed)
    mixing = np.linalg.qr(np.random.default_rng(99).normal(size=(64, 64)))[0]  # every dimension sees both
    strong = rng.normal(size=(len(labels), 1)) * 1000.0
    weak = encoded(labels, 63, noise=0.5, seed=seed) / 3.0
    return np.concatenate([strong, weak], axis=1) @ mixing


def test_whitening_finds_a_variable_in_a_weak_direction():
    # Standardised per dimension, the label's direction has a millionth of the variance: a few epochs of
    # Adam cannot use it. Whitened, it is as strong as any other, and the validation games pick that.
    # Ridge, closed-form, finds it either way.
    train_y, test_y = split_labels(3000, 16, seed=0), split_labels(1000, 16, seed=1)
    train_x, test_x = weak_direction_features(train_y, 0), weak_direction_features(test_y, 1)
    labels, sets, games = {"ball_x": train_y}, {"test": (test_x, {"ball_x": test_y})}, np.arange(3000) // 50
    best, inputs = probe_encoder(train_x, labels, sets, games=games)
    plain, _ = probe_encoder(train_x, labels, sets, games=games, inputs="standardised")
    assert inputs == {"ball_x": "whitened"}
    assert best["ball_x"]["test"]["f1"] > 0.9 and best["ball_x"]["test"]["r2"] > 0.9
    assert plain["ball_x"]["test"]["f1"] < 0.3 and plain["ball_x"]["test"]["r2"] > 0.9
    with pytest.raises(ValueError, match="inputs=pca must be one of best, standardised, whitened"):
        probe_encoder(train_x, labels, sets, inputs="pca")


def test_whitened_probes_do_not_depend_on_a_linear_map_of_the_features():
    train_y, test_y = split_labels(2000, 16, seed=0), split_labels(500, 16, seed=1)
    train_x, test_x = encoded(train_y, 32, seed=0), encoded(test_y, 32, seed=1)
    mix = np.random.default_rng(5).normal(size=(32, 32)) * np.logspace(0, 3, 32)  # invertible, badly scaled
    labels = {"ball_x": train_y}
    scores = [
        probe_encoder(x, labels, {"test": (t, {"ball_x": test_y})}, inputs="whitened")[0]["ball_x"]["test"]
        for x, t in ((train_x, test_x), (train_x @ mix, test_x @ mix))
    ]
    assert scores[0]["r2"] == pytest.approx(scores[1]["r2"], abs=1e-6)  # ridge: exactly invariant
    assert scores[0]["f1"] == pytest.approx(scores[1]["f1"], abs=0.03)  # Adam: per-coordinate, up to a rotation


# --- test frames that repeat training frames ----------------------------------


def test_repeats_reference_matches_whole_stacks_byte_for_byte():
    frames = np.random.default_rng(0).integers(0, 256, (12, 4, 6, 6), dtype=np.uint8)
    frames[8] = frames[1]
    frames[9] = frames[2]
    frames[9, 3, 5, 5] ^= 1  # one bit off: not a repeat
    frames[10] = frames[11]  # a repeat among the checked rows only
    repeated = repeats_reference(frames, np.arange(6), np.arange(6, 12))
    np.testing.assert_array_equal(repeated, [False, False, True, False, False, False])
