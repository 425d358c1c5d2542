"""The one Atari observation pipeline shared by training, evaluation and frame collection.

emulator (ale-py ``AtariVectorEnv``: sticky actions, no-op starts, frame skip 4 with
max-pool of the last two RGB frames, 108k-frame cap, same-step autoreset)
-> perturbation on the full-resolution RGB frame -> grayscale -> 84x84 area resize
-> stack of the last 4 frames.

This is the classic DQN/CleanRL pipeline (max-pool on RGB, then ``cv2`` RGB->gray and
``INTER_AREA`` resize). The emulator hands out full-resolution RGB so that perturbations
act before the resize; conversion and resize run here, vectorised over environments.
Nothing here depends on training: rewards are raw and episodes are full games. The learner
adds reward clipping and the life-loss signal itself (``info["lives"]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from ale_py.env import AtariEnv
from ale_py.vector_env import AtariVectorEnv
from gymnasium.wrappers import AtariPreprocessing
from hydra.utils import instantiate

from jepa_rl.config import resolve_threads
from jepa_rl.perturbations import VisualPerturbation

FRAME_SIZE = 84


def env_seeds(seed: int | Sequence[int], num_envs: int, first_env: int = 0) -> np.ndarray:
    """Emulator seeds of environments ``first_env`` .. ``first_env + num_envs - 1`` of a run seeded ``seed``.

    Environment ``i``'s seed is child ``i`` of ``seed`` (numpy's ``SeedSequence`` spawn keys), so runs
    with different seeds share no environment's random stream. A vector env's default, ``seed + i``,
    would give seed 2 the no-op starts and sticky actions of seed 1's environments 1 to 7. ``seed``
    may be a tuple of ints (e.g. the run's seed and a purpose). Values are below 2**31, as the ALE takes them.
    """
    entropy = int(seed) if isinstance(seed, int | np.integer) else [int(s) for s in seed]
    children = (np.random.SeedSequence(entropy, spawn_key=(first_env + i,)) for i in range(num_envs))
    return np.array([child.generate_state(1)[0] >> 1 for child in children], dtype=np.int64)


def to_gray84(frames: np.ndarray) -> np.ndarray:
    """RGB frames ``[N, H, W, 3]`` uint8 -> grayscale ``[N, 84, 84]`` uint8, each as ``cv2`` does it alone.

    The frames go through ``cv2`` as one image, stacked vertically: an area resize of ``N * H`` rows
    to ``N * 84`` has the same scale as ``H`` to 84, and frame boundaries fall on output row
    boundaries, so no output pixel mixes two frames (the result is identical to a per-frame loop,
    tested) while ``cv2`` is called twice per step instead of twice per environment.
    """
    n, height, width, _ = frames.shape
    gray = cv2.cvtColor(np.ascontiguousarray(frames).reshape(n * height, width, 3), cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (FRAME_SIZE, n * FRAME_SIZE), interpolation=cv2.INTER_AREA)
    return gray.reshape(n, FRAME_SIZE, FRAME_SIZE)


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


class _FireResetWithRam(gym.Wrapper):
    """Press FIRE for one frame after each reset (as ``AtariVectorEnv`` does) and report the RAM in ``info``."""

    def __init__(self, env: gym.Env, fire_reset: bool) -> None:
        super().__init__(env)
        self.ale = env.unwrapped.ale
        self.fire = fire_reset and env.unwrapped.get_action_meanings()[1] == "FIRE"

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        if self.fire:
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
) -> gym.vector.VectorEnv:
    """The emulator stage of the pipeline, built from gymnasium's ALE env and ``AtariPreprocessing``.

    Same settings and output (full-resolution RGB, max-pool of the last two frames, same-step
    autoreset) as ``AtariVectorEnv``, plus each frame's 128-byte RAM in ``info["ram"]``, which the
    vector env cannot report. Used where RAM is needed (frame collection). With more than one
    thread (``num_threads``; 0 = every CPU) each game runs in its own process (gymnasium's
    ``AsyncVectorEnv``: the same frames; up to one game per core at a time), else all in this one.
    """

    def make() -> gym.Env:
        env = AtariEnv(
            game,
            frameskip=1,
            repeat_action_probability=sticky_actions,
            max_num_frames_per_episode=max_frames,
            full_action_space=full_action_space,
        )
        # screen_size = the native 160x210: no resize here; conversion and resize stay in AtariPipeline.
        env = AtariPreprocessing(
            env, noop_max=noop_max, frame_skip=frame_skip, screen_size=(160, 210), grayscale_obs=False
        )
        return _FireResetWithRam(env, fire_reset)

    parallel = resolve_threads(num_threads) > 1 and num_envs > 1
    vector = gym.vector.AsyncVectorEnv if parallel else gym.vector.SyncVectorEnv
    return vector([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


class AtariPipeline:
    """Vectorised Atari environments emitting ``[N, stack, 84, 84]`` uint8 observations.

    Environment ``j`` plays with emulator seed ``env_seeds(seed, num_envs, first_env)[j]``, and its
    perturbation draws from streams of its own seeded from it. ``step`` returns raw rewards and, in
    ``info``, ``lives``, ``frame_number`` (emulator frames since construction),
    ``episode_frame_number`` and, for environments whose game just ended,
    ``episode_return`` / ``episode_length`` (raw score and agent steps; NaN / 0 elsewhere).
    Autoreset is same-step: when ``terminated | truncated``, the returned observation is
    already the first one of the next game. ``record_ram=True`` swaps the emulator stage for
    ``ram_emulator`` (same frames, slower) and adds each observation's RAM as ``info["ram"]``.
    """

    def __init__(
        self,
        game: str,
        num_envs: int,
        seed: int | Sequence[int],
        perturbation: VisualPerturbation | None = None,
        sticky_actions: float = 0.25,
        noop_max: int = 30,
        max_frames: int = 108_000,
        frame_skip: int = 4,
        frame_stack: int = 4,
        fire_reset: bool = True,
        full_action_space: bool = False,
        num_threads: int = 0,
        record_ram: bool = False,
        first_env: int = 0,
    ) -> None:
        if num_envs <= 0:
            raise ValueError(f"num_envs={num_envs} must be positive")
        self.num_envs, self.seeds = num_envs, env_seeds(seed, num_envs, first_env)
        self.perturbation = perturbation or VisualPerturbation()
        self.perturbation.bind(self.seeds)
        emulator = ram_emulator if record_ram else vector_emulator  # same settings, same frames
        self.ale = emulator(
            game, num_envs, sticky_actions, noop_max, max_frames, frame_skip, fire_reset, full_action_space, num_threads
        )
        self.num_actions = int(self.ale.single_action_space.n)
        self.stack = np.zeros((num_envs, frame_stack, FRAME_SIZE, FRAME_SIZE), dtype=np.uint8)
        self.episode_return = np.zeros(num_envs, dtype=np.float64)
        self.episode_length = np.zeros(num_envs, dtype=np.int64)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return self.stack.shape[1:]

    def reset(self) -> tuple[np.ndarray, dict]:
        """Start a new game in every environment; returns ``([N, stack, 84, 84], info)``."""
        # ale-py's vector env takes an array of seeds, gymnasium's a list of Python ints.
        seeds = self.seeds if isinstance(self.ale, AtariVectorEnv) else self.seeds.tolist()
        raw, info = self.ale.reset(seed=seeds)
        everyone = np.ones(self.num_envs, dtype=bool)
        self.perturbation.new_episode(everyone)
        self.episode_return[:] = 0
        self.episode_length[:] = 0
        self._push(raw, fresh=everyone)
        return self.stack.copy(), info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every environment one agent step (``frame_skip`` emulator frames)."""
        actions = np.asarray(actions, dtype=np.int32)
        raw, reward, terminated, truncated, info = self.ale.step(actions)
        done = terminated | truncated
        self.episode_return += reward
        self.episode_length += 1
        info["episode_return"] = np.where(done, self.episode_return, np.nan)
        info["episode_length"] = np.where(done, self.episode_length, 0)
        self.episode_return[done] = 0
        self.episode_length[done] = 0
        # The observation of a finished env is the next game's first frame: new jitter, new stack.
        self.perturbation.new_episode(done)
        self._push(raw, fresh=done)
        return self.stack.copy(), reward.astype(np.float32), terminated, truncated, info

    def _push(self, raw: np.ndarray, fresh: np.ndarray) -> None:
        # raw: [N, 1, 210, 160, 3] from the vector env, [N, 210, 160, 3] from the RAM emulator
        gray = to_gray84(self.perturbation(raw[:, -1] if raw.ndim == 5 else raw))
        self.stack[:, :-1] = self.stack[:, 1:]
        self.stack[:, -1] = gray
        # A new game's stack repeats its first frame (gymnasium's FrameStackObservation padding).
        self.stack[fresh] = gray[fresh, None]

    def close(self) -> None:
        self.ale.close()


def make_env(
    env_cfg: Mapping[str, Any],
    num_envs: int,
    seed: int | Sequence[int],
    perturbation: VisualPerturbation | None = None,
    num_threads: int = 0,
    **overrides: Any,
) -> AtariPipeline:
    """Build the pipeline from the ``env`` config group: the one factory every stage calls.

    ``overrides`` replace config values (evaluation passes its own ``sticky_actions``) or add
    ``AtariPipeline`` arguments (``first_env``, ``record_ram``).
    """
    kwargs = {k: v for k, v in dict(env_cfg).items() if k not in ("name", "env_id")}
    kwargs.update(overrides)
    return instantiate(kwargs, num_envs=num_envs, seed=seed, perturbation=perturbation, num_threads=num_threads)
