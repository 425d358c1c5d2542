"""Evaluation: full games with raw scores under each perturbation of a suite, and retention above random play."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import AtariPipeline
from jepa_rl.models.agent import Agent
from jepa_rl.runtime.progress import Progress

log = logging.getLogger(__name__)

Policy = Callable[[np.ndarray], np.ndarray]  # observations [N, 4, 84, 84] -> actions [N]


def episode_quotas(episodes: int, num_envs: int) -> np.ndarray:
    """Games each environment plays. Fixed in advance, so short games are not over-sampled."""
    quotas = np.full(num_envs, episodes // num_envs)
    quotas[: episodes % num_envs] += 1
    return quotas


def agent_policy(agent: Agent, device: torch.device, greedy: bool) -> Policy:
    """The agent's actions on a batch of observations (call it inside ``agent.acting``)."""

    def act(obs: np.ndarray) -> np.ndarray:
        return agent.act(torch.as_tensor(obs, device=device), greedy=greedy)[0].cpu().numpy()

    return act


def play(act: Policy, envs: AtariPipeline, episodes: int, label: str = "") -> dict:
    """Play ``episodes`` full games on ``envs`` with ``act``: ``{mean, std, returns, capped}``.

    ``returns`` are raw scores in completion order; ``capped`` counts the games that ended at the
    emulator's frame cap rather than by the game's own end (an agent that stops playing reaches it).
    """
    quotas = episode_quotas(episodes, envs.num_envs)
    played = np.zeros_like(quotas)
    scores: list[float] = []
    capped = steps = 0
    obs, _ = envs.reset()
    with Progress(f"eval {label}".strip(), episodes, "games") as progress:
        while (played < quotas).any():
            obs, _, terminated, truncated, info = envs.step(act(obs))
            steps += 1
            finished = 0
            for i in np.flatnonzero(terminated | truncated):
                if played[i] < quotas[i]:
                    played[i] += 1
                    finished += 1
                    scores.append(float(info["episode_return"][i]))
                    capped += int(truncated[i] and not terminated[i])
            progress.update(finished, note=f"{steps} steps, {capped} at the frame cap")
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "returns": scores, "capped": capped}


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
    """Score ``agent`` under every perturbation of ``suite``: ``{name: {mean, std, returns, capped}}``.

    Every perturbation replays the same emulator seeds, and each environment's games get their
    colour jitter in the same order for every agent (paired comparison).
    """
    agent.eval()
    results = {}
    for name, perturbation in suite.items():
        envs = make_env(min(num_envs, episodes), perturbation)
        try:
            with agent.acting(device.type):
                results[name] = play(agent_policy(agent, device, greedy), envs, episodes, name)
        finally:
            envs.close()
        if on_result:
            on_result(name, results[name])
    return results


def random_policy(num_actions: int, seed: int) -> Policy:
    """Uniformly random actions, from a generator of its own."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(0, num_actions, len(obs))


def robustness_ratio(results: dict[str, dict], clean: str = "clean") -> float | None:
    """The seed study's measure: mean over non-clean perturbations of (perturbed mean / clean mean).

    None when undefined: no clean or no other perturbation, or a clean mean <= 0. It tends to 1 as
    an agent tends to random play (a random policy ignores the pixels), and in Pong (-21 to 21) a
    worse agent looks more robust (clean -20, perturbed -21: 1.05): ``retention`` has neither flaw.
    """
    if clean not in results or results[clean]["mean"] <= 0:
        return None
    others = [r["mean"] / results[clean]["mean"] for name, r in results.items() if name != clean]
    return float(np.mean(others)) if others else None


def standard_error(r: dict) -> float:
    return r["std"] / math.sqrt(len(r["returns"])) if r["returns"] else math.inf


def retention(
    results: dict[str, dict], random: dict, clean: str = "clean", random_for: dict[str, dict] | None = None
) -> tuple[dict[str, float] | None, str]:
    """``(perturbed - random) / (clean - random)`` per non-clean perturbation, and a sentence on it.

    ``random_for`` gives the random policy's score under perturbations that change the game (a
    mode or difficulty): there, the perturbed score is measured above that one.

    The share of its skill above random play that an agent keeps: 1 when a perturbation costs it
    nothing, 0 when it plays as a random policy would, whatever the game's score range. Undefined
    (None, and the sentence says why) when the clean score is not clearly above random: less than
    two standard errors (of the difference of the two means) above it.
    """
    if clean not in results:
        return None, f"no retention: eval.suite has no {clean}"
    c, r = results[clean], random
    margin = 2 * math.sqrt(standard_error(c) ** 2 + standard_error(r) ** 2)
    if not c["mean"] - r["mean"] > margin:
        return None, (
            f"no retention: clean {c['mean']:.2f} is not clearly above random play {r['mean']:.2f} "
            f"(by more than two standard errors, {margin:.2f})"
        )
    skill = c["mean"] - r["mean"]
    floor = {name: (random_for or {}).get(name, r)["mean"] for name in results}
    kept = {name: (res["mean"] - floor[name]) / skill for name, res in results.items() if name != clean}
    return kept, f"retention relative to random play ({r['mean']:.2f}) and clean ({c['mean']:.2f})"
