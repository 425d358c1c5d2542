"""What one PPO rollout holds: its buffers, generalised advantage estimation, its flattened batch, and the
log of the games that finished during it (recent scores, per-iteration metrics, ``episodes.csv``)."""

from __future__ import annotations

import csv
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jepa_rl.runtime.resumption import EPISODES_HEADER


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout.

    Args:
        rewards, values, dones: ``[T, N]``; ``dones[t]`` is 1 when the transition at step ``t``
            ended the episode (the value of the next observation is then not bootstrapped).
        last_value: ``[N]`` value of the observation after the last step.

    Returns:
        ``(advantages, returns)``, both ``[T, N]``, with ``returns = advantages + values``.
    """
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rewards.shape[0])):
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        last_gae = delta + gamma * gae_lambda * nonterminal * last_gae
        advantages[t] = last_gae
        next_value = values[t]
    return advantages, advantages + values


@dataclass
class Rollout:
    """One rollout's ``[T, N, ...]`` buffers. ``obs`` holds uint8 frame stacks, or encoder features
    when the encoder is frozen (computed once per step, reused by every update epoch)."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    values: torch.Tensor

    @classmethod
    def allocate(cls, T: int, N: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, device) -> Rollout:
        floats = (torch.zeros((T, N), device=device) for _ in range(4))
        obs = torch.zeros((T, N, *obs_shape), dtype=obs_dtype, device=device)
        return cls(obs, torch.zeros((T, N), dtype=torch.long, device=device), *floats)


class EpisodeLog:
    """Finished games: the last 100 raw scores, this iteration's games, and rows of ``episodes.csv``."""

    def __init__(self, path: Path | None) -> None:
        self.recent: deque[float] = deque(maxlen=100)
        if path and path.exists():  # a resumed run: its recent games were played before the checkpoint
            with open(path, newline="") as f:
                self.recent.extend(float(row[2]) for row in csv.reader(f) if row and row[0] != "step")
        self.finished: list[tuple[float, int]] = []  # (score, length) of the games that ended this iteration
        self.file = open(path, "a", newline="") if path else None  # noqa: SIM115  (closed by close())
        self.writer = csv.writer(self.file) if self.file else None
        if self.file and self.file.tell() == 0:
            self.file.write(EPISODES_HEADER + "\n")

    def __call__(self, step: int, env: int, score: float, length: int) -> None:
        self.finished.append((score, length))
        self.recent.append(score)
        if self.writer:
            self.writer.writerow([step, env, score, length])

    def recent_mean(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def end_iteration(self) -> dict[str, float]:
        """This iteration's ``charts/episodic_*`` metrics (none if no game ended); rows reach the disk."""
        games, self.finished = self.finished, []
        if self.file:
            self.file.flush()
        if not games:
            return {}
        return {
            "charts/episodic_return": float(np.mean([s for s, _ in games])),
            "charts/episodic_length": float(np.mean([n for _, n in games])),
            "charts/episodes": len(games),
        }

    def close(self) -> None:
        if self.file:
            self.file.close()


@dataclass
class Batch:
    """A rollout flattened to ``[T*N, ...]`` with its advantages and returns: what the update samples from."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    @classmethod
    def flatten(cls, buf: Rollout, advantages: torch.Tensor, returns: torch.Tensor) -> Batch:
        tensors = (buf.obs, buf.actions, buf.logprobs, buf.values, advantages, returns)
        return cls(*(x.flatten(0, 1) for x in tensors))
