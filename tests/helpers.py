"""Shared test helpers: compose the real config, build components from the schemas' defaults, run launch.py."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import io
import itertools
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import forked_jobs
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import jepa_rl.config  # noqa: F401  (registers the config schemas, as launch.py does)
from jepa_rl.config.schema import NatureCNNSchema, ViTSchema
from jepa_rl.envs.pipeline import AtariPipeline, AtariSettings
from jepa_rl.models.agent import Agent
from jepa_rl.models.encoders import NatureCNN, ViTEncoder
from jepa_rl.models.heads import PolicyHeads
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.rl.ppo import PPO, PPOSettings

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Tiny but real: 4 envs, one 256-step rollout per update, one game per perturbation, 64 invariance states.
TINY = [
    "ppo.num_envs=4",
    "ppo.num_steps=64",
    "ppo.total_timesteps=512",
    "eval.episodes=1",
    "eval.num_envs=1",
    "checkpoint_every=256",
    "threads=1",
    "eval.invariance_states=64",  # 64 steps of one env, not 2048
]

# A multirun's report with 40-step gameplay GIFs (the default 400 plays each agent for seconds).
SHORT_GIFS = "hydra.callbacks.aggregate.gif_steps=40"

# Pretraining as small as it gets: 64 frames, two steps of 32.
TINY_PRETRAIN = [
    "pretrain.frames.num_frames=64",
    "pretrain.frames.num_envs=4",
    "pretrain.frames.keep_every=2",
    "pretrain.batch_size=32",
    "pretrain.epochs=1",
    "pretrain.log_every=1",
]


def compose_cfg(overrides: list[str] | None = None, hydra: bool = False) -> DictConfig:
    """The composed config, exactly as ``launch.py`` would see it (with ``hydra:`` when asked); a fresh copy.

    Hydra composes the defaults tree from the config-group choices, then applies the value overrides
    (``key=value``) to the result in order. Composing is what costs (a second or so): it is done once
    per set of group choices, and the value overrides are applied by Hydra's own step on a copy.
    """
    groups, values = [], []
    for override in OverridesParser.create().parse_overrides(list(overrides or [])):
        (groups if _is_group_choice(override) else values).append(override)
    if hydra or any(o.is_delete() or o.is_add() or o.is_force_add() for o in values):
        return copy.deepcopy(_composed(tuple(overrides or []), hydra))  # Hydra records them: compose whole
    cfg = copy.deepcopy(_composed(tuple(o.input_line for o in groups), hydra))
    ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    return cfg


def _is_group_choice(override: Override) -> bool:
    """``encoder=vit``, ``hydra/launcher=joblib``, ``+condition=cnn``: a choice in the defaults tree."""
    key = override.key_or_group
    return override.package is not None or "/" in key or (CONF / key.replace(".", "/")).is_dir()


@functools.cache
def _composed(overrides: tuple[str, ...], hydra: bool) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def schema_kwargs(schema: type, **overrides: Any) -> dict[str, Any]:
    """A schema's defaults (interpolations filled in by ``overrides``) as constructor keyword arguments."""
    values = {k: v for k, v in asdict(schema(**overrides)).items() if k != "_target_"}
    return {k: v for k, v in values.items() if k not in ("name", "env_id")}


def pipeline(game: str, num_envs: int, seed: Any, **overrides: Any) -> AtariPipeline:
    """An ``AtariPipeline`` with the ``env`` schema's settings, ``overrides`` replacing some."""
    fields = {f.name for f in dataclasses.fields(AtariSettings)}
    settings = AtariSettings(name=game, env_id=game, game=game, **{k: v for k, v in overrides.items() if k in fields})
    return AtariPipeline(settings, num_envs, seed, **{k: v for k, v in overrides.items() if k not in fields})


def ppo(**overrides: Any) -> PPO:
    """A ``PPO`` with the ``ppo`` schema's hyperparameters, ``overrides`` replacing some."""
    return PPO(PPOSettings(**overrides))


def vit(**overrides: Any) -> ViTEncoder:
    """The configured ViT-Tiny for 4-frame stacks (``ViTSchema``), ``overrides`` replacing some settings."""
    return ViTEncoder(**{**schema_kwargs(ViTSchema, in_channels=4), **overrides})


def cnn(**overrides: Any) -> NatureCNN:
    """The configured Nature-CNN for 4-frame stacks (``NatureCNNSchema``)."""
    return NatureCNN(**{**schema_kwargs(NatureCNNSchema, in_channels=4), **overrides})


def new_agent(encoder, num_actions: int = 4, kind: str = "trunk", width: int = 512, **kwargs: Any) -> Agent:
    """An ``Agent`` on ``encoder`` with the ``head`` group's default trunk (or ``kind`` / ``width``)."""
    heads = PolicyHeads(kind=kind, width=width, feature_dim=encoder.feature_dim, num_actions=num_actions)
    return Agent(encoder, heads, **kwargs)


HEAD = {"kind": "trunk", "width": 512}  # the head group's default, as build_agent takes it


def save_agent_checkpoint(agent: Agent, path: Path, net: dict) -> Path:
    """``agent`` (on the CNN ``net``, with the default trunk) in a checkpoint with what loading it needs,
    as the train stage writes one (``agent_from_checkpoint``)."""
    from jepa_rl.runtime.checkpoint import save_checkpoint

    config = {"encoder": {"net": net}, "head": HEAD, "ppo": {"autocast": "none"}}
    save_checkpoint({"agent": agent.state_dict(), "config": config, "num_actions": agent.num_actions}, path)
    return path


def pretrain_settings(overrides: list[str] | None = None) -> PretrainSettings:
    """``pretrain`` of the composed config as its schema dataclass."""
    return OmegaConf.to_object(compose_cfg(overrides).pretrain)


def built(node: DictConfig, **kwargs: Any) -> Any:
    """``instantiate`` a config node."""
    return instantiate(node, **kwargs)


def job_env(env: dict | None = None) -> dict[str, str]:
    """The environment of a job a test starts: W&B offline and quiet unless ``env`` says otherwise."""
    # Not the worker's WANDB_SERVICE: a test that ran W&B in-process started a service, and a job that
    # attached to it would share its run ids (a fresh shell's job starts its own). Nor
    # PYTHONDONTWRITEBYTECODE: the jobs write the bytecode of what they import once (see conftest.py).
    inherited = {k: v for k, v in os.environ.items() if k not in ("WANDB_SERVICE", "PYTHONDONTWRITEBYTECODE")}
    return {**inherited, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}


def start_job(args: list[str], cwd: Path, log: Path, env: dict | None = None) -> forked_jobs.Job:
    """``launch.py ARGS`` in the background (forked, see ``forked_jobs``), its output in ``log``."""
    log.write_text("")
    return forked_jobs.start(ROOT / "launch.py", args, cwd, job_env(env), log, log)


def launch(
    args: list[str], tmp_path: Path, env: dict | None = None, fresh: bool = False
) -> subprocess.CompletedProcess:
    """Run ``launch.py ARGS`` in ``tmp_path`` to its end: forked from the worker's preloaded interpreter, or
    (``fresh``) as ``python launch.py ARGS``, for what a new interpreter alone shows (its stderr contract)."""
    command = [sys.executable, str(ROOT / "launch.py"), *args]
    if fresh:
        return subprocess.run(command, env=job_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    with tempfile.TemporaryDirectory() as streams:
        out, err = Path(streams) / "stdout", Path(streams) / "stderr"
        job = forked_jobs.start(ROOT / "launch.py", args, tmp_path, job_env(env), out, err)
        try:
            code = job.wait(timeout=600)
        finally:
            if job.returncode is None:
                job.send_signal(signal.SIGKILL)
        return subprocess.CompletedProcess(command, code, out.read_text(), err.read_text())


# The perturbations of a hand-made sweep cell.
SUITE = ["clean", "noise", "hard"]


def fake_cell(
    root, encoder, seed, means, env="breakout", overrides=(), suite=SUITE, job=None, results=True, **measured
):
    """A job directory as a sweep leaves it: .hydra/config.yaml, overrides.yaml and (finished) results.json.

    ``means`` are the mean returns of ``suite``; the robustness ratio is None where the clean mean is <= 0.
    ``measured`` adds keys to results.json as they are (``random_policy``, ``retention``, ``snapshots``...).
    """
    job = root / (job or f"{env}/{encoder}/seed{seed}")
    (job / ".hydra").mkdir(parents=True)
    cfg = compose_cfg([f"env={env}", f"encoder={encoder}", f"seed={seed}", *overrides])
    OmegaConf.save(cfg, job / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create([f"encoder={encoder}", f"seed={seed}", *overrides]), job / ".hydra" / "overrides.yaml"
    )
    if not results:
        return job
    ev = {p: {"mean": m, "std": 0.0, "returns": [m]} for p, m in zip(suite, means, strict=True)}
    clean = ev.get("clean", {}).get("mean", 0)
    ratio = float(np.mean([r["mean"] / clean for p, r in ev.items() if p != "clean"])) if clean > 0 else None
    results = {"env_id": cfg.env.env_id, "encoder": encoder, "seed": seed, "eval": ev, "robustness_ratio": ratio}
    results.update(measured)
    (job / "results.json").write_text(json.dumps(results))
    return job


def encoded(labels: np.ndarray, dim: int = 64, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    """Features that carry ``labels`` linearly: a random embedding per value, a linear ramp, and noise."""
    rng = np.random.default_rng(seed)
    embedding = np.random.default_rng(1234).normal(size=(256, dim))  # same code for every split
    ramp = np.random.default_rng(4321).normal(size=dim)
    x = embedding[labels] + np.outer(labels / 255.0, ramp) * 4 + noise * rng.normal(size=(len(labels), dim))
    return (x * 3 + 7).astype(np.float32)  # off-centre and scaled: the probes must standardise


def played_frames(num_frames: int) -> np.ndarray:
    """Frame stacks of random Breakout play (4 envs, every second step), as frame collection keeps them."""
    from jepa_rl.pretrain.frame_sets import collect

    envs = pipeline("breakout", 4, 0, record_ram=True, num_threads=1)
    try:
        return collect(envs, num_frames=num_frames, keep_every=2, seed=0)["frames"]
    finally:
        envs.close()


# What a file on disk can be instead of what this project wrote: the kinds every loader is tested with.
CORRUPTIONS = ("random_bytes", "zero_length", "truncated", "foreign_pickle")


def corrupt(path: Path, kind: str) -> Path:
    """Overwrite ``path`` with a corruption of ``kind``: random bytes, nothing, its first half, or the
    pickle of another program's object (which torch's ``weights_only`` loader refuses)."""
    data = path.read_bytes() if path.exists() else b""
    path.write_bytes(
        {
            "random_bytes": np.random.default_rng(0).bytes(4096),
            "zero_length": b"",
            "truncated": data[: len(data) // 2],
            "foreign_pickle": pickle.dumps(argparse.Namespace(note="another program's state")),
        }[kind]
    )
    return path


def leaning_agent(action: int, p: float, num_actions: int = 4, **kwargs: Any) -> Agent:
    """An agent (CNN, default trunk) that ignores its pixels and plays ``action`` with probability ``p``,
    every other action equally often: its actor's weights are zero and its biases set the log-odds.
    With ``p`` well under 1, sampled play leaves ``action`` often; greedy play never does."""
    agent = new_agent(cnn(), num_actions=num_actions, **kwargs)
    with torch.no_grad():
        agent.heads.actor.weight.zero_()
        agent.heads.actor.bias.zero_()
        agent.heads.actor.bias[action] = math.log(p * (num_actions - 1) / (1 - p))
    return agent


class ActionLog:
    """A ``make_env`` whose pipelines note every action sent to their ``step`` (flattened, in order)."""

    def __init__(self, make_env: Any) -> None:
        self.inner, self.actions = make_env, []

    def __call__(self, *args: Any, **kwargs: Any) -> AtariPipeline:
        envs = self.inner(*args, **kwargs)
        step = envs.step

        def noted(actions: Any, watched: Any = None) -> Any:
            self.actions.extend(np.asarray(actions).tolist())
            return step(actions, watched)

        envs.step = noted
        return envs


def report_often(monkeypatch: Any, terminal: bool) -> io.StringIO:
    """Make ``runtime.progress`` see 30 s pass at every look at the clock, and stderr be a terminal (a bar)
    or a file (log lines): each phase's progress then reports at every step. Returns what the bar drew."""
    drawn = io.StringIO()
    drawn.isatty = lambda: terminal  # type: ignore[method-assign]
    ticks = itertools.count(0.0, 30.0)
    monkeypatch.setattr("jepa_rl.runtime.progress.time.monotonic", lambda: next(ticks))
    monkeypatch.setattr("jepa_rl.runtime.progress.sys.stderr", drawn)
    return drawn
