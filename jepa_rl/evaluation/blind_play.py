"""The blind floor: the score of a policy that does not look at the screen but keeps the agent's preferences.

A uniformly random policy is a low floor. In Breakout, i.i.d. actions drawn with an agent's own action
frequencies (the paddle parked against a wall catches some balls) score about three times as much, so an
agent can beat random play on action preference alone, and then keep all of that "skill" under any
perturbation of the pixels. Retention is therefore measured above the higher of the two floors.

Two kinds (``eval.blind_floor``), each an i.i.d. draw from one fixed action distribution:

- ``action_frequencies``: how often the agent chose each action in its own clean games (the default: it is
  the agent's behaviour with the pixels' information removed, whatever the agent sees);
- ``fixed_frame``: the agent's action distribution on one fixed observation, the first of its clean games
  (the agent fed a frozen screen; with ``eval.greedy`` its single argmax action).

The blind policy plays the evaluation's own games (the same emulator seeds), with a generator of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from jepa_rl.envs.pipeline import AtariPipeline
from jepa_rl.evaluation.games import Policy, play
from jepa_rl.evaluation.settings import BLIND_FLOORS
from jepa_rl.models.agent import Agent


def fixed_distribution_policy(probs: np.ndarray, seed: tuple[int, ...]) -> Policy:
    """I.i.d. actions drawn from ``probs``, from a generator of its own: a policy that never looks."""
    rng, probs = np.random.default_rng(list(seed)), np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum()  # in float64: a float32 softmax's sum misses 1 by more than numpy allows
    return lambda obs: rng.choice(len(probs), size=len(obs), p=probs)


def frozen_screen_distribution(agent: Agent, envs: AtariPipeline, device: torch.device, greedy: bool) -> np.ndarray:
    """The agent's action distribution on the first observation of ``envs``' first game (one-hot if greedy)."""
    obs, _ = envs.reset()
    with agent.acting(device.type), torch.no_grad():
        probs = agent.log_probs(torch.as_tensor(obs[:1], device=device)).exp()[0].double().cpu().numpy()
    if greedy:
        probs = np.eye(len(probs))[int(probs.argmax())]
    return probs / probs.sum()


def blind_distribution(
    kind: str,
    clean: dict,
    agent: Agent,
    make_clean_env: Callable[[int], AtariPipeline],
    device: torch.device,
    greedy: bool,
) -> np.ndarray:
    """The action distribution the ``kind`` of blind floor draws from, given the agent's ``clean`` games
    (``make_clean_env(n)``: ``n`` of the evaluation's clean environments)."""
    if kind == "action_frequencies":
        counts = np.asarray(clean["action_counts"], dtype=float)
        return counts / counts.sum()
    if kind == "fixed_frame":
        envs = make_clean_env(1)
        try:
            return frozen_screen_distribution(agent, envs, device, greedy)
        finally:
            envs.close()
    raise ValueError(f"eval.blind_floor={kind} is not a blind floor; choose one of {', '.join(BLIND_FLOORS)}")


def blind_scores(
    probs: np.ndarray, envs: AtariPipeline, episodes: int, seed: tuple[int, ...], label: str = "blind policy"
) -> dict:
    """``play``'s scores of the blind policy drawing from ``probs``, and ``action_distribution``: ``probs``."""
    scores = play(fixed_distribution_policy(probs, seed), envs, episodes, label)
    return scores | {"action_distribution": [round(float(p), 6) for p in probs]}
