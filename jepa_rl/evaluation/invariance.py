"""Policy invariance: how much a perturbation changes what the agent would do in the very same game states.

The evaluation environments play under the clean pipeline, driven by the agent's clean actions;
each emulator frame is also seen through every other perturbation of the suite (``AtariPipeline``'s
``views``), so each state is seen clean and perturbed at once. Per perturbation it reports the mean
total-variation distance between the clean and the perturbed action distributions, and the share
of states whose greedy action is unchanged. A policy that ignores the pixels scores a perfect 0 and 1
here too, but unlike a ratio of scores, a skilled agent is not penalised for having skill to lose.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import AtariPipeline
from jepa_rl.models.agent import Agent, choose
from jepa_rl.runtime.progress import Progress


def compare(clean: torch.Tensor, perturbed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per state: the TV distance between two action distributions (log-probs ``[B, A]``), greedy agreement."""
    tv = 0.5 * (clean.exp() - perturbed.exp()).abs().sum(-1)
    return tv, (clean.argmax(-1) == perturbed.argmax(-1)).float()


def policy_invariance(
    agent: Agent,
    make_env: Callable[[int, VisualPerturbation, dict[str, VisualPerturbation]], AtariPipeline],
    clean: VisualPerturbation,
    others: dict[str, VisualPerturbation],
    states: int,
    num_envs: int,
    device: torch.device,
    greedy: bool,
) -> dict[str, dict[str, float]]:
    """``{name: {tv, greedy_agreement, states}}`` over ``states`` states of clean-driven evaluation games.

    ``make_env(num_envs, perturbation, views)`` builds the evaluation pipeline (the evaluation's seeds).
    """
    envs = make_env(num_envs, clean, others)
    names = list(others)
    tv = {name: [] for name in names}
    agree = {name: [] for name in names}
    agent.eval()
    try:
        obs, info = envs.reset()
        with agent.acting(device.type), Progress("invariance", states, "states") as progress:
            for _ in range(math.ceil(states / envs.num_envs)):
                progress.update(min(envs.num_envs, states - progress.done))
                batch = [torch.as_tensor(o, device=device) for o in (obs, *(info["views"][name] for name in names))]
                logp = agent.log_probs(torch.cat(batch)).view(1 + len(names), envs.num_envs, -1)
                for i, name in enumerate(names, 1):
                    d, same = compare(logp[0], logp[i])
                    tv[name].append(d.cpu())
                    agree[name].append(same.cpu())
                obs, _, _, _, info = envs.step(choose(logp[0], greedy).cpu().numpy())
    finally:
        envs.close()
    out = {}
    for name in names:
        distances, agreements = torch.cat(tv[name])[:states], torch.cat(agree[name])[:states]
        out[name] = {
            "tv": float(distances.mean()),
            "greedy_agreement": float(agreements.mean()),
            "states": len(distances),
        }
    return out
