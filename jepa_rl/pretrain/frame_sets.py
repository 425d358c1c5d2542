"""Frame collection for pretraining and probes, through the shared observation pipeline.

A random policy by default, optionally mixed with a trained PPO agent's; every ``keep_every``-th
observation is kept (consecutive stacks overlap and are nearly identical). Each kept frame
comes with the emulator RAM behind it, its game (episode) id and step, and every action of the
collection is stored: replaying those actions from the same seed reproduces the same emulator
states, which is how probes obtain the *same* frames under each perturbation.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import cache_identity, make_env, to_host
from jepa_rl.models.agent import agent_from_checkpoint
from jepa_rl.pretrain.settings import FramesSettings
from jepa_rl.runtime.artifact_cache import cached_artifact, file_sha256
from jepa_rl.runtime.checkpoint import CheckpointError
from jepa_rl.runtime.progress import Progress

log = logging.getLogger(__name__)

ARRAYS = ("frames", "ram", "episode", "step", "actions")
Policy = Callable[[np.ndarray], np.ndarray]


def collect(
    envs,
    num_frames: int,
    keep_every: int,
    seed: int,
    policy: Policy | None = None,
    policy_fraction: float = 0.0,
    actions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Play ``envs`` (an ``AtariPipeline`` with ``record_ram=True``) and keep every ``keep_every``-th observation.

    Returns ``frames`` ``[N, 4, 84, 84]`` uint8, ``ram`` ``[N, 128]`` uint8, ``episode`` and ``step``
    ``[N]`` int64, and ``actions`` ``[T, num_envs]`` (every action taken). ``actions`` replays a
    previous collection instead of choosing actions.
    """
    n = envs.num_envs
    steps = math.ceil(num_frames / n) * keep_every
    if actions is not None and actions.shape != (steps, n):
        raise ValueError(f"replayed actions have shape {actions.shape}, expected {(steps, n)}")
    rng = np.random.default_rng(seed)
    kept = steps // keep_every * n
    out = {
        "frames": np.empty((kept, *envs.observation_shape), dtype=np.uint8),
        "ram": np.empty((kept, 128), dtype=np.uint8),
        "episode": np.empty(kept, dtype=np.int64),
        "step": np.empty(kept, dtype=np.int64),
        "actions": np.empty((steps, n), dtype=np.uint8),
    }
    games = np.zeros(n, dtype=np.int64)  # games finished per env: episode id = env + n * games
    obs, _ = envs.reset()
    progress = Progress("collect frames", steps, "steps")
    for t in range(steps):
        progress.update()
        if actions is not None:
            a = actions[t]
        else:
            a = rng.integers(0, envs.num_actions, n)
            if policy is not None and policy_fraction > 0:
                a = np.where(rng.random(n) < policy_fraction, policy(obs), a)
        obs, _, terminated, truncated, info = envs.step(a)
        out["actions"][t] = a
        games += terminated | truncated  # the returned observation already belongs to the next game
        if (t + 1) % keep_every == 0:
            rows = slice((t + 1) // keep_every * n - n, (t + 1) // keep_every * n)
            out["frames"][rows], out["ram"][rows] = to_host(obs), info["ram"]
            out["episode"][rows], out["step"][rows] = np.arange(n) + n * games, t
    progress.close()
    for name in ("frames", "ram", "episode", "step"):
        out[name] = out[name][:num_frames]
    return out


def checkpoint_policy(checkpoint: str | Path, num_actions: int, device: torch.device) -> Policy:
    """The sampled-action policy of a PPO checkpoint written by a training run (for this game)."""
    agent = agent_from_checkpoint(checkpoint, device).eval()
    if agent.num_actions != num_actions:
        raise CheckpointError(f"{checkpoint} plays {agent.num_actions} actions, this game has {num_actions}")

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        return agent.act(torch.as_tensor(obs, device=device))[0].cpu().numpy()

    return act


def frames_spec(env_cfg: Mapping[str, Any], frames: FramesSettings, perturbation: VisualPerturbation) -> dict:
    """Everything that determines a frame set's content (its cache key)."""
    frames_cfg = dataclasses.asdict(frames)
    spec = {"env": cache_identity(env_cfg), **frames_cfg, "perturbation": perturbation.params()}
    if frames_cfg.get("policy_checkpoint") and frames_cfg.get("policy_fraction", 0) > 0:
        spec["policy_sha256"] = file_sha256(Path(frames_cfg["policy_checkpoint"]))
    else:  # without a policy its settings change nothing
        spec["policy_checkpoint"], spec["policy_fraction"] = None, 0.0
    return spec


def cached_frames(
    cache_root: Path,
    env_cfg: Mapping[str, Any],
    frames: FramesSettings,
    perturbation: VisualPerturbation | None = None,
    replay: Path | None = None,
    threads: int = 1,
) -> Path:
    """The cache directory of the frame set ``frames`` describes, collecting it if needed.

    ``replay`` (a cached frame set) replays that set's actions under ``perturbation``: the same
    emulator states, seen through another perturbation.
    """
    perturbation = perturbation or VisualPerturbation()
    spec = frames_spec(env_cfg, frames, perturbation)
    if replay is not None:
        spec["replay_of"] = Path(replay).name

    def build(tmp: Path) -> None:
        envs = make_env(env_cfg, frames.num_envs, frames.seed, perturbation, num_threads=threads, record_ram=True)
        policy = None
        if spec["policy_fraction"] > 0:
            policy = checkpoint_policy(frames.policy_checkpoint, envs.num_actions, torch.device("cpu"))
        actions = np.load(Path(replay) / "actions.npy") if replay is not None else None
        try:
            data = collect(
                envs, frames.num_frames, frames.keep_every, frames.seed, policy, spec["policy_fraction"], actions
            )
        finally:
            envs.close()
        for name, array in data.items():
            np.save(tmp / f"{name}.npy", array)
        log.info("collected %d frames from %d games", len(data["frames"]), len(np.unique(data["episode"])))

    return cached_artifact(cache_root, "frames", spec, build)


def later_rows(episode: np.ndarray, step: np.ndarray, horizon: int) -> np.ndarray:
    """For each kept frame, the row of the frame ``horizon`` kept frames later in the same game; -1 where
    the game ends first (``horizon=0``: the row itself)."""
    order = np.lexsort((step, episode))  # by game, then by time within it
    later = np.full(len(order), -1, dtype=np.int64)
    if horizon < len(order):
        now, then = order[: len(order) - horizon], order[horizon:]
        same_game = episode[then] == episode[now]
        later[now[same_game]] = then[same_game]
    return later


def load_frames(directory: Path) -> dict[str, np.ndarray]:
    """A cached frame set's arrays; ``frames`` is memory-mapped (100k stacks are 2.8 GB)."""
    directory = Path(directory)
    return {name: np.load(directory / f"{name}.npy", mmap_mode="r" if name == "frames" else None) for name in ARRAYS}
