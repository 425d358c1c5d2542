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
and ``summary`` adds the ratios and the process's peak resident memory.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from jepa_rl.benchmark.step_profile import PHASES, acting_step_seconds, clock
from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_env, make_train_envs
from jepa_rl.models.agent import build_agent, make_optimizer
from jepa_rl.models.precision import native_bf16
from jepa_rl.pretrain.loop import make_adamw, mask_config, train_step
from jepa_rl.pretrain.objectives import make_pretrainer
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.rl.ppo import PPO, PPOSettings
from jepa_rl.runtime.malloc import retain_freed_memory
from jepa_rl.runtime.tracking import Tracker

PRETRAIN_KINDS = ("jepa", "ae", "fwd_bwd")  # (e): the two objectives' steps, and the net's plain step


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


def measure(
    setup: Setup,
    cases: dict[str, PPOCase],
    encoders: dict[str, dict],
    pretrain: PretrainSettings,
    rounds: Rounds,
    perturbations: dict[str, VisualPerturbation],
) -> Measurements:
    """``rounds.repeats`` rounds of every measurement: (a)-(d) and (f) in agent steps/s, (e) and (g) in seconds.

    ``cases`` holds (c) under ``ppo`` and (d) under ``ppo_frozen_vit``. Pretraining is timed for each of
    ``encoders`` (name -> its ``encoders.<name>`` node): a JEPA step, an autoencoder step and a plain
    forward+backward of the net (keys ``<name>/jepa``, ``<name>/ae``, ``<name>/fwd_bwd``).
    """
    measured = Measurements(
        runs={k: [] for k in ("emulator", "pipeline", *cases)},
        pretrain_seconds={f"{n}/{k}": [] for n in encoders for k in PRETRAIN_KINDS},
        phases={k: {"rollout_seconds": [], "update_seconds": []} for k in cases},
        by_perturbation={name: [] for name in perturbations},
        profile={phase: [] for phase in PHASES},
    )
    for _ in range(rounds.repeats):
        measure_pipelines(setup, cases["ppo"], rounds.env_steps, perturbations, measured)
        measure_ppo(setup, cases, rounds.ppo_iterations, measured)
        measure_pretraining(setup.machine, encoders, pretrain, rounds, measured)
    return measured


def measure_pipelines(
    setup: Setup, case: PPOCase, env_steps: int, perturbations: dict[str, VisualPerturbation], into: Measurements
) -> None:
    """One round of (g), (f), (a) and (b), in that order, appended to ``into``."""
    for phase, seconds in profiled_step(setup, case, env_steps).items():
        into.profile[phase].append(seconds)
    for name, perturbation in perturbations.items():
        into.by_perturbation[name].append(emulator_sps(setup, env_steps, True, perturbation))
    into.runs["emulator"].append(emulator_sps(setup, env_steps, preprocess=False))
    into.runs["pipeline"].append(emulator_sps(setup, env_steps, preprocess=True))


def measure_ppo(setup: Setup, cases: dict[str, PPOCase], iterations: int, into: Measurements) -> None:
    """One round of each PPO case ((c) and (d)), appended to ``into``."""
    for key, case in cases.items():
        measured = ppo_sps(setup, case, iterations)
        into.runs[key].append(measured.pop("sps"))
        for phase, seconds in measured.items():
            into.phases[key][phase].append(seconds)


def measure_pretraining(
    machine: Machine, encoders: dict[str, dict], pretrain: PretrainSettings, rounds: Rounds, into: Measurements
) -> None:
    """One round of (e): every step kind of every net, appended to ``into``."""
    for key, seconds in into.pretrain_seconds.items():
        name, kind = key.split("/")
        objective = None if kind == "fwd_bwd" else kind
        step = pretrain_step_seconds(
            encoders[name], pretrain, objective, rounds.pretrain_batch, rounds.pretrain_steps, machine
        )
        seconds.append(step)


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
