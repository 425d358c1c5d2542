"""Throughput benchmark: PPO agent steps/s as a ratio of the emulator's own speed, measured in one run.

``python launch.py stage=benchmark`` measures, ``benchmark.repeats`` times each (median reported):
  (a) emulator: ale-py's vector env in the training configuration, random actions, no learning;
  (b) pipeline: (a) plus this project's perturbation, grayscale, resize and frame stack;
  (c) ppo: full PPO training (rollout + update) with the configured encoder, the seconds each
      iteration spends in its rollout and in its update, and the ceiling the emulator and that
      update set together (``batch / (batch / (a) + update seconds)``);
  (d) ppo_frozen_vit: the same with a frozen ViT-Tiny (the jepa / ae setting), as a ratio of (c);
  (e) pretraining steps on ``benchmark.pretrain_batch`` frames for each net of
      ``benchmark.pretrain_encoders`` (the ViT, the Nature-CNN, the ViT on 6-px patches): JEPA,
      autoencoder, and a plain forward+backward of the same net (the cost masking and EMA are
      compared against);
  (f) the pipeline under each perturbation of ``benchmark.perturbations``, its time per step as a
      ratio of (b)'s;
  (g) where an acting step of (c) goes (``step_profile``): emulation, frame work, copies, forward;
and prints the ratios, plus the process's peak resident memory.
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl.benchmark.step_profile import PHASES, acting_step_seconds
from jepa_rl.benchmark.table import report_lines
from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain
from jepa_rl.config.resolve import Resolved, env_groups
from jepa_rl.config.schema import BenchmarkSchema
from jepa_rl.config.validate import build_encoder_of, settings
from jepa_rl.envs.perturbations import VisualPerturbation, suite_config
from jepa_rl.envs.pipeline import make_env, make_train_envs
from jepa_rl.models.agent import build_agent, make_optimizer
from jepa_rl.models.precision import native_bf16
from jepa_rl.pretrain.loop import make_adamw, mask_config, train_step
from jepa_rl.pretrain.objectives import make_pretrainer
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.rl.ppo import PPO, PPOSettings
from jepa_rl.runtime.malloc import retain_freed_memory
from jepa_rl.runtime.tracking import Tracker
from jepa_rl.stages import train

log = logging.getLogger(__name__)


def check(cfg: DictConfig) -> None:
    """What training builds, the nets the frozen and pretraining measurements use, the benchmark settings."""
    train.check(cfg)
    bc = settings(cfg.benchmark, "benchmark")
    for name in dict.fromkeys(["jepa", *bc.pretrain_encoders]):
        if name not in cfg.encoders:
            choices = ", ".join(cfg.encoders)
            raise ConfigError(f"benchmark.pretrain_encoders names unknown encoder '{name}'; choose from {choices}")
        build_encoder_of(cfg, name, with_pretrainer=True)


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
    res: Resolved


def emulator_sps(setup: Setup, steps: int, preprocess: bool, perturbation: VisualPerturbation | None = None) -> float:
    """Agent steps/s with random actions: the bare emulator, or the whole observation pipeline (under
    the training perturbation, or ``perturbation``)."""
    n = setup.ppo.num_envs
    envs = make_env(setup.env, n, setup.seed, (perturbation or setup.perturbation).copy(), setup.res.threads)
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
    res, batch = setup.res, setup.res.rollout_batch
    ppo = PPO(replace(setup.ppo, total_timesteps=batch * (iterations + 1)))
    envs = make_train_envs(setup.env, setup.perturbation, ppo.hp.num_envs, case.groups, setup.seed, res.threads)
    agent = build_agent(case.net, case.freeze, setup.head, envs[0].num_actions, res.ppo_precision, res.device)
    optimizer = make_optimizer(agent, ppo.hp.learning_rate, case.lr_scale)
    marks: list[tuple[float, dict]] = []  # (time, stats) at the end of each iteration

    def mark(iteration: int, global_step: int, stats: dict) -> None:
        marks.append((time.perf_counter(), stats))

    try:
        ppo.learn(agent, envs, optimizer, Tracker(), res.device, on_iteration_end=mark)
    finally:
        for env in envs:
            env.close()
    timed = [stats for _, stats in marks[1:]]  # the iterations after the warm-up
    return {
        "sps": batch * iterations / (marks[-1][0] - marks[0][0]),
        **{k: statistics.mean(s[k] for s in timed) for k in ("rollout_seconds", "update_seconds")},
    }


def pretrain_step_seconds(
    encoder: dict[str, Any], pretrain: PretrainSettings, objective: str | None, batch: int, steps: int, res: Resolved
) -> float:
    """Seconds per pretraining step (``objective``, with the ``encoder`` node's net and target) or per
    forward+backward of its net (``None``), after warm-up."""
    device, bf16 = res.device, res.pretrain_precision == "bf16"
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
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ppo_cases(cfg: DictConfig, res: Resolved) -> dict[str, PPOCase]:
    """(c) the configured encoder, and (d) a frozen ViT-Tiny (random weights: speed does not depend on them)."""
    vit = cfg.encoders.jepa
    groups = env_groups(cfg.env_groups, vit.name, cfg.ppo.num_envs, res.threads)
    return {
        "ppo": PPOCase(
            cfg.encoder.name, plain(cfg.encoder.net), cfg.encoder.freeze, cfg.encoder.lr_scale, res.env_groups
        ),
        "ppo_frozen_vit": PPOCase(vit.name, plain(vit.net), True, vit.lr_scale, groups),
    }


def measure(
    setup: Setup,
    cases: dict[str, PPOCase],
    encoders: dict[str, dict],
    pretrain: PretrainSettings,
    bc: BenchmarkSchema,
    perturbations: dict[str, VisualPerturbation],
) -> tuple[dict, dict, dict, dict]:
    """``bc.repeats`` rounds of every measurement: ``(agent steps/s, pretraining step seconds, PPO phases,
    pipeline steps/s under each of ``perturbations``, (g)'s seconds per acting step by phase)``.

    Pretraining is timed for each of ``encoders`` (name -> its ``encoders.<name>`` node): a JEPA step, an autoencoder
    step and a plain forward+backward of the net (keys ``<name>/jepa``, ``<name>/ae``, ``<name>/fwd_bwd``).
    """
    runs: dict[str, list[float]] = {k: [] for k in ("emulator", "pipeline", *cases)}
    step_runs: dict[str, list[float]] = {f"{n}/{k}": [] for n in encoders for k in ("jepa", "ae", "fwd_bwd")}
    phases = {k: {"rollout_seconds": [], "update_seconds": []} for k in cases}
    by_perturbation: dict[str, list[float]] = {name: [] for name in perturbations}
    profile: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for _ in range(bc.repeats):
        for phase, seconds in profiled_step(setup, cases["ppo"], bc.env_steps).items():
            profile[phase].append(seconds)
        for name, perturbation in perturbations.items():
            by_perturbation[name].append(emulator_sps(setup, bc.env_steps, True, perturbation))
        runs["emulator"].append(emulator_sps(setup, bc.env_steps, preprocess=False))
        runs["pipeline"].append(emulator_sps(setup, bc.env_steps, preprocess=True))
        for key, case in cases.items():
            measured = ppo_sps(setup, case, bc.ppo_iterations)
            runs[key].append(measured.pop("sps"))
            for phase, seconds in measured.items():
                phases[key][phase].append(seconds)
        for key in step_runs:
            name, kind = key.split("/")
            objective = None if kind == "fwd_bwd" else kind
            seconds = pretrain_step_seconds(
                encoders[name], pretrain, objective, bc.pretrain_batch, bc.pretrain_steps, setup.res
            )
            step_runs[key].append(seconds)
    return runs, step_runs, phases, by_perturbation, profile


def profiled_step(setup: Setup, case: PPOCase, env_steps: int) -> dict[str, float]:
    """(g): ``step_profile.acting_step_seconds`` of the agent of ``case`` on one pipeline of every env."""
    res, n = setup.res, setup.ppo.num_envs
    envs = make_env(setup.env, n, setup.seed, setup.perturbation.copy(), res.threads)
    agent = build_agent(case.net, case.freeze, setup.head, envs.num_actions, res.ppo_precision, res.device)
    try:
        return acting_step_seconds(agent, envs, max(1, env_steps // n), res.device)
    finally:
        envs.close()


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict:
    """Run the measurements, print a table, write ``benchmark.json`` in the output directory."""
    bc: BenchmarkSchema = OmegaConf.to_object(cfg.benchmark)
    head = {"kind": cfg.head.kind, "width": cfg.head.width}
    setup = Setup(res.env(cfg.env), instantiate(cfg.perturbation), OmegaConf.to_object(cfg.ppo), head, cfg.seed, res)
    cases = ppo_cases(cfg, res)
    encoders = {name: plain(cfg.encoders[name]) for name in bc.pretrain_encoders}
    perturbations = {n: instantiate(suite_config(cfg.perturbations, n)) for n in bc.perturbations}
    runs, step_runs, phases, by_perturbation, profile = measure(
        setup, cases, encoders, OmegaConf.to_object(cfg.pretrain), bc, perturbations
    )
    pert_med = {k: statistics.median(v) for k, v in by_perturbation.items()}
    med = {k: statistics.median(v) for k, v in runs.items()}
    step_med = {k: statistics.median(v) for k, v in step_runs.items()}
    phase_med = {k: {p: statistics.median(v) for p, v in ph.items()} for k, ph in phases.items()}
    batch, device = res.rollout_batch, res.device
    # What the emulator and the update allow together: PPO's ceiling when acting costs nothing but emulation.
    ceiling = batch / (batch / med["emulator"] + phase_med["ppo"]["update_seconds"])
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": res.threads,
        "num_envs": setup.ppo.num_envs,
        "encoder": cases["ppo"].encoder,
        "autocast": setup.ppo.autocast,
        "native_bf16": native_bf16(device),
        "ppo_precision": "bf16" if res.ppo_precision == "bf16" else "float32",
        "env_groups": res.env_groups,
        "pipeline": f"torch on {res.frames_device}" if res.frames_device else "opencv",
        "freed_memory_kept": retain_freed_memory(),
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
        "pretrain_batch": bc.pretrain_batch,
        "pretrain_step_seconds": step_runs,
        "pretrain_frames_per_sec": {k: bc.pretrain_batch / v for k, v in step_med.items()},
        "pretrain_over_fwd_bwd": {
            k: step_med[k] / step_med[f"{k.split('/')[0]}/fwd_bwd"] for k in step_med if not k.endswith("fwd_bwd")
        },
        "pipeline_sps_by_perturbation": by_perturbation,
        "num_steps": setup.ppo.num_steps,
        "acting_step_seconds_runs": profile,
        "acting_step_seconds": {k: statistics.median(v) for k, v in profile.items()},
        # A perturbation's cost: the clean pipeline's speed over the pipeline's under it (1: free).
        "perturbation_cost": {k: med["pipeline"] / v for k, v in pert_med.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print("\n".join(report_lines(result, batch)))
    (out / "benchmark.json").write_text(json.dumps(result, indent=2))
    return result
