"""Game-state variables from the emulator RAM (AtariARI's annotations) and the low-entropy ones left unprobed."""

import numpy as np
import pytest
from helpers import pipeline

from jepa_rl.pretrain.frame_sets import collect
from jepa_rl.probes.linear import probe_encoder
from jepa_rl.probes.ram_labels import (
    GAME_VARIABLES,
    POSITION_VARIABLES,
    label_entropy,
    labels_from_ram,
    low_entropy_variables,
)
from jepa_rl.probes.study import mean_f1

# --- RAM labels -----------------------------------------------------------------------------------


def test_address_table_matches_atariari():
    assert GAME_VARIABLES["breakout"] == {
        "ball_x": 99,
        "ball_y": 101,
        "player_x": 72,
        "blocks_hit_count": 77,
        "score": 84,
    }
    assert GAME_VARIABLES["pong"] == {
        "player_y": 51,
        "player_x": 46,
        "enemy_y": 50,
        "enemy_x": 45,
        "ball_x": 49,
        "ball_y": 54,
        "enemy_score": 13,
        "player_score": 14,
    }
    assert GAME_VARIABLES["qbert"] == {
        "player_x": 43, "player_y": 67, "player_column": 35, "red_enemy_column": 69, "green_enemy_column": 105
    }  # fmt: skip
    assert {"ball_x", "ball_y", "player_x", "player_y", "enemy_x", "enemy_y", "blue_tank_x"} <= POSITION_VARIABLES


def test_labels_from_ram_reads_each_variables_address():
    # Every byte is distinct and identifies its (row, address): (address + 3 * row) % 256.
    rows, addresses = np.arange(5)[:, None], np.arange(128)[None, :]
    ram = ((addresses + 3 * rows) % 256).astype(np.uint8)
    labels = labels_from_ram(ram, "pong")
    assert set(labels) == set(GAME_VARIABLES["pong"])
    np.testing.assert_array_equal(labels["player_y"], 51 + 3 * np.arange(5))
    np.testing.assert_array_equal(labels["enemy_score"], 13 + 3 * np.arange(5))
    breakout = labels_from_ram(ram, "breakout")
    np.testing.assert_array_equal(breakout["ball_y"], 101 + 3 * np.arange(5))
    assert all(v.dtype == np.int64 for v in breakout.values())


def test_labels_from_ram_keeps_high_bytes_unsigned():
    ram = np.zeros((2, 128), np.uint8)
    ram[:, 84] = [200, 255]
    np.testing.assert_array_equal(labels_from_ram(ram, "breakout")["score"], [200, 255])


def test_labels_from_ram_rejects_unknown_game():
    with pytest.raises(ValueError, match="breakout"):
        labels_from_ram(np.zeros((1, 128), np.uint8), "space_invaders")


# --- low-entropy variables -----------------------------------------------------------------------


def test_label_entropy_in_nats():
    assert label_entropy(np.full(10, 7)) == 0.0
    assert label_entropy(np.array([3, 3, 9, 9])) == pytest.approx(np.log(2))
    assert label_entropy(np.arange(8)) == pytest.approx(np.log(8))


def test_constant_pong_paddles_are_not_probed_so_uninformative_features_score_low():
    envs = pipeline("pong", 2, 0, record_ram=True, num_threads=1)
    data = collect(envs, num_frames=96, keep_every=2, seed=0)
    envs.close()
    labels = labels_from_ram(data["ram"], "pong")
    train = {k: v[:64] for k, v in labels.items()}
    held = {"test": (np.random.default_rng(1).normal(size=(32, 8)), {k: v[64:] for k, v in labels.items()})}
    noise = np.random.default_rng(0).normal(size=(64, 8))  # features that carry nothing
    # Probed anyway, the paddles' x coordinates (which never change) score perfectly on noise.
    every, _ = probe_encoder(noise, train, held, seed=0)
    assert every["player_x"]["test"] == every["enemy_x"]["test"] == {"f1": 1.0, "r2": 1.0}
    dropped = low_entropy_variables(train, min_entropy=0.6)
    assert {"player_x", "enemy_x"} <= set(dropped) and dropped["player_x"] == 0.0
    assert all(label_entropy(train[k]) >= 0.6 for k in set(train) - set(dropped))
    assert {"player_y", "ball_x", "ball_y"}.isdisjoint(dropped)  # they move under random play
    informative, _ = probe_encoder(noise, {k: v for k, v in train.items() if k not in dropped}, held, seed=0)
    assert set(informative) == set(train) - set(dropped)
    assert mean_f1(informative, ["test"])["test"] < 0.3 < mean_f1(every, ["test"])["test"]
    assert low_entropy_variables(train, min_entropy=0.0) == {}


def test_low_entropy_variables_rejects_a_negative_threshold():
    with pytest.raises(ValueError, match="nats"):
        low_entropy_variables({"x": np.zeros(3)}, min_entropy=-1)
