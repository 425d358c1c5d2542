"""Evaluation: full games with raw scores under each perturbation of a suite, and retention above random play."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import AtariPipeline
from jepa_rl.evaluation.invariance import StateSampler
from jepa_rl.models.agent import Agent
from jepa_rl.runtime.progress import Progress

log = logging.getLogger(__name__)

Policy = Callable[[np.ndarray], np.ndarray]  # observations [N, 4, 84, 84] -> actions [N]
Observer = Callable[[np.ndarray, dict, np.ndarray, np.ndarray], None]  # obs, info, live, games: see play


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


def play(act: Policy, envs: AtariPipeline, episodes: int, label: str = "", observe: Observer | None = None) -> dict:
    """Play ``episodes`` full games on ``envs`` with ``act``: ``{mean, std, returns, capped, action_counts}``.

    ``returns`` are raw scores in completion order; ``capped`` counts the games that ended at the
    emulator's frame cap rather than by the game's own end (an agent that stops playing reaches it);
    ``action_counts`` how often each action was chosen in the counted games (a blind floor plays them).
    ``observe(obs, info, live, games)`` sees every step's observations first: ``live`` marks the
    environments whose current game counts, ``games`` the index of that game in each environment.
    """
    return play_side_by_side(act, envs, episodes, [label], label, observe)[label]


def rows(obs: np.ndarray | torch.Tensor, index: np.ndarray) -> np.ndarray | torch.Tensor:
    """The observations of the environments ``index`` (a host array, or a tensor on a device)."""
    return obs[index] if isinstance(obs, np.ndarray) else obs[torch.as_tensor(index, device=obs.device)]


def play_side_by_side(
    act: Policy, envs: AtariPipeline, episodes: int, names: list[str], label: str = "", observe: Observer | None = None
) -> dict[str, dict]:
    """``play`` for each of ``envs``' groups at once (``AtariPipeline``'s ``side_by_side``: group ``g``, the
    perturbation ``names[g]``, replays group 0's games): ``{name: play's scores}``, all in one loop.

    Each step, ``act`` reads only the environments whose current game counts (one batch over every group):
    the others, past their share of the games, get action 0 and are not scored. ``observe`` sees group 0.
    """
    size, groups = envs.group_size, len(names)
    quotas = np.tile(episode_quotas(episodes, size), groups)
    played = np.zeros_like(quotas)
    counts = np.zeros((groups, envs.num_actions), dtype=np.int64)
    scores: list[list[float]] = [[] for _ in names]
    capped, steps = np.zeros(groups, dtype=np.int64), 0
    obs, info = envs.reset()
    with Progress(f"eval {label}".strip(), episodes * groups, "games") as progress:
        while (live := played < quotas).any():
            if observe:
                observe(rows(obs, np.arange(size)), info, live[:size], played[:size])
            index = np.flatnonzero(live)
            actions = np.zeros(envs.num_envs, dtype=np.int64)
            actions[index] = np.asarray(act(rows(obs, index)))
            np.add.at(counts, (index // size, actions[index]), 1)
            obs, _, terminated, truncated, info = envs.step(actions, watched=live)
            steps += 1
            ended = np.flatnonzero((terminated | truncated) & live)
            for i in ended:
                played[i] += 1
                scores[i // size].append(float(info["episode_return"][i]))
                capped[i // size] += int(truncated[i] and not terminated[i])
            progress.update(len(ended), note=f"{steps} steps, {capped.sum()} at the frame cap")
    return {
        name: {
            "mean": float(np.mean(scores[g])),
            "std": float(np.std(scores[g])),
            "returns": scores[g],
            "capped": int(capped[g]),
            "action_counts": counts[g].tolist(),
        }
        for g, name in enumerate(names)
    }


def evaluate(
    agent: Agent,
    make_env: Callable[..., AtariPipeline],
    suite: dict[str, VisualPerturbation],
    episodes: int,
    num_envs: int,
    device: torch.device,
    greedy: bool = False,
    on_result: Callable[[str, dict], None] | None = None,
    sampler: StateSampler | None = None,
) -> dict[str, dict]:
    """Score ``agent`` under every perturbation of ``suite``: ``{name: {mean, std, returns, capped, action_counts}}``.

    Every perturbation replays the same emulator seeds, and each environment's games get their
    colour jitter in the same order for every agent (paired comparison). The perturbations of the pixels
    play side by side in one pipeline, one forward pass per step over all their live games; each shift of
    the game itself plays on its own. ``make_env(n, perturbation, views=None, side_by_side=())`` builds the
    games; with a ``sampler``, the clean games carry its views and offer it their states (policy invariance).
    """
    agent.eval()
    pixels = sorted((name for name, p in suite.items() if not p.game_shift.active), key=lambda n: n != "clean")
    batches = [pixels] * bool(pixels) + [[name] for name in suite if name not in pixels]
    results = {}
    for names in batches:
        first, *others = [suite[name] for name in names]
        views = {"views": sampler.views} if sampler and names[0] == "clean" else {}
        envs = make_env(min(num_envs, episodes), first, side_by_side=others, **views)
        try:
            with agent.acting(device.type):
                observe = sampler.observe if views else None
                policy = agent_policy(agent, device, greedy)
                results |= play_side_by_side(policy, envs, episodes, names, " ".join(names), observe)
        finally:
            envs.close()
    results = {name: results[name] for name in suite}
    for name, result in results.items():
        if on_result:
            on_result(name, result)
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


@dataclass(frozen=True)
class Floors:
    """The scores of policies that do not use the pixels, under the evaluation's protocol: a uniformly
    random policy, and a blind one (``blind_play``; None where not measured), in the default game and,
    by perturbation name, in the other modes or difficulties a perturbation switches to."""

    random: dict
    blind: dict | None = None
    random_for: dict[str, dict] = field(default_factory=dict)
    blind_for: dict[str, dict] = field(default_factory=dict)

    def under(self, name: str) -> tuple[str, dict]:
        """``(kind, scores)`` of the floor under perturbation ``name``: the higher of random and blind play."""
        random = self.random_for.get(name, self.random)
        blind = self.blind_for.get(name, self.blind)
        return ("blind", blind) if blind is not None and blind["mean"] > random["mean"] else ("random", random)


def retention(
    results: dict[str, dict], floors: Floors, min_skill: float = 0.0, clean: str = "clean"
) -> tuple[dict[str, float] | None, str]:
    """``(perturbed - floor) / (clean - floor)`` per non-clean perturbation, and a sentence on it.

    The floor is the higher of random and blind play (``Floors.under``), in the game each perturbation
    plays. Retention is the share of its skill above play that does not look that an agent keeps: 1 when
    a perturbation costs it nothing, 0 when it plays as well as a policy that ignores the screen. Undefined
    (None, and the sentence says why) unless clean play clears the floor clearly: by more than two standard
    errors of the difference of the two means, and by more than ``min_skill`` points (a share of the
    game's random-to-human range, which keeps a skill of a point or two from dividing noise).
    """
    if clean not in results:
        return None, f"no retention: eval.suite has no {clean}"
    c, (kind, f) = results[clean], floors.under(clean)
    error_margin = 2 * math.sqrt(standard_error(c) ** 2 + standard_error(f) ** 2)
    skill = c["mean"] - f["mean"]
    if not skill > max(error_margin, min_skill):
        return None, (
            f"no retention: clean {c['mean']:.2f} is not clearly above {kind} play {f['mean']:.2f} (by more than "
            f"two standard errors, {error_margin:.2f}, and the minimum skill, {min_skill:.2f})"
        )
    kept = {
        name: (res["mean"] - floors.under(name)[1]["mean"]) / skill for name, res in results.items() if name != clean
    }
    other = "random" if kind == "blind" else "blind"
    other_score = floors.random if kind == "blind" else floors.blind
    beside = f"; {other} play {other_score['mean']:.2f}" if other_score is not None else ""
    return kept, f"retention relative to {kind} play ({f['mean']:.2f}{beside}) and clean ({c['mean']:.2f})"
