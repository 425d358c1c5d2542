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

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from ale_py.roms import get_rom_path
from ale_py.vector_env import AtariVectorEnv

from jepa_rl.envs import game_shifts
from jepa_rl.envs.emulators import ram_emulator, vector_emulator
from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.tensor_frames import FRAME_SIZE, TensorFrames
from jepa_rl.ranges import require_positive


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


@dataclass
class AtariSettings:
    """``env``: the game and the pipeline's settings, the config group's schema; the ranges are checked here."""

    name: str  # short name used in paths and W&B groups
    env_id: str  # gymnasium id of the game, reported in results.json
    game: str  # ale-py ROM name (snake_case)
    sticky_actions: float = 0.25  # repeat_action_probability (Machado et al. 2018); CleanRL's scores use 0.0
    noop_max: int = 30  # random no-ops at the start of each game
    max_frames: int = 108_000  # emulator frames per game (30 minutes of play)
    frame_skip: int = 4  # emulator frames per agent step, max-pooled over the last two
    frame_stack: int = 4  # frames per observation
    fire_reset: bool = True  # press FIRE at the start of each game (for games that need it)
    full_action_space: bool = False  # all 18 actions instead of the game's minimal set

    def __post_init__(self) -> None:
        with warnings.catch_warnings():  # ale-py warns as well as returning None: the error below says it once
            warnings.simplefilter("ignore")
            known = get_rom_path(self.game) is not None
        if not known:
            raise ValueError(
                f"game={self.game} is not a ROM ale-py ships; use a snake_case name such as breakout or pong"
            )
        require_positive(max_frames=self.max_frames, frame_skip=self.frame_skip)
        if not 0 <= self.sticky_actions <= 1:
            raise ValueError(f"sticky_actions={self.sticky_actions} must be in [0, 1]")
        if self.noop_max < 0:
            raise ValueError(f"noop_max={self.noop_max} must be >= 0")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack={self.frame_stack} must be >= 1")

    def emulator_settings(self) -> dict[str, Any]:
        """The emulator's keyword arguments (``emulators``' parameters of the same names)."""
        names = ("sticky_actions", "noop_max", "max_frames", "frame_skip", "fire_reset", "full_action_space")
        return {name: getattr(self, name) for name in names}


def cache_identity(env: Mapping[str, Any]) -> dict[str, Any]:
    """The ``env`` values as the cache keys of frame sets and random play record them: with the class they
    build, named as ``artifact_cache.spec_key`` names classes."""
    return {**{k: v for k, v in dict(env).items() if k != "_target_"}, "_target_": "AtariPipeline"}


class HostFrames:
    """The frame stack of a pipeline's ``N`` environments in host memory, built with numpy and OpenCV."""

    def __init__(self, perturbation: VisualPerturbation, num_envs: int, frame_stack: int) -> None:
        self.perturbation = perturbation
        self.stack = np.zeros((num_envs, frame_stack, FRAME_SIZE, FRAME_SIZE), dtype=np.uint8)

    def push(self, frames: np.ndarray, fresh: np.ndarray, watched: np.ndarray | None = None) -> None:
        """Perturb RGB ``frames``, convert them to 84x84 gray and push them onto the stack.

        Environments in ``fresh`` start a game: new jitter, and a stack repeating the first frame
        (gymnasium's ``FrameStackObservation`` padding). Perturbations return new arrays: ``frames`` is untouched.
        Only the environments ``watched`` (a mask; None: all) get this frame work; the others' stacks go stale.
        """
        self.perturbation.new_episode(fresh)  # every environment: its stream of jitter stays the same
        if watched is not None and not watched.all():
            rows = np.flatnonzero(watched)
            gray = to_gray84(self.perturbation(frames[rows], rows))
            self.stack[rows] = np.where(fresh[rows, None, None, None], gray[:, None], self._pushed(rows, gray))
            return
        gray = to_gray84(self.perturbation(frames))
        self.stack[:, :-1] = self.stack[:, 1:]
        self.stack[:, -1] = gray
        self.stack[fresh] = gray[fresh, None]

    def _pushed(self, rows: np.ndarray, gray: np.ndarray) -> np.ndarray:
        return np.concatenate((self.stack[rows, 1:], gray[:, None]), axis=1)

    def observation(self) -> np.ndarray:
        return self.stack.copy()


def frame_stack_on(
    frames_device: str | None, perturbation: VisualPerturbation, seeds: np.ndarray, frame_stack: int
) -> HostFrames | TensorFrames:
    """The host's numpy/OpenCV frame work (``frames_device`` None), or the same as torch ops on that device."""
    if frames_device is None:
        return HostFrames(perturbation, len(seeds), frame_stack)
    return TensorFrames(perturbation, seeds, frame_stack, frames_device)


class SideBySide:
    """The frame stacks of groups of ``size`` environments side by side, each group under its own perturbation
    (``HostFrames`` or ``TensorFrames`` each): environments ``g * size`` .. ``(g + 1) * size - 1`` are group ``g``."""

    def __init__(self, groups: list[HostFrames | TensorFrames], size: int) -> None:
        self.groups, self.size = groups, size

    @property
    def stack(self) -> np.ndarray | torch.Tensor:
        return self.groups[0].stack  # one group's stack: the observation shape is the same for all

    def push(self, frames: np.ndarray, fresh: np.ndarray, watched: np.ndarray | None = None) -> None:
        """Push each group's frames; an environment not ``watched`` skips its frame work on the host, a
        group with none on any device (their observations go stale: evaluation does not read games past
        their share)."""
        for g, group in enumerate(self.groups):
            part = slice(g * self.size, (g + 1) * self.size)
            if watched is None:
                group.push(frames[part], fresh[part])
            elif watched[part].any():
                group.push(frames[part], fresh[part], watched[part])

    def observation(self) -> np.ndarray | torch.Tensor:
        parts = [group.observation() for group in self.groups]
        if len(parts) == 1:  # a pipeline of one perturbation (training's): no copy more
            return parts[0]
        return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts)


def last_frames(raw: np.ndarray) -> np.ndarray:
    """The RGB frames ``[N, 210, 160, 3]`` of an emulator stage's output: the vector env's
    ``[N, 1, 210, 160, 3]``, or the RAM emulator's ``[N, 210, 160, 3]``."""
    return raw[:, -1] if raw.ndim == 5 else raw


def to_host(obs: np.ndarray | torch.Tensor) -> np.ndarray:
    """An observation batch as a host numpy array (a pipeline on a device hands out tensors)."""
    return obs if isinstance(obs, np.ndarray) else obs.cpu().numpy()


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
    ``views`` (name -> perturbation) adds ``info["views"]``: the same emulator frames seen through
    each of them, stacked the same way (identical game states under several perturbations). A
    perturbation that shifts the game itself (``game_shifts``: a mode, a recolouring) plays on the
    RAM emulator, which can. With ``frames_device`` (a torch device), the perturbation, grayscale, resize
    and stack run there as tensor ops (``tensor_frames``), and observations are uint8 tensors on it.

    ``side_by_side`` (perturbations of the pixels only) plays the same ``num_envs`` emulator seeds once
    more under each of them, in the same emulator: ``num_envs`` becomes ``num_envs * (1 + len(side_by_side))``,
    environment ``g * group_size + j`` is seed ``j`` under perturbation ``g`` (0: ``perturbation``), and one
    step advances every game of every perturbation (evaluation batches a suite this way). ``views`` watch
    the first group only.
    """

    def __init__(
        self,
        settings: AtariSettings,
        num_envs: int,
        seed: int | Sequence[int],
        *,
        perturbation: VisualPerturbation | None = None,
        num_threads: int = 0,
        record_ram: bool = False,
        first_env: int = 0,
        views: Mapping[str, VisualPerturbation] | None = None,
        frames_device: str | None = None,
        side_by_side: Sequence[VisualPerturbation] = (),
    ) -> None:
        require_positive(num_envs=num_envs)
        self.settings, game, frame_stack = settings, settings.game, settings.frame_stack
        self.perturbation = perturbation or VisualPerturbation()
        self.perturbations = [self.perturbation, *side_by_side]
        group_seeds = env_seeds(seed, num_envs, first_env)
        self.group_size, self.num_envs = num_envs, num_envs * len(self.perturbations)
        self.seeds = np.tile(group_seeds, len(self.perturbations))
        for name, view in {**dict(views or {}), **{p.name: p for p in side_by_side}}.items():
            if view.game_shift.active:
                raise ValueError(f"{name} shifts the game itself; it cannot share the emulator of another perturbation")
        self.views = dict(views or {})
        shift = self.perturbation.game_shift
        game_shifts.check(game, shift)
        emulator = settings.emulator_settings()
        if record_ram or shift.active:  # the same settings and frames, and the RAM, modes and colours
            self.ale = ram_emulator(game, self.num_envs, **emulator, num_threads=num_threads, shift=shift)
        else:
            self.ale = vector_emulator(game, self.num_envs, **emulator, num_threads=num_threads)
        self.num_actions = int(self.ale.single_action_space.n)
        groups = []
        for p in self.perturbations:
            p.bind(group_seeds)
            groups.append(frame_stack_on(frames_device, p, group_seeds, frame_stack))
        self.frames = SideBySide(groups, num_envs)
        self.view_frames = {}
        for name, view in self.views.items():
            view.bind(group_seeds)
            self.view_frames[name] = frame_stack_on(frames_device, view, group_seeds, frame_stack)
        self.episode_return = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return tuple(self.frames.stack.shape[1:])

    def reset(self) -> tuple[np.ndarray | torch.Tensor, dict]:
        """Start a new game in every environment; returns ``([N, stack, 84, 84], info)``."""
        # ale-py's vector env takes an array of seeds, gymnasium's a list of Python ints.
        seeds = self.seeds if isinstance(self.ale, AtariVectorEnv) else self.seeds.tolist()
        raw, info = self.ale.reset(seed=seeds)
        everyone = np.ones(self.num_envs, dtype=bool)
        self.episode_return[:] = 0
        self.episode_length[:] = 0
        self._push(raw, fresh=everyone, info=info)
        return self.frames.observation(), info

    def step(
        self, actions: np.ndarray, watched: np.ndarray | None = None
    ) -> tuple[np.ndarray | torch.Tensor, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every environment one agent step (``frame_skip`` emulator frames). ``watched`` (a mask;
        None: all) marks the environments whose observations will be read again: a group of ``side_by_side``
        with none skips its frame work from then on, and its observations are stale."""
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
        self._push(raw, fresh=done, info=info, watched=watched)
        return self.frames.observation(), reward.astype(np.float32), terminated, truncated, info

    def _push(self, raw: np.ndarray, fresh: np.ndarray, info: dict, watched: np.ndarray | None = None) -> None:
        frames = last_frames(raw)
        self.frames.push(frames, fresh, watched)
        first = slice(0, self.group_size)  # the group the views watch
        mine = None if watched is None else watched[first]
        for view in self.view_frames.values():
            if mine is None or mine.any():
                view.push(frames[first], fresh[first], mine)
        if self.views:
            info["views"] = {name: view.observation() for name, view in self.view_frames.items()}

    def close(self) -> None:
        self.ale.close()


PIPELINE_ARGUMENTS = ("record_ram", "first_env", "views", "side_by_side")


def make_env(
    env_cfg: Mapping[str, Any],
    num_envs: int,
    seed: int | Sequence[int],
    perturbation: VisualPerturbation | None = None,
    num_threads: int = 0,
    **overrides: Any,
) -> AtariPipeline:
    """Build the pipeline from the ``env`` config group: the one factory every stage calls.

    ``env_cfg`` holds ``AtariSettings``' values (and, resolved for the job, ``frames_device``).
    ``overrides`` replace settings (evaluation passes its own ``sticky_actions``) or add
    ``AtariPipeline`` arguments (``PIPELINE_ARGUMENTS``).
    """
    # A checkpoint's config from before the packages moved also names the class it built (_target_).
    values = {k: v for k, v in dict(env_cfg).items() if k != "_target_"}
    frames_device = values.pop("frames_device", None)
    extra = {k: overrides.pop(k) for k in PIPELINE_ARGUMENTS if k in overrides}
    settings = AtariSettings(**{**values, **overrides})
    return AtariPipeline(
        settings,
        num_envs,
        seed,
        perturbation=perturbation,
        num_threads=num_threads,
        frames_device=frames_device,
        **extra,
    )


def make_train_envs(
    env_cfg: Mapping[str, Any],
    perturbation: VisualPerturbation,
    num_envs: int,
    groups: int,
    seed: int | Sequence[int],
    threads: int = 0,
) -> list[AtariPipeline]:
    """The training environments: the pipeline under the training perturbation, in ``groups`` pipelines
    that split ``num_envs`` and the emulator threads between them. Environment ``i`` gets the same
    emulator seed (``env_seeds``) however they are grouped; each group gets its own perturbation copy."""
    size, per_group = num_envs // groups, max(1, threads // groups) if threads else 0
    return [make_env(env_cfg, size, seed, perturbation.copy(), per_group, first_env=g * size) for g in range(groups)]


def make_eval_env(
    env_cfg: Mapping[str, Any],
    num_envs: int,
    perturbation: VisualPerturbation,
    seed: int | Sequence[int],
    sticky_actions: float,
    threads: int = 0,
    views: Mapping[str, VisualPerturbation] | None = None,
    side_by_side: Sequence[VisualPerturbation] = (),
) -> AtariPipeline:
    """The evaluation environments: the same pipeline, with evaluation's sticky-action setting (``views``:
    the same frames under other perturbations; ``side_by_side``: the same games again under others; see
    ``AtariPipeline``)."""
    extra = {"views": views} if views else {}
    extra |= {"side_by_side": side_by_side} if side_by_side else {}
    return make_env(env_cfg, num_envs, seed, perturbation, threads, sticky_actions=sticky_actions, **extra)


def random_play_observations(env_cfg: Mapping[str, Any], count: int, seed: Sequence[int], every: int = 8) -> np.ndarray:
    """``count`` observations ``[count, stack, 84, 84]`` of one environment under uniformly random actions,
    one every ``every`` agent steps: frames that differ as a game goes on (a check that an encoder sees)."""
    envs = make_env(env_cfg, 1, seed, num_threads=1)
    rng = np.random.default_rng(list(seed))
    try:
        obs, _ = envs.reset()
        kept = []
        while len(kept) < count:
            for _ in range(every):
                obs, *_ = envs.step(rng.integers(0, envs.num_actions, 1))
            kept.append(to_host(obs)[0])
    finally:
        envs.close()
    return np.stack(kept)
