"""Evaluation: full games with raw scores under each perturbation of a suite."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from jepa_rl.agent import Agent
from jepa_rl.envs import AtariPipeline
from jepa_rl.perturbations import VisualPerturbation


def episode_quotas(episodes: int, num_envs: int) -> np.ndarray:
    """Games each environment plays. Fixed in advance, so short games are not over-sampled."""
    quotas = np.full(num_envs, episodes // num_envs)
    quotas[: episodes % num_envs] += 1
    return quotas


def play(agent: Agent, envs: AtariPipeline, episodes: int, device: torch.device, greedy: bool) -> list[float]:
    """Play ``episodes`` full games on ``envs``; returns their raw scores in completion order."""
    quotas = episode_quotas(episodes, envs.num_envs)
    played = np.zeros_like(quotas)
    scores: list[float] = []
    obs, _ = envs.reset()
    with agent.acting(device.type):
        while (played < quotas).any():
            action, _, _ = agent.act(torch.from_numpy(obs).to(device), greedy=greedy)
            obs, _, terminated, truncated, info = envs.step(action.cpu().numpy())
            for i in np.flatnonzero(terminated | truncated):
                if played[i] < quotas[i]:
                    played[i] += 1
                    scores.append(float(info["episode_return"][i]))
    return scores


def evaluate(
    agent: Agent,
    make_env: Callable[[int, VisualPerturbation], AtariPipeline],
    suite: dict[str, VisualPerturbation],
    episodes: int,
    num_envs: int,
    device: torch.device,
    greedy: bool = False,
    on_result: Callable[[str, dict], None] | None = None,
) -> dict[str, dict]:
    """Score ``agent`` under every perturbation of ``suite``: ``{name: {mean, std, returns}}``.

    Every perturbation replays the same emulator seeds, and each environment's games get their
    colour jitter in the same order for every agent (paired comparison).
    """
    agent.eval()
    results = {}
    for name, perturbation in suite.items():
        envs = make_env(min(num_envs, episodes), perturbation)
        try:
            scores = play(agent, envs, episodes, device, greedy)
        finally:
            envs.close()
        results[name] = {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "returns": scores}
        if on_result:
            on_result(name, results[name])
    return results


def robustness_ratio(results: dict[str, dict], clean: str = "clean") -> float | None:
    """Mean over non-clean perturbations of (perturbed mean / clean mean).

    None when undefined: no clean or no other perturbation, or a clean mean <= 0. A ratio of raw
    scores only means "the share of the clean score kept" when 0 is the floor, and in Pong (-21 to
    21) a worse agent would look more robust (clean -20, perturbed -21: 1.05). The sweep report
    compares conditions on random-normalised scores as well.
    """
    if clean not in results or results[clean]["mean"] <= 0:
        return None
    others = [r["mean"] / results[clean]["mean"] for name, r in results.items() if name != clean]
    return float(np.mean(others)) if others else None
