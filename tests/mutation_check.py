"""Mutation check: each listed change to the code that decides the study's conclusions must fail the fast tier.

    python tests/mutation_check.py                 # every mutation (docs/testing.md: how long it takes)
    python tests/mutation_check.py ppo retention   # those whose name contains one of the words
    python tests/mutation_check.py --list          # the mutations, without running anything

Each mutation replaces one exact piece of a module (found once, or the check stops) in a copy of the working
tree, then runs the tests named for it from the fast tier. A mutation they do not kill is run against the
whole fast tier before it is called a survivor. The baseline (no mutation) must pass first, or nothing is
measured. Not part of CI: ``docs/testing.md`` says when to run it, and how to run the broader automatic one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 900  # seconds per pytest run: a mutation that loops forever is reported, not waited on


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug: ``before`` (found exactly once in ``path``) becomes ``after``; ``tests`` should fail."""

    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


PPO, ROLL = "jepa_rl/rl/ppo.py", "jepa_rl/rl/rollout.py"
EVAL, INV, AGENT_EVAL = "jepa_rl/evaluation/games.py", "jepa_rl/evaluation/invariance.py", "jepa_rl/evaluation/suite.py"
TRAIN, ENVS, CORR = "jepa_rl/stages/train.py", "jepa_rl/envs/pipeline.py", "jepa_rl/envs/corruptions.py"
CKPT = "jepa_rl/rl/checkpointing.py"
REPORT, ROBUST = "jepa_rl/sweep/report.py", "jepa_rl/sweep/robustness.py"
RREPORT, MATCHED = "jepa_rl/sweep/robustness_report.py", "jepa_rl/sweep/matched_skill.py"
T_PPO, T_ROLL = "tests/rl/test_ppo.py", "tests/rl/test_rollout.py"
T_EVAL, T_INV, T_AGENT_EVAL = (
    "tests/evaluation/test_games.py",
    "tests/evaluation/test_invariance.py",
    "tests/evaluation/test_suite.py",
)
T_TRAIN, T_CORR = "tests/stages/test_train.py", "tests/envs/test_corruptions.py"
T_REPORT, T_ROBUST = "tests/sweep/test_report.py", "tests/sweep/test_robustness.py"

MUTATIONS = [
    # PPO's update
    Mutation(
        "ppo: clipped policy loss takes the min", PPO, "torch.max(-adv * ratio", "torch.min(-adv * ratio", (T_PPO,)
    ),
    Mutation(
        "ppo: entropy bonus sign flipped", PPO, "pg_loss - self.hp.ent_coef", "pg_loss + self.hp.ent_coef", (T_PPO,)
    ),
    Mutation("ppo: clipped value loss takes the min", PPO, "torch.max(v_err,", "torch.min(v_err,", (T_PPO,)),
    Mutation(
        "ppo: clip range's lower side at 1+eps",
        PPO,
        "ratio, 1 - self.hp.clip_coef",
        "ratio, 1 + self.hp.clip_coef",
        (T_PPO,),
    ),
    Mutation("ppo: value clipped around the returns", PPO, "v_clipped = values +", "v_clipped = returns +", (T_PPO,)),
    Mutation("ppo: advantages not centred", PPO, "adv = (adv - adv.mean()) /", "adv = (adv) /", (T_PPO,)),
    Mutation(
        "ppo: log-ratio inverted", PPO, "newlogprob - batch.logprobs[mb]", "batch.logprobs[mb] - newlogprob", (T_PPO,)
    ),
    Mutation("ppo: value loss without its 0.5", PPO, "v_loss = 0.5 * v_err.mean()", "v_loss = v_err.mean()", (T_PPO,)),
    Mutation("ppo: value loss without vf_coef", PPO, "+ v_loss * self.hp.vf_coef", "+ v_loss", (T_PPO,)),
    Mutation(
        "ppo: the shift augmentation ignored", PPO, 'augment == "shift" and not', 'augment == "crop" and not', (T_PPO,)
    ),
    Mutation("ppo: normalisation's epsilon subtracted", PPO, "(adv.std() + 1e-8)", "(adv.std() - 1e-8)", (T_PPO,)),
    Mutation(
        "ppo: the value clip open below",
        PPO,
        "-self.hp.clip_coef, self.hp.clip_coef)",
        "None, self.hp.clip_coef)",
        (T_PPO,),
    ),
    Mutation(
        "ppo: the value clip around new + old",
        PPO,
        "torch.clamp(newvalue - values",
        "torch.clamp(newvalue + values",
        (T_PPO,),
    ),
    Mutation("ppo: approx_kl's sign", PPO, "((ratio - 1) - logratio)", "((ratio - 1) + logratio)", (T_PPO,)),
    Mutation("ppo: clipfrac one-sided", PPO, "((ratio - 1.0).abs() >", "((ratio - 1.0) >", (T_PPO,)),
    Mutation("ppo: explained variance inverted", PPO, "float(1 - (batch.returns", "float(0 + (batch.returns", (T_PPO,)),
    Mutation(
        "ppo: an early stop reports nothing", PPO, "                break\n", "                return {}\n", (T_PPO,)
    ),
    Mutation(
        "ppo: target_kl stop inverted", PPO, "approx_kl > self.hp.target_kl", "approx_kl < self.hp.target_kl", (T_PPO,)
    ),
    Mutation(
        "ppo: no gradient clipping",
        PPO,
        "nn.utils.clip_grad_norm_(agent.parameters(), self.hp.max_grad_norm)",
        "nn.utils.clip_grad_norm_(agent.parameters(), 1e9)",
        (T_PPO,),
    ),
    Mutation(
        "ppo: learning rate annealed one iteration early",
        PPO,
        "frac = 1.0 - iteration / self.num_iterations",
        "frac = 1.0 - (iteration + 1) / self.num_iterations",
        (T_PPO,),
    ),
    Mutation(
        "ppo: policy gradient ascends the wrong way",
        PPO,
        "torch.max(-adv * ratio, -adv * clipped)",
        "torch.max(adv * ratio, adv * clipped)",
        (T_PPO,),
    ),
    Mutation(
        "ppo: value clipping switch inverted", PPO, "if self.hp.clip_vloss:", "if not self.hp.clip_vloss:", (T_PPO,)
    ),
    Mutation(
        "ppo: advantages normalised over the whole batch",
        PPO,
        "adv = (adv - adv.mean()) / (adv.std() + 1e-8)",
        "adv = (adv - batch.advantages.mean()) / (batch.advantages.std() + 1e-8)",
        (T_PPO,),
    ),
    Mutation(
        "ppo: no early stop",
        PPO,
        "if self.hp.target_kl is not None and approx_kl > self.hp.target_kl:",
        "if False:",
        (T_PPO,),
    ),
    Mutation(
        "ppo: entropy of the policy with the wrong sign",
        "jepa_rl/models/agent.py",
        "entropy = -(logp.exp() * logp).sum(-1)",
        "entropy = (logp.exp() * logp).sum(-1)",
        (T_PPO,),
    ),
    # GAE
    Mutation("gae: terminal flag inverted", ROLL, "nonterminal = 1.0 - dones[t]", "nonterminal = dones[t]", (T_ROLL,)),
    Mutation("gae: lambda dropped", ROLL, "gamma * gae_lambda * nonterminal", "gamma * nonterminal", (T_ROLL,)),
    Mutation("gae: always bootstraps last_value", ROLL, "next_value = values[t]", "next_value = last_value", (T_ROLL,)),
    Mutation(
        "gae: returns are the advantages", ROLL, "advantages, advantages + values", "advantages, advantages", (T_ROLL,)
    ),
    # Retention and its gate
    Mutation(
        "retention: gate at 10 standard errors",
        EVAL,
        "error_margin = 2 * math.sqrt",
        "error_margin = 10 * math.sqrt",
        (T_EVAL,),
    ),
    Mutation(
        "retention: gate at 1 standard error",
        EVAL,
        "error_margin = 2 * math.sqrt",
        "error_margin = 1 * math.sqrt",
        (T_EVAL,),
    ),
    Mutation(
        "retention: random play's error left out of the gate",
        EVAL,
        "standard_error(c) ** 2 + standard_error(f) ** 2",
        "standard_error(c) ** 2",
        (T_EVAL,),
    ),
    Mutation(
        "retention: standard error without the square root",
        EVAL,
        'r["std"] / math.sqrt(len(r["returns"]))',
        'r["std"] / len(r["returns"])',
        (T_EVAL,),
    ),
    Mutation(
        "retention: a game shift measured above the default game's random play",
        EVAL,
        "random = self.random_for.get(name, self.random)",
        "random = self.random",
        (T_EVAL,),
    ),
    Mutation(
        "retention: a game shift measured above the default game's blind play",
        EVAL,
        "blind = self.blind_for.get(name, self.blind)",
        "blind = self.blind",
        (T_EVAL,),
    ),
    Mutation(
        "retention: the blind floor ignored",
        EVAL,
        'blind is not None and blind["mean"] > random["mean"]',
        "False",
        (T_EVAL, T_AGENT_EVAL),
    ),
    Mutation(
        "retention: the lower floor taken",
        EVAL,
        'blind["mean"] > random["mean"]',
        'blind["mean"] < random["mean"]',
        (T_EVAL,),
    ),
    Mutation(
        "retention: no minimum skill",
        EVAL,
        "skill > max(error_margin, min_skill)",
        "skill > error_margin",
        (T_EVAL,),
    ),
    Mutation(
        "retention: the minimum skill a share of the wrong range (Breakout's human score)",
        "jepa_rl/envs/reference_scores.py",
        "return share * gap if",
        "return share * (gap + 1.7) if",
        (T_EVAL,),
    ),
    Mutation(
        "blind play: frequencies of every action the agent took, counted games or not",
        EVAL,
        "np.bincount(actions[played < quotas]",
        "np.bincount(actions",
        ("tests/evaluation/test_blind_play.py",),
    ),
    Mutation(
        "blind play: on games of its own, not the evaluation's",
        AGENT_EVAL,
        "envs = setup.make_env(min(ev.num_envs, episodes), setup.perturbations[name].copy())",
        "envs = make_eval_env(setup.env, min(ev.num_envs, episodes), setup.perturbations[name].copy(), 0, 0.25)",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "blind play: the evaluation's action generator",
        AGENT_EVAL,
        "(*setup.seed, BLIND_ACTIONS)",
        "setup.seed",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "retention: the study's ratio in its place",
        EVAL,
        '(res["mean"] - floors.under(name)[1]["mean"]) / skill',
        'res["mean"] / c["mean"]',
        (T_EVAL,),
    ),
    Mutation(
        "retention: the gate admits a tie", EVAL, "skill > max(error_margin", "skill >= max(error_margin", (T_EVAL,)
    ),
    Mutation(
        "random play: measured on other games",
        "jepa_rl/evaluation/random_play.py",
        "(0, RANDOM_GAMES)",
        "(1, RANDOM_GAMES)",
        ("tests/evaluation/test_random_play.py",),
    ),
    # Policy invariance
    Mutation("invariance: TV without its half", INV, "tv = 0.5 * (clean.exp()", "tv = (clean.exp()", (T_INV,)),
    Mutation("invariance: TV without abs", INV, "perturbed.exp()).abs().sum(-1)", "perturbed.exp()).sum(-1)", (T_INV,)),
    Mutation(
        "invariance: agreement inverted",
        INV,
        "clean.argmax(-1) == perturbed",
        "clean.argmax(-1) != perturbed",
        (T_INV,),
    ),
    Mutation(
        "invariance: the clean view of a state compared with itself",
        INV,
        "batch = [obs[envs], *(info[",
        "batch = [info['views'][next(iter(self.views))][envs], *(info[",
        (T_INV, T_AGENT_EVAL),
    ),
    Mutation(
        "invariance: only the first states of the games (no reservoir)",
        INV,
        "else self.rng.integers(self.seen)",
        "else self.capacity",
        (T_INV,),
    ),
    Mutation(
        "invariance: the reservoir replaces too often (late states over-sampled)",
        INV,
        "self.rng.integers(self.seen)",
        "self.rng.integers(self.capacity + 1)",
        (T_INV,),
    ),
    Mutation(
        "invariance: the game's variation paired across games",
        INV,
        "by_game[game].append(k)",
        "by_game[0].append(k)",
        (T_INV,),
    ),
    Mutation(
        "invariance: a policy that ignores its frames gets a ratio",
        INV,
        "looks = game_tv is not None and game_tv >= MIN_GAME_TV",
        "looks = game_tv is not None and game_tv >= 0",
        (T_INV,),
    ),
    Mutation(
        "invariance: the states of games beyond a quota offered",
        EVAL,
        "observe(obs, info, played < quotas, played)",
        "observe(obs, info, played >= 0, played)",
        (T_INV, T_AGENT_EVAL),
    ),
    Mutation(
        "invariance: agreement on the least likely action",
        INV,
        "clean.argmax(-1) == perturbed.argmax(-1)",
        "clean.argmin(-1) == perturbed.argmin(-1)",
        (T_INV,),
    ),
    # The pairing of evaluation games
    Mutation(
        "pairing: seeds depend on the perturbation",
        AGENT_EVAL,
        "perturbation, self.seed, ev.sticky_actions",
        "perturbation, (*self.seed, len(perturbation.name)), ev.sticky_actions",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "pairing: invariance states from other games",
        AGENT_EVAL,
        "perturbation, self.seed, ev.sticky_actions",
        "perturbation, self.seed if views is None else (*self.seed, 1), ev.sticky_actions",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "retention: the gate doubles random play's standard error instead of squaring it",
        EVAL,
        "standard_error(f) ** 2)",
        "standard_error(f) * 2)",
        (T_EVAL,),
    ),
    Mutation(
        "evaluation: a job's evaluation built without its device",
        TRAIN,
        "games, res.device, res.threads",
        "games, None, res.threads",
        (T_TRAIN,),
    ),
    Mutation(
        "pairing: seeds depend on the encoder",
        TRAIN,
        "games = (cfg.seed, EVAL_GAMES, ev.seed_offset)",
        "games = (cfg.seed, EVAL_GAMES, ev.seed_offset, len(cfg.encoder.name))",
        (T_AGENT_EVAL, T_TRAIN),
    ),
    Mutation(
        "pairing: environments of a group share seeds",
        ENVS,
        "spawn_key=(first_env + i,)",
        "spawn_key=(i,)",
        ("tests/envs/test_pipeline.py", T_PPO),
    ),
    Mutation(
        "envs: the vector emulator ignores sticky actions",
        "jepa_rl/envs/emulators.py",
        "max_frames,\n        repeat_action_probability=sticky_actions,",
        "max_frames,\n        repeat_action_probability=0.0,",
        ("tests/envs/test_pipeline.py",),
    ),
    Mutation(
        "envs: the RAM emulator ignores sticky actions",
        "jepa_rl/envs/emulators.py",
        "frameskip=1,\n            repeat_action_probability=sticky_actions,",
        "frameskip=1,\n            repeat_action_probability=0.0,",
        ("tests/envs/test_pipeline.py",),
    ),
    Mutation(
        "frames: game ids do not name their environment",
        "jepa_rl/pretrain/frame_sets.py",
        "np.arange(n) + n * games",
        "np.arange(n) + games",
        ("tests/pretrain/test_frame_sets.py",),
    ),
    Mutation(
        "frames: a later frame taken from another game",
        "jepa_rl/pretrain/frame_sets.py",
        "same_game = episode[then] == episode[now]",
        "same_game = episode[then] >= episode[now]",
        ("tests/pretrain/test_frame_sets.py",),
    ),
    # Resume
    Mutation("resume: weights not loaded", CKPT, '    agent.load_state_dict(state["agent"])\n', "", (T_TRAIN,)),
    Mutation(
        "resume: optimizer not loaded", CKPT, '    optimizer.load_state_dict(state["optimizer"])\n', "", (T_TRAIN,)
    ),
    Mutation("resume: torch RNG not restored", CKPT, '    torch.set_rng_state(state["torch_rng"])\n', "", (T_TRAIN,)),
    Mutation("resume: precision not restored", CKPT, '    agent.autocast = state["agent_autocast"]\n', "", (T_TRAIN,)),
    Mutation(
        "resume: the checkpoint's RNG state taken before a later draw",
        CKPT,
        '"torch_rng": torch.get_rng_state(),',
        '"torch_rng": (torch.get_rng_state(), torch.rand(1))[0],',
        (T_TRAIN,),
    ),
    # The report's verdicts
    Mutation(
        "report: retention ranking reversed",
        RREPORT,
        'key=lambda k: -retention[k][p]["retention"]',
        'key=lambda k: retention[k][p]["retention"]',
        (T_REPORT, T_ROBUST),
    ),
    Mutation(
        "report: clean ranking reversed",
        REPORT,
        'key=lambda kv: -kv[1][j]["iqm"]',
        'key=lambda kv: kv[1][j]["iqm"]',
        (T_REPORT, T_ROBUST),
    ),
    Mutation(
        "report: non-overlap verdict inverted",
        RREPORT,
        'elif a["ci"][0] > b["ci"][1]:',
        'elif a["ci"][0] < b["ci"][1]:',
        (T_REPORT, T_ROBUST),
    ),
    Mutation("report: touching intervals apart", RREPORT, 'elif a["ci"][0] > b', 'elif a["ci"][0] >= b', (T_REPORT,)),
    Mutation(
        "report: pairwise verdict inverted", RREPORT, "    if lo > 0.5:", "    if hi > 0.5:", (T_REPORT, T_ROBUST)
    ),
    Mutation(
        "report: near-random threshold at 0.5",
        REPORT,
        "env_id, random) < 0.05",
        "env_id, random) < 0.5",
        (T_REPORT, T_ROBUST),
    ),
    Mutation(
        "report: near-random warning when any condition is",
        REPORT,
        "if all(near_random(",
        "if any(near_random(",
        (T_REPORT, T_ROBUST),
    ),
    Mutation(
        "report: the runner-up is the last condition",
        RREPORT,
        "(first, second), (a, b) = ranked[:2], (retention[ranked[0]][p], retention[ranked[1]][p])",
        "(first, second), (a, b) = (ranked[0], ranked[-1]), (retention[ranked[0]][p], retention[ranked[-1]][p])",
        (T_REPORT, T_ROBUST),
    ),
    Mutation(
        "report: a single seed on the first condition only resolves nothing",
        RREPORT,
        "single = min(seeds[first], seeds[second]) < 2",
        "single = seeds[first] < 2",
        (T_REPORT,),
    ),
    Mutation(
        "report: two seeds count as one",
        RREPORT,
        "single = min(seeds[first], seeds[second]) < 2",
        "single = min(seeds[first], seeds[second]) <= 2",
        (T_REPORT,),
    ),
    Mutation("report: a touching interval excludes 0.5", RREPORT, "elif hi < 0.5:", "elif hi <= 0.5:", (T_REPORT,)),
    Mutation(
        "report: near-random against the published random score",
        REPORT,
        "    random = measured_random(cells)\n\n    def near_random",
        "    random = None\n\n    def near_random",
        (T_REPORT,),
    ),
    # The sweep's measures
    Mutation(
        "robustness: retention a mean of ratios, not a ratio of sums",
        ROBUST,
        'summed_skill_ratio(v["skill"], v["retention"] * v["skill"][:, None], reps, seed)',
        'summed_skill_ratio(np.ones(len(v["skill"])), v["retention"], reps, seed)',
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: skill above random play, not the higher floor",
        ROBUST,
        "return max(measured, key=lambda km: km[1]) if measured else None",
        "return measured[0] if measured else None",
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: the ratio's bootstrap parts a seed's skill from what it kept",
        "jepa_rl/sweep/statistics.py",
        'IIDBootstrap(rows, seed=seed).conf_int(ratio, reps=reps, method="percentile")',
        "np.percentile([ratio(np.column_stack([rows[np.random.default_rng(i).integers(0, len(rows), len(rows)), 0], "
        "rows[np.random.default_rng(i + 1).integers(0, len(rows), len(rows)), 1:]])) for i in range(reps)], "
        "[2.5, 97.5], axis=0)",
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: a policy that ignores its frames kept in the invariance ratio",
        ROBUST,
        "values = [v for v in values if None not in v]",
        "values = [[0.0 if x is None else x for x in v] for v in values]",
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: corruption error on unbounded retention",
        ROBUST,
        "np.clip(summed, 0, 1)",
        "summed",
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: corruption error over each condition's own seeds",
        ROBUST,
        'rows = [v["seeds"].index(s) for s in common]',
        'rows = list(range(len(v["seeds"])))',
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: corruption error against the cnn whatever the config",
        "jepa_rl/sweep/aggregate.py",
        "robustness_statistics(cells, measured, reps, seed, reference,",
        'robustness_statistics(cells, measured, reps, seed, "cnn",',
        (T_ROBUST,),
    ),
    Mutation(
        "matched skill: at the best condition's level",
        MATCHED,
        "level = min(reached.values())",
        "level = max(reached.values())",
        (T_ROBUST,),
    ),
    Mutation(
        "matched skill: a condition under the minimum skill drags the level down",
        MATCHED,
        "reached = {k: b for k, b in best.items() if b > min_skill}",
        "reached = best",
        (T_ROBUST,),
    ),
    Mutation(
        "matched skill: any snapshot, however far from the level",
        MATCHED,
        "if gap <= tolerance and",
        "if True and",
        (T_ROBUST,),
    ),
    Mutation(
        "matched skill: the last snapshot's skill is the best",
        MATCHED,
        'best[p["condition"]] = max(best.get(p["condition"], -np.inf), p["skill"])',
        'best[p["condition"]] = p["skill"]',
        (T_ROBUST,),
    ),
    Mutation(
        "matched skill: the floor ignores the snapshot's blind play",
        MATCHED,
        "floor = random if blind is None else max(random, blind)",
        "floor = random",
        (T_ROBUST,),
    ),
    Mutation(
        "matched skill: the first perturbation only",
        MATCHED,
        'names = [p["perturbation"] for p in chosen[0]]',
        'names = [p["perturbation"] for p in chosen[0]][:1]',
        (T_ROBUST,),
    ),
    # The DrQ shift in PPO's ratio
    Mutation(
        "ppo: a shifted update keeps the unshifted views' old log-probs",
        PPO,
        "return dataclasses.replace(batch, obs=obs, logprobs=logprobs, values=values)",
        "return dataclasses.replace(batch, obs=obs)",
        (T_PPO,),
    ),
    Mutation(
        "ppo: a new shift per minibatch",
        PPO,
        "        h = obs if features else agent.features(obs)",
        "        obs = random_shift(obs) if self.hp.augment == 'shift' and not features else obs\n"
        "        h = obs if features else agent.features(obs)",
        (T_PPO,),
    ),
    # Across games
    Mutation(
        "games: normalised over human minus the measured floor",
        "jepa_rl/sweep/statistics.py",
        "return (score - random) / (human - published)",
        "return (score - random) / (human - random)",
        (T_REPORT, "tests/sweep/test_games.py"),
    ),
    Mutation(
        "games: a drifted floor not named",
        "jepa_rl/sweep/games.py",
        "if abs(shift) > FLOOR_DRIFT:",
        "if abs(shift) > 1:",
        ("tests/sweep/test_games.py",),
    ),
    # The Nature-CNN's JEPA context and its targets' receptive fields
    Mutation(
        "jepa_cnn: the context sees its targets' receptive fields",
        "jepa_rl/pretrain/objectives.py",
        'hide = {"hide": target_idx.flatten(1)} if isinstance(self.encoder, NatureCNN) else {}',
        "hide = {}",
        ("tests/pretrain/test_objectives.py",),
    ),
    Mutation(
        "jepa_cnn: a receptive field one layer short",
        "jepa_rl/models/encoders.py",
        "for conv in (m for m in self.net if isinstance(m, nn.Conv2d)):",
        "for conv in [m for m in self.net if isinstance(m, nn.Conv2d)][:-1]:",
        ("tests/pretrain/test_objectives.py",),
    ),
    # Holes the third mutmut run found (docs/results/2026-12-07-mutmut.md)
    Mutation(
        "robustness: retention's bootstrap unseeded",
        ROBUST,
        'v["retention"] * v["skill"][:, None], reps, seed)',
        'v["retention"] * v["skill"][:, None], reps, None)',
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: each pair named both ways",
        ROBUST,
        "for b in names[i + 1 :]",
        "for b in names[i - 1 :]",
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: the ratio of sums a point from two seeds",
        "jepa_rl/sweep/statistics.py",
        'method="percentile") if len(rows) > 1 else None',
        'method="percentile") if len(rows) > 2 else None',
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: a family the reference loses nothing on divides by zero",
        ROBUST,
        "if lost[reference][f] > 0 else None",
        "if lost[reference][f] >= 0 else None",
        (T_ROBUST,),
    ),
    Mutation(
        "robustness: the corruption table prints None",
        ROBUST,
        'cols = ["-" if per[k] is None else',
        'cols = ["-" if False else',
        (T_ROBUST,),
    ),
    Mutation(
        "invariance: the sample unseeded",
        INV,
        "self.rng = np.random.default_rng(list(seed))",
        "self.rng = np.random.default_rng(None)",
        (T_INV,),
    ),
    Mutation(
        "invariance: the game's variation read on the first view",
        INV,
        "self.game_tv(logp[:, 0])",
        "self.game_tv(logp[:, 1])",
        (T_INV,),
    ),
    Mutation(
        "invariance: the scored games offer no states",
        AGENT_EVAL,
        'ev.suite, ev.episodes, tracker, step, "eval", sampler)',
        'ev.suite, ev.episodes, tracker, step, "eval", None)',
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "invariance: games without scores sampled whatever eval.greedy says",
        AGENT_EVAL,
        "ev.num_envs, ev.num_envs, setup.device, ev.greedy, sampler=sampler)",
        "ev.num_envs, ev.num_envs, setup.device, False, sampler=sampler)",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "retention: the minimum skill not asked of the job's retention",
        AGENT_EVAL,
        'retention(scores, floors, minimum_skill(setup.env["env_id"], ev.min_skill_share))',
        "retention(scores, floors)",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "blind play: the fixed frame read without the agent",
        AGENT_EVAL,
        "blind = blind_play(agent, setup,",
        "blind = blind_play(None, setup,",
        (T_AGENT_EVAL,),
    ),
    Mutation(
        "games: the report's own game's drift not named",
        "jepa_rl/sweep/games.py",
        'c.status in ("ok", "other_game")',
        'c.status in ("other_game",)',
        ("tests/sweep/test_games.py",),
    ),
    Mutation(
        "jepa_cnn: a receptive field as wide as the frame",
        "jepa_rl/models/encoders.py",
        "rows = (pixels >= start_rows[..., None]) & (pixels",
        "rows = (pixels >= start_rows[..., None]) | (pixels",
        ("tests/pretrain/test_objectives.py",),
    ),
    # An encoder that cannot see
    Mutation(
        "sight: a dead encoder trains",
        "jepa_rl/models/agent.py",
        "if not spread > 1e-6 * (1 + float(features.abs().max())):",
        "if False:",
        ("tests/models/test_agent.py", "tests/config/test_validate.py"),
    ),
    Mutation(
        "sight: given weights not checked before any work",
        TRAIN,
        "    if cfg.encoder.weights:  # given weights",
        "    if False:  # given weights",
        ("tests/config/test_validate.py",),
    ),
    # The corruption tables
    Mutation(
        "corruptions: gaussian severities 2 and 3 swapped",
        CORR,
        "(0.08, 0.12, 0.18, 0.26, 0.38)",
        "(0.08, 0.18, 0.12, 0.26, 0.38)",
        (T_CORR,),
    ),
    Mutation(
        "corruptions: contrast severities 2 and 3 swapped",
        CORR,
        "(0.4, 0.3, 0.2, 0.1, 0.05)",
        "(0.4, 0.2, 0.3, 0.1, 0.05)",
        (T_CORR,),
    ),
    Mutation("corruptions: shot noise photons", CORR, "(60, 25, 12, 5, 3)", "(60, 25, 12, 6, 3)", (T_CORR,)),
    Mutation(
        "corruptions: impulse amount",
        CORR,
        "(0.03, 0.06, 0.09, 0.17, 0.27)",
        "(0.03, 0.06, 0.09, 0.17, 0.2)",
        (T_CORR,),
    ),
    Mutation("corruptions: defocus radius", CORR, "(6, 0.5), (8, 0.5)", "(5, 0.5), (8, 0.5)", (T_CORR,)),
    Mutation("corruptions: motion sigma", CORR, "(15, 8), (15, 12)", "(15, 8), (15, 10)", (T_CORR,)),
    Mutation(
        "corruptions: brightness offset", CORR, "(0.1, 0.2, 0.3, 0.4, 0.5)", "(0.1, 0.2, 0.3, 0.4, 0.6)", (T_CORR,)
    ),
    Mutation(
        "corruptions: pixelate scale", CORR, "(0.6, 0.5, 0.4, 0.3, 0.25)", "(0.6, 0.5, 0.45, 0.3, 0.25)", (T_CORR,)
    ),
    Mutation("corruptions: JPEG quality", CORR, "(25, 18, 15, 10, 7)", "(25, 18, 15, 12, 7)", (T_CORR,)),
    Mutation("corruptions: severity off by one", CORR, "_GAUSSIAN[s - 1]", "_GAUSSIAN[min(s, 4)]", (T_CORR,)),
]

FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked and untracked files, not the ignored ones) copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def mutate(tree: Path, m: Mutation) -> None:
    """Apply ``m`` in ``tree``; the piece must occur exactly once, and the result must compile."""
    path = tree / m.path
    text = path.read_text()
    if text.count(m.before) != 1:
        sys.exit(f"error: '{m.before}' occurs {text.count(m.before)} times in {m.path}, not once; update the mutation")
    mutated = text.replace(m.before, m.after)
    compile(mutated, m.path, "exec")
    path.write_text(mutated)


def pytest(tree: Path, args: list[str]) -> tuple[str, list[str], float]:
    """Fast-tier pytest ``args`` in ``tree``, whose ``jepa_rl`` comes first on the path: (outcome, failed, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider", "-rfE", *args]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout", [], time.perf_counter() - start
    seconds = time.perf_counter() - start
    outcome = {0: "passed", 1: "failed"}.get(done.returncode, f"error (pytest exit {done.returncode})")
    if outcome.startswith("error"):
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return outcome, sorted(set(FAILED.findall(done.stdout))), seconds


def run_one(m: Mutation) -> tuple[str, list[str], float]:
    """Outcome of ``m``: killed by its named tests, else by the whole fast tier, else survived."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        mutate(tree, m)
        outcome, failed, seconds = pytest(tree, ["-n", "0", *m.tests])
        if outcome == "passed":  # not by the tests named for it: by anything in the fast tier?
            outcome, failed, more = pytest(tree, ["--maxfail=1"])
            seconds += more
    return (
        ("killed" if outcome in ("failed", "timeout") else "SURVIVED" if outcome == "passed" else outcome),
        failed,
        seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", help="run only the mutations whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.words or any(w in m.name for w in args.words)]
    if not chosen:
        sys.exit(f"error: no mutation's name contains {args.words}; see --list")
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.path}: {m.before!r} -> {m.after!r}")
        return
    with tempfile.TemporaryDirectory(prefix="unmutated-") as tmp:
        copy_tree(Path(tmp))
        tests = sorted({t for m in chosen for t in m.tests})
        outcome, failed, seconds = pytest(Path(tmp), ["-n", "0", *tests])
        if outcome != "passed":
            sys.exit(
                f"error: the unmutated tests do not pass ({outcome}: {failed}); fix them before checking mutations"
            )
        print(f"baseline: {len(tests)} test files pass unmutated in {seconds:.0f} s", flush=True)
    print("| mutation | module | outcome | killed by | seconds |\n|---|---|---|---|---|", flush=True)
    survivors = 0
    for m in chosen:
        outcome, failed, seconds = run_one(m)
        survivors += outcome != "killed"
        shown = ", ".join(f"`{t}`" for t in failed[:3]) + (f" (+{len(failed) - 3})" if len(failed) > 3 else "")
        print(f"| {m.name} | `{m.path}` | {outcome} | {shown or '-'} | {seconds:.0f} |", flush=True)
    print(f"\n{len(chosen) - survivors} of {len(chosen)} mutations killed")
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
