"""Throughput measurements: PPO agent steps/s as a ratio of the emulator's own speed, measured in one run.

``measure`` runs ``Rounds.repeats`` rounds of each (``summary`` reports the medians):
  (a) emulator: ale-py's vector env in the training configuration, random actions, no learning;
  (b) pipeline: (a) plus this project's perturbation, grayscale, resize and frame stack;
  (c) ppo: full PPO training (rollout + update) with the configured encoder, the seconds each
      iteration spends in its rollout and in its update, and the ceiling the emulator and that
      update set together (``batch / (batch / (a) + update seconds)``);
  (d) ppo_frozen_vit: the same with a frozen ViT-Tiny (the jepa / ae setting), as a ratio of (c);
  (e) pretraining steps on ``Rounds.pretrain_batch`` frames for each net it is given (the ViT, the
      Nature-CNN, the ViT on 6-px patches by default): JEPA, autoencoder, and a plain
      forward+backward of the same net (the cost masking and EMA are compared against);
  (f) the pipeline under each perturbation it is given, its time per step as a ratio of (b)'s;
  (g) where an acting step of (c) goes (``step_profile``): emulation, frame work, copies, forward;
  (h) evaluation: the suite's games side by side with every game live (an agent that never acts, so that
      every game runs to a lowered frame cap), for (c)'s encoder and the frozen ViT, each against the
      emulator alone with as many environments, measured once before it;
and ``summary`` adds the ratios and the process's peak resident memory. Each measurement runs its rounds
in turn and reports its medians as it finishes (``on_part``).
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from jepa_rl.benchmark.step_profile import PHASES, acting_step_seconds, clock
from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_env, make_eval_env, make_train_envs
from jepa_rl.evaluation.games import evaluate
from jepa_rl.evaluation.invariance import StateSampler
from jepa_rl.models.agent import Agent, build_agent, make_optimizer
from jepa_rl.models.precision import native_bf16
from jepa_rl.pretrain.loop import make_adamw, mask_config, train_step
from jepa_rl.pretrain.objectives import make_pretrainer
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.rl.ppo import PPO, PPOSettings
from jepa_rl.runtime.malloc import retain_freed_memory
from jepa_rl.runtime.tracking import Tracker

PRETRAIN_KINDS = ("jepa", "ae", "fwd_bwd")  # (e): the two objectives' steps, and the net's plain step
EVAL_KEYS = {"ppo": "evaluation", "ppo_frozen_vit": "evaluation_frozen_vit"}  # (h) of each PPO case's encoder


@dataclass(frozen=True)
class Machine:
    """Where the job runs and how: the fields of the config's resolved settings the measurements use."""

    device: torch.device
    threads: int  # torch and emulator threads
    ppo_precision: str  # the agent's encoder precision: bf16 | none
    pretrain_precision: str  # pretraining's: bf16 | none
    env_groups: int  # (c)'s training env groups
    frames_device: str | None  # the torch device of the pipeline's frame work; None: OpenCV on the host


@dataclass(frozen=True)
class Rounds:
    """How much each measurement runs: the ``benchmark`` group's sizes."""

    repeats: int  # rounds of every measurement
    env_steps: int  # agent steps per emulator measurement
    ppo_iterations: int  # PPO updates timed per measurement (after one warm-up)
    pretrain_batch: int  # frames per timed pretraining step
    pretrain_steps: int  # pretraining steps timed per measurement (after two warm-up)
    eval_frames: int = 320  # (h): the frame cap of each game (every game is live until it)


@dataclass(frozen=True)
class PPOCase:
    """One PPO measurement: the encoder it trains and how its envs are grouped."""

    encoder: str  # config name, for the table
    net: dict[str, Any]
    freeze: bool
    lr_scale: float
    groups: int


@dataclass(frozen=True)
class Setup:
    """What every measurement of a benchmark run shares."""

    env: dict[str, Any]
    perturbation: VisualPerturbation
    ppo: PPOSettings
    head: dict[str, Any]  # the head group (kind, width)
    seed: int
    machine: Machine

    @property
    def rollout_batch(self) -> int:
        """Agent steps per PPO iteration."""
        return self.ppo.num_envs * self.ppo.num_steps


@dataclass(frozen=True)
class Measurements:
    """Every round's figures, one entry per round in each list."""

    runs: dict[str, list[float]]  # agent steps/s: emulator, pipeline and each PPO case
    pretrain_seconds: dict[str, list[float]]  # <net>/<jepa|ae|fwd_bwd> -> seconds per step
    phases: dict[str, dict[str, list[float]]]  # PPO case -> rollout_seconds / update_seconds per iteration
    by_perturbation: dict[str, list[float]]  # pipeline steps/s under each perturbation
    profile: dict[str, list[float]]  # acting-step phase -> seconds per step
    # (h): evaluation / evaluation_frozen_vit and each one's emulator alone (<key>_emulator), agent steps/s
    evaluation: dict[str, list[float]] = field(default_factory=dict)


def emulator_sps(setup: Setup, steps: int, preprocess: bool, perturbation: VisualPerturbation | None = None) -> float:
    """Agent steps/s with random actions: the bare emulator, or the whole observation pipeline (under
    the training perturbation, or ``perturbation``)."""
    n = setup.ppo.num_envs
    envs = make_env(setup.env, n, setup.seed, (perturbation or setup.perturbation).copy(), setup.machine.threads)
    rng = np.random.default_rng(setup.seed)
    step = envs.step if preprocess else envs.ale.step
    try:
        envs.reset()
        for _ in range(10):  # warm-up
            step(rng.integers(0, envs.num_actions, n, dtype=np.int32))
        start = time.perf_counter()
        for _ in range(steps // n):
            step(rng.integers(0, envs.num_actions, n, dtype=np.int32))
        return (steps // n) * n / (time.perf_counter() - start)
    finally:
        envs.close()


def ppo_sps(setup: Setup, case: PPOCase, iterations: int) -> dict[str, float]:
    """PPO training over ``iterations`` after one warm-up: agent steps/s (rollout and update), and the
    seconds per iteration spent in the rollout (``rollout_seconds``) and in the update (``update_seconds``)."""
    machine, batch = setup.machine, setup.rollout_batch
    ppo = PPO(replace(setup.ppo, total_timesteps=batch * (iterations + 1)))
    envs = make_train_envs(setup.env, setup.perturbation, ppo.hp.num_envs, case.groups, setup.seed, machine.threads)
    agent = build_agent(case.net, case.freeze, setup.head, envs[0].num_actions, machine.ppo_precision, machine.device)
    optimizer = make_optimizer(agent, ppo.hp.learning_rate, case.lr_scale)
    marks: list[tuple[float, dict]] = []  # (time, stats) at the end of each iteration

    def mark(iteration: int, global_step: int, stats: dict) -> None:
        marks.append((time.perf_counter(), stats))

    try:
        ppo.learn(agent, envs, optimizer, Tracker(), machine.device, on_iteration_end=mark)
    finally:
        for env in envs:
            env.close()
    timed = [stats for _, stats in marks[1:]]  # the iterations after the warm-up
    return {
        "sps": batch * iterations / (marks[-1][0] - marks[0][0]),
        **{k: statistics.mean(s[k] for s in timed) for k in ("rollout_seconds", "update_seconds")},
    }


def pretrain_step_seconds(
    encoder: dict[str, Any],
    pretrain: PretrainSettings,
    objective: str | None,
    batch: int,
    steps: int,
    machine: Machine,
) -> float:
    """Seconds per pretraining step (``objective``, with the ``encoder`` node's net and target) or per
    forward+backward of its net (``None``), after warm-up."""
    device, bf16 = machine.device, machine.pretrain_precision == "bf16"
    model = make_pretrainer(encoder["net"], objective or "ae", encoder["target"], pretrain).to(device)
    optimizer = make_adamw(model)
    masks, gen = mask_config(pretrain.masks, model.encoder.grid), torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (batch, model.encoder.in_channels, 84, 84), dtype=torch.uint8)
    obs = obs.to(device)

    def step() -> None:
        if objective:
            train_step(model, optimizer, obs, masks, gen, 0.996, bf16)
            return
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            features = model.encoder(obs)
        features.float().square().mean().backward()

    for _ in range(2):  # warm-up: kernel selection, allocator
        step()
    start = clock(device)  # clock waits for the GPU's queued work: the warm-up's is not timed, the steps' is
    for _ in range(steps):
        step()
    return (clock(device) - start) / steps


def profiled_step(setup: Setup, case: PPOCase, env_steps: int) -> dict[str, float]:
    """(g): ``step_profile.acting_step_seconds`` of the agent of ``case`` on one pipeline of every env."""
    machine, n = setup.machine, setup.ppo.num_envs
    envs = make_env(setup.env, n, setup.seed, setup.perturbation.copy(), machine.threads)
    agent = build_agent(case.net, case.freeze, setup.head, envs.num_actions, machine.ppo_precision, machine.device)
    try:
        return acting_step_seconds(agent, envs, max(1, env_steps // n), machine.device)
    finally:
        envs.close()


def stalled_agent(case: PPOCase, setup: Setup, num_actions: int) -> Agent:
    """(h)'s agent: ``case``'s encoder, frozen, and a head that always plays action 0 (NOOP), greedy: in
    Breakout it never launches the ball, so every game runs to the frame cap, as a stalled agent's do."""
    machine = setup.machine
    agent = build_agent(case.net, True, setup.head, num_actions, machine.ppo_precision, machine.device)
    with torch.no_grad():
        agent.heads.actor.weight.zero_()
        agent.heads.actor.bias.copy_(torch.nn.functional.one_hot(torch.tensor(0), num_actions) * 50.0)
    return agent


def evaluation_sps(setup: Setup, case: PPOCase, suite: dict[str, VisualPerturbation], frames: int) -> float:
    """(h): agent steps/s of the evaluation of ``suite`` side by side (``ppo.num_envs`` games of each, one per
    environment, all live to the cap of ``frames``), with the invariance views and sampler of a final evaluation."""
    n, machine = setup.ppo.num_envs, setup.machine
    env = {**setup.env, "max_frames": frames}
    ready = []  # when the games had started: building and seeding the emulators (a ROM load each) is not timed

    def make(num: int, perturbation: VisualPerturbation, **kwargs) -> object:
        envs = make_eval_env(env, num, perturbation, setup.seed, 0.25, machine.threads, **kwargs)
        reset = envs.reset

        def timed_reset() -> tuple:
            started = reset()
            ready.append(clock(machine.device))
            return started

        envs.reset = timed_reset
        return envs

    probe = make_env(env, 1, setup.seed, num_threads=1)
    agent = stalled_agent(case, setup, probe.num_actions)
    probe.close()
    views = {k: p.copy() for k, p in suite.items() if k != "clean"}
    sampler = StateSampler(agent, views, 256, (setup.seed,), machine.device) if "clean" in suite else None
    scores = evaluate(agent, make, {k: p.copy() for k, p in suite.items()}, n, n, machine.device, True, None, sampler)
    seconds = clock(machine.device) - ready[0]
    steps = sum(r["action_counts"][0] for r in scores.values())  # every counted step played NOOP
    return steps / seconds


def timed(label: str, on_part: Callable[[str, dict], None] | None, figures: dict) -> None:
    """Hand a finished part's medians to ``on_part`` (the stage prints them at once)."""
    if on_part:
        on_part(label, {k: statistics.median(v) for k, v in figures.items() if v})


def measure(
    setup: Setup,
    cases: dict[str, PPOCase],
    encoders: dict[str, dict],
    pretrain: PretrainSettings,
    rounds: Rounds,
    perturbations: dict[str, VisualPerturbation],
    suite: dict[str, VisualPerturbation] | None = None,
    on_part: Callable[[str, dict], None] | None = None,
) -> Measurements:
    """``rounds.repeats`` rounds of each measurement in turn: (a)-(d), (f) and (h) in agent steps/s, (e) and (g)
    in seconds; ``on_part(label, medians)`` after each.

    ``cases`` holds (c) under ``ppo`` and (d) under ``ppo_frozen_vit``. Pretraining is timed for each of
    ``encoders`` (name -> its ``encoders.<name>`` node; none: skipped): a JEPA step, an autoencoder step and
    a plain forward+backward of the net (keys ``<name>/jepa``, ``<name>/ae``, ``<name>/fwd_bwd``). (h)
    evaluates ``suite`` (none: skipped).
    """
    m = Measurements(
        runs={k: [] for k in ("emulator", "pipeline", *cases)},
        pretrain_seconds={f"{n}/{k}": [] for n in encoders for k in PRETRAIN_KINDS},
        phases={k: {"rollout_seconds": [], "update_seconds": []} for k in cases},
        by_perturbation={name: [] for name in perturbations},
        profile={phase: [] for phase in PHASES},
    )
    repeats, steps = range(rounds.repeats), rounds.env_steps
    for _ in repeats:
        m.runs["emulator"].append(emulator_sps(setup, steps, preprocess=False))
        m.runs["pipeline"].append(emulator_sps(setup, steps, preprocess=True))
    timed("(a) emulator, (b) pipeline", on_part, {k: m.runs[k] for k in ("emulator", "pipeline")})
    for key, case in cases.items():
        for _ in repeats:
            measured = ppo_sps(setup, case, rounds.ppo_iterations)
            m.runs[key].append(measured.pop("sps"))
            for phase, seconds in measured.items():
                m.phases[key][phase].append(seconds)
        timed(f"PPO {key}", on_part, {"agent steps/s": m.runs[key], **m.phases[key]})
    for _ in repeats:
        for phase, seconds in profiled_step(setup, cases["ppo"], steps).items():
            m.profile[phase].append(seconds)
    timed("(g) acting step", on_part, m.profile)
    for key, case in cases.items() if suite else ():
        measure_evaluation(setup, case, suite, rounds, EVAL_KEYS[key], m)
        timed(f"(h) {EVAL_KEYS[key]}", on_part, {k: v for k, v in m.evaluation.items() if k.startswith(EVAL_KEYS[key])})
    for name, perturbation in perturbations.items():
        m.by_perturbation[name] = [emulator_sps(setup, steps, True, perturbation) for _ in repeats]
        timed(f"(f) pipeline under {name}", on_part, {"agent steps/s": m.by_perturbation[name]})
    measure_pretraining(setup.machine, encoders, pretrain, rounds, m.pretrain_seconds, on_part)
    return m


def measure_evaluation(setup: Setup, case: PPOCase, suite: dict, rounds: Rounds, key: str, m: Measurements) -> None:
    """(h) for ``case`` under ``key``: the emulator alone with the evaluation's environments, once
    (``<key>_emulator``: building and seeding that many emulators costs more than stepping them), then
    ``rounds.repeats`` evaluations."""
    together = replace(setup, ppo=replace(setup.ppo, num_envs=setup.ppo.num_envs * len(suite)))
    m.evaluation[f"{key}_emulator"] = [emulator_sps(together, rounds.env_steps, False)]
    m.evaluation[key] = [evaluation_sps(setup, case, suite, rounds.eval_frames) for _ in range(rounds.repeats)]


def measure_pretraining(
    machine: Machine,
    encoders: dict[str, dict],
    pretrain: PretrainSettings,
    rounds: Rounds,
    into: dict[str, list[float]],
    on_part: Callable[[str, dict], None] | None = None,
) -> None:
    """(e): every step kind of every net, ``rounds.repeats`` times each, appended to ``into``."""
    for key, seconds in into.items():
        name, kind = key.split("/")
        objective = None if kind == "fwd_bwd" else kind
        for _ in range(rounds.repeats):
            step = pretrain_step_seconds(
                encoders[name], pretrain, objective, rounds.pretrain_batch, rounds.pretrain_steps, machine
            )
            seconds.append(step)
        timed(f"(e) pretraining {key}", on_part, {"seconds per step": seconds})


def medians(runs: dict[str, list[float]]) -> dict[str, float]:
    """Each measurement's median over the rounds."""
    return {k: statistics.median(v) for k, v in runs.items()}


def summary(setup: Setup, encoder: str, measured: Measurements, pretrain_batch: int) -> dict[str, Any]:
    """What ``benchmark.json`` holds: the run's settings, every round's figures, their medians and ratios.

    ``encoder`` names (c)'s encoder; ``pretrain_batch`` is (e)'s frames per step.
    """
    med = medians(measured.runs)
    return {
        **described(setup, encoder),
        **ppo_figures(setup.rollout_batch, measured.runs, measured.phases),
        **pretrain_figures(pretrain_batch, measured.pretrain_seconds),
        "pipeline_sps_by_perturbation": measured.by_perturbation,
        "num_steps": setup.ppo.num_steps,
        "acting_step_seconds_runs": measured.profile,
        "acting_step_seconds": medians(measured.profile),
        # A perturbation's cost: the clean pipeline's speed over the pipeline's under it (1: free).
        "perturbation_cost": {k: med["pipeline"] / v for k, v in medians(measured.by_perturbation).items()},
        **evaluation_figures(measured.evaluation),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def described(setup: Setup, encoder: str) -> dict[str, Any]:
    """The run's setting: device, threads, envs, (c)'s encoder, precision and pipeline."""
    machine = setup.machine
    device = machine.device
    return {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": machine.threads,
        "num_envs": setup.ppo.num_envs,
        "encoder": encoder,
        "autocast": setup.ppo.autocast,
        "native_bf16": native_bf16(device),
        "ppo_precision": "bf16" if machine.ppo_precision == "bf16" else "float32",
        "env_groups": machine.env_groups,
        "pipeline": f"torch on {machine.frames_device}" if machine.frames_device else "opencv",
        "freed_memory_kept": retain_freed_memory(),
    }


def ppo_figures(batch: int, runs: dict[str, list[float]], phases: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """(a)-(d): agent steps/s, their ratios, each PPO iteration's phases, and the emulator-and-update ceiling."""
    med = medians(runs)
    phase_med = {k: medians(ph) for k, ph in phases.items()}
    # What the emulator and the update allow together: PPO's ceiling when acting costs nothing but emulation.
    ceiling = batch / (batch / med["emulator"] + phase_med["ppo"]["update_seconds"])
    return {
        "runs": runs,
        "median_sps": med,
        "ppo_over_emulator": med["ppo"] / med["emulator"],
        "pipeline_over_emulator": med["pipeline"] / med["emulator"],
        "frozen_vit_over_ppo": med["ppo_frozen_vit"] / med["ppo"],
        # What one cell of the study (10M agent steps) would take at this speed, pretraining and evaluation aside.
        "minutes_per_10m_steps": {k: 1e7 / med[k] / 60 for k in ("ppo", "ppo_frozen_vit")},
        "ppo_phase_seconds": phases,
        "ppo_phase_median_seconds": phase_med,
        "emulator_plus_update_sps": ceiling,
        "ppo_over_emulator_plus_update": med["ppo"] / ceiling,
    }


def pretrain_figures(batch: int, seconds: dict[str, list[float]]) -> dict[str, Any]:
    """(e): frames/s of each pretraining step, and each objective's step over its net's forward+backward."""
    step_med = medians(seconds)
    return {
        "pretrain_batch": batch,
        "pretrain_step_seconds": seconds,
        "pretrain_frames_per_sec": {k: batch / v for k, v in step_med.items()},
        "pretrain_over_fwd_bwd": {
            k: step_med[k] / step_med[f"{k.split('/')[0]}/fwd_bwd"] for k in step_med if not k.endswith("fwd_bwd")
        },
    }


def evaluation_figures(runs: dict[str, list[float]]) -> dict[str, Any]:
    """(h): evaluation's agent steps/s, and each over the emulator alone with as many environments."""
    med = medians(runs)
    keys = [k for k in med if not k.endswith("_emulator")]
    return {
        "evaluation_runs": runs,
        "evaluation_sps": {k: med[k] for k in keys},
        "evaluation_over_emulator": {k: med[k] / med[f"{k}_emulator"] for k in keys},
    }
