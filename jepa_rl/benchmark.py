"""Throughput benchmark: PPO agent steps/s as a ratio of the emulator's own speed, measured in one run.

``python launch.py stage=benchmark`` measures, ``benchmark.repeats`` times each (median reported):
  (a) emulator: ale-py's vector env in the training configuration, random actions, no learning;
  (b) pipeline: (a) plus this project's perturbation, grayscale, resize and frame stack;
  (c) ppo: full PPO training (rollout + update) with the configured encoder;
and prints (c)/(a), plus the process's peak resident memory.
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from jepa_rl.agent import build_agent, make_optimizer
from jepa_rl.config import resolve_threads
from jepa_rl.run import make_train_env, pick_device
from jepa_rl.tracking import Tracker

log = logging.getLogger(__name__)


def emulator_sps(cfg: DictConfig, threads: int, steps: int, preprocess: bool) -> float:
    """Agent steps/s with random actions: the bare emulator, or the whole observation pipeline."""
    envs = make_train_env(cfg, cfg.seed, threads)
    rng = np.random.default_rng(cfg.seed)
    step = envs.step if preprocess else envs.ale.step
    try:
        envs.reset()
        n = envs.num_envs
        for _ in range(10):  # warm-up
            step(rng.integers(0, envs.num_actions, n, dtype=np.int32))
        start = time.perf_counter()
        for _ in range(steps // n):
            step(rng.integers(0, envs.num_actions, n, dtype=np.int32))
        return (steps // n) * n / (time.perf_counter() - start)
    finally:
        envs.close()


def ppo_sps(cfg: DictConfig, threads: int, iterations: int, device: torch.device) -> float:
    """Agent steps/s of PPO training (rollout and update) over ``iterations`` after one warm-up."""
    batch = cfg.ppo.num_envs * cfg.ppo.num_steps
    with open_dict(cfg):
        cfg.ppo.total_timesteps = batch * (iterations + 1)
    envs = make_train_env(cfg, cfg.seed, threads)
    agent = build_agent(cfg.encoder, envs.num_actions, cfg.ppo.autocast, device)
    optimizer = make_optimizer(agent, cfg.ppo.learning_rate, cfg.encoder.lr_scale)
    marks = []
    try:
        instantiate(cfg.ppo).learn(
            agent, envs, optimizer, Tracker(), device, on_iteration_end=lambda *_: marks.append(time.perf_counter())
        )
    finally:
        envs.close()
    return batch * iterations / (marks[-1] - marks[0])


def benchmark(cfg: DictConfig, out: Path) -> dict:
    """Run the measurements, print a table, write ``benchmark.json`` in the output directory."""
    bc = cfg.benchmark
    threads = resolve_threads(cfg.threads)
    torch.set_num_threads(threads)
    device = pick_device(cfg.device)
    runs: dict[str, list[float]] = {"emulator": [], "pipeline": [], "ppo": []}
    for _ in range(bc.repeats):
        runs["emulator"].append(emulator_sps(cfg, threads, bc.env_steps, preprocess=False))
        runs["pipeline"].append(emulator_sps(cfg, threads, bc.env_steps, preprocess=True))
        runs["ppo"].append(ppo_sps(cfg, threads, bc.ppo_iterations, device))
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": threads,
        "num_envs": cfg.ppo.num_envs,
        "encoder": cfg.encoder.name,
        "autocast": cfg.ppo.autocast,
        "runs": runs,
        "median_sps": med,
        "ppo_over_emulator": med["ppo"] / med["emulator"],
        "pipeline_over_emulator": med["pipeline"] / med["emulator"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    lines = [
        f"benchmark on {result['device']}, {threads} threads, {cfg.ppo.num_envs} envs, "
        f"encoder={cfg.encoder.name}, autocast={cfg.ppo.autocast}, median of {bc.repeats}"
    ]
    for key, label in (
        ("emulator", "(a) emulator only"),
        ("pipeline", "(b) + obs pipeline"),
        ("ppo", "(c) PPO training"),
    ):
        ratio = "" if key == "emulator" else f"   {label[:3]}/(a) = {med[key] / med['emulator']:.2f}"
        lines.append(f"  {label:<20} {med[key]:8.0f} agent steps/s{ratio}")
    lines.append(f"  peak RSS {result['peak_rss_mb']:.0f} MB")
    print("\n".join(lines))
    (out / "benchmark.json").write_text(json.dumps(result, indent=2))
    return result
