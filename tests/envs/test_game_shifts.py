"""Shifts of the game itself: recolourings change only their objects' pixels, modes play another game."""

import numpy as np
import pytest

from jepa_rl.envs.emulators import ram_emulator
from jepa_rl.envs.game_shifts import GameShift, check, variants

SETTINGS = {"sticky_actions": 0.25, "noop_max": 30, "max_frames": 2000, "frame_skip": 4, "fire_reset": True}


def play(shift: GameShift | None, steps: int = 150, game: str = "breakout"):
    """Frames, RAM, rewards, ends and lives of two games under the same seeds and actions."""
    envs = ram_emulator(game, 2, **SETTINGS, full_action_space=False, num_threads=1, shift=shift)
    obs, info = envs.reset(seed=[3, 4])
    actions = np.random.default_rng(0).integers(0, envs.single_action_space.n, (steps, 2))
    frames, rams, events = [obs], [info["ram"]], []
    for a in actions:
        obs, reward, term, trunc, info = envs.step(a)
        frames.append(obs)
        rams.append(info["ram"])
        events.append((reward.tolist(), term.tolist(), trunc.tolist(), info["lives"].tolist()))
    envs.close()
    return np.stack(frames), np.stack(rams), events


def colours(pixels: np.ndarray) -> np.ndarray:
    """How often each RGB colour occurs among [K, 3] pixels (packed to one integer: fast on millions)."""
    packed = pixels.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    return np.unique(packed, return_counts=True)[1]


@pytest.fixture(scope="module")
def original():
    return play(None)


@pytest.mark.parametrize(("recolour", "colour_bytes"), [("paddle_blue", [62]), ("bricks_white", list(range(64, 70)))])
def test_a_recolouring_changes_only_its_objects_and_nothing_of_the_game(original, recolour, colour_bytes):
    frames, rams, events = original
    shifted, shifted_rams, shifted_events = play(GameShift(recolour=recolour))
    assert shifted_events == events  # rewards, ends of games, lives
    others = np.setdiff1d(np.arange(128), colour_bytes)
    assert np.array_equal(shifted_rams[:, :, others], rams[:, :, others])
    changed = (shifted != frames).any(-1)  # [T, N, 210, 160]
    assert changed.any()
    assert len(colours(shifted[changed])) == 1  # every changed pixel now has the one new colour
    if recolour == "paddle_blue":  # what changed was paddle or ball: one colour in the original too
        assert len(colours(frames[changed])) == 1
    else:  # what changed were bricks: inside the brick rows
        rows = np.flatnonzero(changed.any((0, 1, 3)))
        assert rows.min() >= 57 and rows.max() < 93


def test_qberts_recolouring_changes_the_cube_sides_only():
    frames, rams, events = play(None, game="qbert")
    shifted, shifted_rams, shifted_events = play(GameShift(recolour="sides_red"), game="qbert")
    assert shifted_events == events
    assert np.array_equal(np.delete(shifted_rams, 2, axis=2), np.delete(rams, 2, axis=2))
    changed = (shifted != frames).any(-1)
    assert changed.mean() > 0.05  # the sides of 21 cubes
    for seen in (frames[changed], shifted[changed]):  # one colour, but where the max-pool of two frames mixes
        assert colours(seen).max() > 0.95 * len(seen)


def test_modes_and_difficulties_are_the_roms_own():
    assert variants("breakout") == ((0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44), (0, 1))
    check("breakout", GameShift(mode=4, difficulty=1))
    with pytest.raises(ValueError, match="mode=3 is not a mode of breakout; choose one of 0, 4, 8"):
        check("breakout", GameShift(mode=3))
    with pytest.raises(ValueError, match="difficulty=4 is not a difficulty of pong; choose one of 0, 1, 2, 3"):
        check("pong", GameShift(difficulty=4))
    with pytest.raises(ValueError, match="pong has no recolourings"):
        check("pong", GameShift(recolour="paddle_red"))
    with pytest.raises(ValueError, match="recolour=ball_pink is not a recolouring of breakout"):
        check("breakout", GameShift(recolour="ball_pink"))


def test_another_mode_is_another_game(original):
    frames, _, _ = original
    shifted, _, _ = play(GameShift(mode=12), steps=40)
    assert not np.array_equal(shifted[:41], frames[:41])
