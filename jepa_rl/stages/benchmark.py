"""``stage=benchmark``: PPO agent steps/s as a ratio of the emulator's own speed, measured in one run.

``python launch.py stage=benchmark`` builds what ``benchmark.throughput`` measures (its docstring lists
(a)-(g)) from the config, prints the table and writes ``benchmark.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl.benchmark.table import report_lines
from jepa_rl.benchmark.throughput import Machine, PPOCase, Rounds, Setup, measure, summary
from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain
from jepa_rl.config.resolve import Resolved, env_groups
from jepa_rl.config.schema import BenchmarkSchema
from jepa_rl.config.validate import build_encoder_of, settings
from jepa_rl.envs.perturbations import suite_config
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


def shared_setup(cfg: DictConfig, res: Resolved) -> Setup:
    """What every measurement shares: the training env, perturbation, PPO settings and head, on this machine."""
    machine = Machine(
        res.device, res.threads, res.ppo_precision, res.pretrain_precision, res.env_groups, res.frames_device
    )
    head = {"kind": cfg.head.kind, "width": cfg.head.width}
    ppo = OmegaConf.to_object(cfg.ppo)
    return Setup(res.env(cfg.env), instantiate(cfg.perturbation), ppo, head, cfg.seed, machine)


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


def print_part(label: str, medians: dict[str, float]) -> None:
    """One line as each measurement finishes (the table follows at the end)."""
    print(f"  done: {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in medians.items()), flush=True)


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict[str, Any]:
    """Run the measurements, print a table, write ``benchmark.json`` in the output directory."""
    bc: BenchmarkSchema = OmegaConf.to_object(cfg.benchmark)
    setup = shared_setup(cfg, res)
    cases = ppo_cases(cfg, res)
    encoders = {name: plain(cfg.encoders[name]) for name in bc.pretrain_encoders}
    perturbations = {n: instantiate(suite_config(cfg.perturbations, n)) for n in bc.perturbations}
    rounds = Rounds(bc.repeats, bc.env_steps, bc.ppo_iterations, bc.pretrain_batch, bc.pretrain_steps, bc.eval_frames)
    suite = {n: instantiate(suite_config(cfg.perturbations, n)) for n in cfg.eval.suite} if bc.evaluation else None
    pretrain = OmegaConf.to_object(cfg.pretrain)
    measured = measure(setup, cases, encoders, pretrain, rounds, perturbations, suite, on_part=print_part)
    result = summary(setup, cases["ppo"].encoder, measured, bc.pretrain_batch)
    print("\n".join(report_lines(result, setup.rollout_batch)))
    (out / "benchmark.json").write_text(json.dumps(result, indent=2))
    return result
