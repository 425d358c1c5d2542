"""What a train job measures of its agent: full games under the suite, random play under the same
protocol, retention above random, policy invariance on identical states, and snapshots during training.

Every measure here has a floor a near-random agent cannot exploit, except the seed study's robustness
ratio, which is kept (labelled as the study's) for comparison with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import AtariPipeline, make_eval_env
from jepa_rl.envs.reference_scores import minimum_skill
from jepa_rl.evaluation.blind_play import blind_distribution, blind_scores
from jepa_rl.evaluation.games import Floors, evaluate, retention, robustness_ratio
from jepa_rl.evaluation.invariance import StateSampler
from jepa_rl.evaluation.random_play import random_scores
from jepa_rl.evaluation.settings import EvalSettings
from jepa_rl.models.agent import Agent
from jepa_rl.runtime.seeding import BLIND_ACTIONS, INVARIANCE_STATES
from jepa_rl.runtime.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSetup:
    """How a job evaluates: the game, the ``eval`` settings, the named perturbations, seeds and threads."""

    env: dict[str, Any]
    ev: EvalSettings
    perturbations: dict[str, VisualPerturbation]  # every perturbation a suite may name
    seed: tuple[int, ...]  # the evaluation games' emulator seeds derive from it
    device: torch.device
    threads: int
    cache_dir: Path  # where the random-policy baseline is cached

    def make_env(
        self,
        num_envs: int,
        perturbation: VisualPerturbation,
        views: dict[str, VisualPerturbation] | None = None,
        side_by_side: list[VisualPerturbation] | tuple = (),
    ) -> AtariPipeline:
        """``num_envs`` of the evaluation's games under ``perturbation`` (and again under each of ``side_by_side``)."""
        env, ev, threads = self.env, self.ev, self.threads
        return make_eval_env(env, num_envs, perturbation, self.seed, ev.sticky_actions, threads, views, side_by_side)

    def suite(self, names: list[str]) -> dict[str, VisualPerturbation]:
        return {name: self.perturbations[name].copy() for name in names}


def play_suite(
    agent: Agent,
    setup: EvalSetup,
    names: list[str],
    episodes: int,
    tracker: Tracker,
    step: int,
    prefix: str,
    sampler: StateSampler | None = None,
):
    """Full games of ``agent`` under each perturbation ``names``, each logged (and to W&B) as it finishes;
    the clean games offer their states to ``sampler`` (policy invariance)."""

    def report(name: str, r: dict) -> None:
        log.info(
            "%s %-13s mean %8.2f  std %7.2f  (%d games, %d at the frame cap)",
            prefix, name, r["mean"], r["std"], len(r["returns"]), r["capped"],
        )  # fmt: skip
        tracker.log({f"{prefix}/{name}/mean": r["mean"], f"{prefix}/{name}/std": r["std"]}, step=step, again=True)

    ev = setup.ev
    suite, device = setup.suite(names), setup.device
    return evaluate(agent, setup.make_env, suite, episodes, ev.num_envs, device, ev.greedy, report, sampler)


# The caveats results.json carries beside the measures that have one.
RATIO_NOTE = (
    "the seed study's hard/clean ratio of raw scores: near random play it measures nothing (a random agent "
    "keeps its score under any perturbation); read retention, which is null where clean play is not above random"
)
INVARIANCE_NOTE = (
    "tv: total variation between the policy's clean and perturbed action distributions on the same states, which "
    "a policy that ignores the frame wins with 0; tv_ratio divides it by game_tv, the TV between two clean states "
    "of the same game, and is null for a policy that hardly reads its frames (game_tv below 0.005)"
)


def pixel_perturbations(names: list[str], perturbations: dict[str, VisualPerturbation]) -> list[str]:
    """The perturbations of ``names`` that change only the pixels, not clean and not a shift of the game
    itself: those policy invariance compares with clean on identical states."""
    return [n for n in names if n != "clean" and not perturbations[n].game_shift.active]


def state_sampler(agent: Agent, setup: EvalSetup) -> StateSampler | None:
    """The sample of clean-game states policy invariance reads, under the suite's perturbations of the pixels
    only (a game shift plays another game: it has no identical states); None when it is off."""
    ev = setup.ev
    pixel_only = pixel_perturbations(ev.suite, setup.perturbations)
    if not (ev.invariance_states and pixel_only):
        return None
    seed = (*setup.seed, INVARIANCE_STATES)
    return StateSampler(agent, setup.suite(pixel_only), ev.invariance_states, seed, setup.device)


def game_scores(
    agent: Agent, setup: EvalSetup, tracker: Tracker, step: int, sampler: StateSampler | None
) -> tuple[dict, Floors | None, tuple]:
    """``(scores, floors, retention)`` of the suite's full games: the agent's, the floors (random and blind
    play under the same protocol, per game variant too) and ``(kept, note)``. The clean games offer their
    states to ``sampler``. With ``eval.episodes=0``, no scores: one clean game per environment, for the sampler."""
    ev = setup.ev
    if ev.episodes == 0:
        log.info("eval.episodes=0: no scores, policy invariance on %d states of clean games", ev.invariance_states)
        clean = setup.suite(["clean"])
        evaluate(agent, setup.make_env, clean, ev.num_envs, ev.num_envs, setup.device, ev.greedy, sampler=sampler)
        return {}, None, (None, "no retention: no games were played (eval.episodes=0)")
    scores = play_suite(agent, setup, ev.suite, ev.episodes, tracker, step, "eval", sampler)
    floors = measure_floors(agent, setup, scores, ev.suite, ev.episodes)
    return scores, floors, retention(scores, floors, minimum_skill(setup.env["env_id"], ev.min_skill_share))


def measure_floors(agent: Agent, setup: EvalSetup, scores: dict, names: list[str], episodes: int) -> Floors:
    """Random play (cached per protocol) and, given clean games in ``scores``, the agent's blind play,
    in the default game and in each other mode or difficulty ``names`` switch to."""
    ev = setup.ev
    protocol = (setup.cache_dir, setup.env, episodes, ev.num_envs, ev.sticky_actions, setup.threads)
    variants = [n for n in names if setup.perturbations[n].game_shift.changes_the_game]  # their own floors
    random = random_scores(*protocol)
    random_for = {n: random_scores(*protocol, shift=setup.perturbations[n].game_shift) for n in variants}
    if "clean" not in scores:
        return Floors(random, None, random_for)
    blind = blind_play(agent, setup, scores["clean"], ["clean", *variants], episodes)
    log.info("blind policy (%s) mean %.2f over %d games", ev.blind_floor, blind["clean"]["mean"], episodes)
    return Floors(random, blind.pop("clean"), random_for, blind)


def blind_play(agent: Agent, setup: EvalSetup, clean: dict, names: list[str], episodes: int) -> dict[str, dict]:
    """Per perturbation of ``names``: the scores of the agent's blind policy (``eval.blind_floor``, from its
    ``clean`` games) over ``episodes`` of the evaluation's games."""
    ev = setup.ev
    probs = blind_distribution(
        ev.blind_floor, clean, agent, lambda n: setup.make_env(n, setup.perturbations["clean"].copy()),
        setup.device, ev.greedy,
    )  # fmt: skip
    out = {}
    for name in names:
        envs = setup.make_env(min(ev.num_envs, episodes), setup.perturbations[name].copy())
        try:
            out[name] = blind_scores(probs, envs, episodes, (*setup.seed, BLIND_ACTIONS), f"blind policy {name}")
        finally:
            envs.close()
    return out


def final_evaluation(agent: Agent, setup: EvalSetup, tracker: Tracker, step: int) -> dict[str, Any]:
    """The evaluation ``results.json`` reports: ``eval``, ``random_policy``, ``retention`` (with
    ``retention_note``), ``policy_invariance`` and the study's ``robustness_ratio``."""
    ev = setup.ev
    sampler = state_sampler(agent, setup)
    scores, floors, (kept, note) = game_scores(agent, setup, tracker, step, sampler)
    invariance = sampler.measures() if sampler else None
    metrics = {f"eval/{n}/retention": v for n, v in (kept or {}).items()}
    for name, inv in (invariance or {}).items():
        metrics.update({f"eval/{name}/policy_{k}": inv[k] for k in ("tv", "game_tv", "tv_ratio")})
        metrics[f"eval/{name}/greedy_agreement"] = inv["greedy_agreement"]
    if floors is not None:
        metrics["eval/random_policy/mean"] = floors.random["mean"]
        if floors.blind is not None:
            metrics["eval/blind_policy/mean"] = floors.blind["mean"]
    tracker.log(metrics, step=step, again=True)
    tracker.table(
        "eval/table",
        ["perturbation", "mean", "std", "episodes", "capped", "retention", "policy_tv", "greedy_agreement", "tv_ratio"],
        [
            [n, *((r["mean"], r["std"], len(r["returns"]), r["capped"]) if r else (None,) * 4), (kept or {}).get(n)]
            + [(invariance or {}).get(n, {}).get(k) for k in ("tv", "greedy_agreement", "tv_ratio")]
            for n in ev.suite
            for r in [scores.get(n)]
        ],
        step=step,
    )
    return {
        "eval": scores,
        "random_policy": floors and floors.random,
        **({"random_policy_by_variant": floors.random_for} if floors and floors.random_for else {}),
        "blind_policy": floors and floors.blind and {"kind": setup.ev.blind_floor, **floors.blind},
        **({"blind_policy_by_variant": floors.blind_for} if floors and floors.blind_for else {}),
        "retention": kept,
        "retention_note": note,
        "policy_invariance": invariance,
        "policy_invariance_note": INVARIANCE_NOTE,
        "robustness_ratio": robustness_ratio(scores),
        "robustness_ratio_note": RATIO_NOTE,
    }


def snapshot(agent: Agent, setup: EvalSetup, tracker: Tracker, step: int) -> dict[str, Any]:
    """A cheap evaluation during training (``eval.snapshot_suite``, ``eval.snapshot_episodes`` games each).

    It draws its actions from a forked torch generator: training goes on exactly as it would without it.
    """
    training, device = agent.training, setup.device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        scores = play_suite(
            agent, setup, setup.ev.snapshot_suite, setup.ev.snapshot_episodes, tracker, step, "snapshot"
        )
        # Its floor: the snapshot's own blind play (its preferences change as it learns).
        blind = (
            blind_play(agent, setup, scores["clean"], ["clean"], setup.ev.snapshot_episodes)
            if "clean" in scores
            else {}
        )
    agent.train(training)
    return {"step": step, "eval": scores, "blind_policy": blind.get("clean")}


def with_snapshots(
    save: Callable, agent: Agent, evaluation: EvalSetup, tracker: Tracker, num_iterations: int, snapshots: list
) -> Callable:
    """``save`` after every iteration, preceded at 1/n, 2/n, ... of training by a snapshot evaluation
    (``eval.snapshots = n``) appended to ``snapshots``, which the checkpoint holds: a resumed job
    neither repeats nor skips one."""
    n = evaluation.ev.snapshots
    due = {round(k * num_iterations / n) for k in range(1, n + 1)} if n else set()

    def on_iteration_end(iteration: int, global_step: int, train_stats: dict) -> None:
        if iteration in due:
            snapshots.append(snapshot(agent, evaluation, tracker, global_step))
        save(iteration, global_step, train_stats)

    return on_iteration_end
