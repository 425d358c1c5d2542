"""The emulator stage of the observation pipeline: full-resolution RGB frames out, two implementations.

``vector_emulator`` is ale-py's threaded ``AtariVectorEnv`` (fast; what training and evaluation
use). ``ram_emulator`` builds the same settings from gymnasium's ``AtariEnv`` and
``AtariPreprocessing`` and also reports each frame's RAM (frame collection needs it); the two give
identical frames (tested). Only the latter can play another mode or difficulty, or write colours
into the RAM before every frame (``game_shifts``).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from ale_py.env import AtariEnv
from ale_py.vector_env import AtariVectorEnv
from gymnasium.wrappers import AtariPreprocessing

from jepa_rl.envs.game_shifts import GameShift


def vector_emulator(
    game: str,
    num_envs: int,
    sticky_actions: float,
    noop_max: int,
    max_frames: int,
    frame_skip: int,
    fire_reset: bool,
    full_action_space: bool,
    num_threads: int = 0,
) -> AtariVectorEnv:
    """The emulator stage of the pipeline: ale-py's threaded vector env, full-resolution RGB out."""
    return AtariVectorEnv(
        game,
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=max_frames,
        repeat_action_probability=sticky_actions,
        full_action_space=full_action_space,
        autoreset_mode="SameStep",
        img_height=210,
        img_width=160,
        grayscale=False,
        stack_num=1,
        frameskip=frame_skip,
        maxpool=True,
        noop_max=noop_max,
        episodic_life=False,
        life_loss_info=False,
        reward_clipping=False,
        use_fire_reset=fire_reset,
    )


class _RamWrites(gym.Wrapper):
    """Write RAM bytes before every emulator frame (a recolouring: ``game_shifts``), the reset's too."""

    def __init__(self, env: gym.Env, writes: dict[int, int]) -> None:
        super().__init__(env)
        self.ale, self.writes = env.unwrapped.ale, list(writes.items())

    def write(self) -> None:
        for address, value in self.writes:
            self.ale.setRAM(address, value)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.write()
        return self.env.step(action)


class _FireResetWithRam(gym.Wrapper):
    """Press FIRE for one frame after each reset (as ``AtariVectorEnv`` does) and report the RAM in ``info``."""

    def __init__(self, env: gym.Env, fire_reset: bool, writes: _RamWrites | None = None) -> None:
        super().__init__(env)
        self.ale, self.writes = env.unwrapped.ale, writes
        self.fire = fire_reset and env.unwrapped.get_action_meanings()[1] == "FIRE"

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        if self.fire:
            if self.writes is not None:
                self.writes.write()
            self.ale.act(1)
            obs = self.ale.getScreenRGB()
        return obs, self._with_ram(info)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._with_ram(info)

    def _with_ram(self, info: dict) -> dict:
        info = dict(info, ram=self.ale.getRAM(), lives=self.ale.lives())
        info["frame_number"], info["episode_frame_number"] = self.ale.getFrameNumber(), self.ale.getEpisodeFrameNumber()
        return info


def ram_emulator(
    game: str,
    num_envs: int,
    sticky_actions: float,
    noop_max: int,
    max_frames: int,
    frame_skip: int,
    fire_reset: bool,
    full_action_space: bool,
    num_threads: int = 0,
    shift: GameShift | None = None,
) -> gym.vector.VectorEnv:
    """The emulator stage of the pipeline, built from gymnasium's ALE env and ``AtariPreprocessing``.

    Same settings and output (full-resolution RGB, max-pool of the last two frames, same-step
    autoreset) as ``AtariVectorEnv``, plus each frame's 128-byte RAM in ``info["ram"]``, which the
    vector env cannot report. Used where RAM is needed (frame collection). With more than one
    thread (``num_threads``; 0 = every CPU) each game runs in its own process (gymnasium's
    ``AsyncVectorEnv``: the same frames; up to one game per core at a time), else all in this one.
    ``shift`` plays another mode or difficulty of the game, or recolours it (``game_shifts``).
    """
    shift = shift or GameShift()

    def make() -> gym.Env:
        env = AtariEnv(
            game,
            mode=shift.mode,
            difficulty=shift.difficulty,
            frameskip=1,
            repeat_action_probability=sticky_actions,
            max_num_frames_per_episode=max_frames,
            full_action_space=full_action_space,
        )
        writes = _RamWrites(env, shift.ram_writes(game)) if shift.recolour else None
        # screen_size = the native 160x210: no resize here; conversion and resize stay in AtariPipeline.
        env = AtariPreprocessing(
            writes or env, noop_max=noop_max, frame_skip=frame_skip, screen_size=(160, 210), grayscale_obs=False
        )
        return _FireResetWithRam(env, fire_reset, writes)

    parallel = (num_threads or len(os.sched_getaffinity(0))) > 1 and num_envs > 1
    vector = gym.vector.AsyncVectorEnv if parallel else gym.vector.SyncVectorEnv
    return vector([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
