"""Game-state variables read from the emulator RAM (AtariARI's annotations), and which are worth probing."""

from __future__ import annotations

import numpy as np

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
    # The two Atari-5 games AtariARI annotates.
    "battle_zone": {
        "blue_tank_facing_direction": 46,
        "blue_tank_size_y": 47,
        "blue_tank_x": 48,
        "blue_tank2_facing_direction": 52,
        "blue_tank2_size_y": 53,
        "blue_tank2_x": 54,
        "num_lives": 58,
        "missile_y": 105,
        "compass_needles_angle": 84,
        "angle_of_tank": 4,
        "left_tread_position": 59,
        "right_tread_position": 60,
        "crosshairs_color": 108,
        "score": 29,
    },
    "qbert": {"player_x": 43, "player_y": 67, "player_column": 35, "red_enemy_column": 69, "green_enemy_column": 105},
}

# Variables that are screen coordinates: these also get a ridge-regression R².
POSITION_VARIABLES: frozenset[str] = frozenset(
    name for variables in GAME_VARIABLES.values() for name in variables if name.endswith(("_x", "_y"))
)


def labels_from_ram(ram: np.ndarray, game: str) -> dict[str, np.ndarray]:
    """Per-variable int64 labels ``[N]`` from RAM snapshots ``[N, 128]`` (uint8) of ``game``."""
    if game not in GAME_VARIABLES:
        raise ValueError(f"no RAM annotations for game {game!r}; known games: {sorted(GAME_VARIABLES)}")
    ram = np.asarray(ram)
    if ram.ndim != 2 or ram.shape[1] != 128:
        raise ValueError(f"expected RAM of shape [N, 128], got {ram.shape}")
    return {name: ram[:, address].astype(np.int64) for name, address in GAME_VARIABLES[game].items()}


def label_entropy(labels: np.ndarray) -> float:
    """Shannon entropy in nats of the empirical distribution of ``labels`` ``[N]`` (0 for a constant)."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(np.sum(p * np.log(1.0 / p)))  # log(1 / p), not -log(p): a constant gives 0.0, not -0.0


def low_entropy_variables(labels: dict[str, np.ndarray], min_entropy: float) -> dict[str, float]:
    """The variables whose label entropy (nats) is below ``min_entropy``: name -> entropy.

    Any features, even uninformative ones, predict a (nearly) constant variable perfectly, so such a
    variable adds the same score to every encoder and shrinks the differences between them. AtariARI
    drops them before probing (``remove_low_entropy_labels``, threshold 0.6 nats); Pong's paddle x
    coordinates, for instance, never change.
    """
    if min_entropy < 0:
        raise ValueError(f"min_entropy={min_entropy} must be non-negative (an entropy in nats)")
    entropies = {name: label_entropy(y) for name, y in labels.items()}
    return {name: h for name, h in entropies.items() if h < min_entropy}
