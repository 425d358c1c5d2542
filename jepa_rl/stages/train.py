"""``stage=train``: pretrain the encoder if it needs it, train PPO (resumable), evaluate it under the suite.

Writes ``results.json`` (the outputs contract), ``checkpoint.pt`` and ``episodes.csv`` in the job's
directory, and logs to the job's W&B run.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain, results_fingerprint, training_fingerprint
from jepa_rl.config.hydra_runtime import job_group, sweep_tags
from jepa_rl.config.resolve import Resolved, encoder_source
from jepa_rl.config.validate import build_agent_of, build_pipeline, require, settings
from jepa_rl.envs.perturbations import VisualPerturbation, suite_config
from jepa_rl.envs.pipeline import make_train_envs, random_play_observations
from jepa_rl.evaluation.suite import EvalSetup, final_evaluation, pixel_perturbations, with_snapshots
from jepa_rl.models.agent import BlindEncoder, build_agent, build_encoder, make_optimizer, require_sight
from jepa_rl.models.heads import trained_parameters
from jepa_rl.pretrain.encoder_cache import standardise_features
from jepa_rl.rl.checkpointing import checkpointer, restore
from jepa_rl.rl.ppo import PPO
from jepa_rl.runtime import preemption
from jepa_rl.runtime.checkpoint import CHECKPOINT_NAME
from jepa_rl.runtime.json_files import write_json
from jepa_rl.runtime.resumption import checkpoint_to_resume, finished_results, keep_rows_until
from jepa_rl.runtime.seeding import EVAL_GAMES, SIGHT_GAMES, TRAIN_GAMES, seed_everything
from jepa_rl.runtime.tracking import stable_run_id, tracker_session

log = logging.getLogger(__name__)


def check(cfg: DictConfig) -> None:
    """Build one environment of the pipeline, the agent and its optimizer (and pretrainer), PPO, the settings."""
    build_pipeline(cfg)
    build_agent_of(cfg)
    ppo = PPO(settings(cfg.ppo, "ppo"))
    ev = settings(cfg.eval, "eval")
    require(
        ev.snapshots <= ppo.num_iterations,
        f"eval.snapshots={ev.snapshots} is more than the {ppo.num_iterations} PPO iterations of training; "
        f"set eval.snapshots to at most {ppo.num_iterations}",
    )
    require(
        ppo.hp.augment == "none" or not cfg.encoder.freeze,
        f"ppo.augment={ppo.hp.augment} augments the frames the encoder sees, but encoder={cfg.encoder.name} is "
        "frozen (its features are computed once per step); use it with an encoder trained end to end",
    )
    if ev.episodes == 0:  # invariance only: compares clean with the pixel perturbations of the suite
        named = {n: instantiate(suite_config(cfg.perturbations, n)) for n in ev.suite}
        require(
            bool(pixel_perturbations(ev.suite, named)),
            f"eval.episodes=0 measures policy invariance only, which needs a perturbation of the pixels besides "
            f"clean in eval.suite={list(ev.suite)}; add one (e.g. noise) or set eval.episodes above 0",
        )
    settings(cfg.logger, "logger")
    if cfg.encoder.weights:  # given weights: a dead encoder is refused before any work
        encoder = build_encoder(plain(cfg.encoder.net), True, cfg.encoder.weights)
        frames = sight_frames(plain(cfg.env), cfg.seed, torch.device("cpu"))
        try:
            require_sight(encoder, frames, encoder_named(cfg, cfg.encoder.weights))
        except BlindEncoder as e:
            raise ConfigError(str(e)) from None


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict[str, Any]:
    """Train (or resume) and evaluate the job ``cfg``; returns what ``results.json`` holds."""
    results_path, ckpt_path = out / "results.json", out / CHECKPOINT_NAME
    results_config = results_fingerprint(cfg)
    done = finished_results(results_path, results_config)
    if done is not None:
        log.info("%s exists: this job is complete, nothing to do", results_path)
        return done
    seed, enc, ev = cfg.seed, cfg.encoder, OmegaConf.to_object(cfg.eval)
    env, net = res.env(cfg.env), plain(enc.net)
    ppo = PPO(OmegaConf.to_object(cfg.ppo))
    fingerprint = training_fingerprint(cfg)
    perturbation: VisualPerturbation = instantiate(cfg.perturbation)
    evaluation = evaluation_setup(cfg, res)
    log.info("%s", plan(cfg, ppo, ev))
    logger = asdict(OmegaConf.to_object(cfg.logger))
    logger.update(group=job_group(logger["group"]), tags=[*logger["tags"], *sweep_tags()])

    state = checkpoint_to_resume(ckpt_path, fingerprint)
    start_iteration = state["iteration"] if state else 0
    source = encoder_source(cfg, res)
    # A resumed run has its (possibly pretrained) encoder in the checkpoint already.
    weights = None if state else source.weights(net, enc.objective, enc.target, enc.weights, out, enc.horizon)
    # Seeded after pretraining (which seeds torch itself): the agent's initial weights never depend
    # on whether its encoder was in the cache.
    seed_everything(seed + start_iteration)
    # A resumed segment starts fresh games with seeds of its own, not a replay of the first ones.
    env_seed = (seed, TRAIN_GAMES, start_iteration)
    envs = make_train_envs(env, perturbation, ppo.hp.num_envs, res.env_groups, env_seed, res.threads)
    agent = build_agent(net, enc.freeze, plain(cfg.head), envs[0].num_actions, res.ppo_precision, res.device, weights)
    optimizer = make_optimizer(agent, ppo.hp.learning_rate, enc.lr_scale)
    if state:
        kept = restore(state, agent, optimizer)
    else:
        require_sight(agent.encoder, sight_frames(env, seed, res.device), encoder_named(cfg, weights))
        features = standardise_features(agent, source, enc.freeze, weights)
        kept = {"encoder_weights": str(weights) if weights else None, "feature_statistics": features, "snapshots": []}
    # Episodes logged after the checkpoint will be played again: drop them (all of them on a fresh start).
    keep_rows_until(out / "episodes.csv", state["global_step"] if state else -1)

    run_id = state["run_id"] if state else stable_run_id(out)
    with tracker_session(**logger, config=plain(cfg), run_dir=out, run_id=run_id) as tracker:
        train_stats = state["train_stats"] if state else {}
        if start_iteration < ppo.num_iterations:
            agent.train()
            save = checkpointer(agent, optimizer, tracker, ckpt_path, ppo, cfg.checkpoint_every, fingerprint, kept)
            on_end = with_snapshots(save, agent, evaluation, tracker, ppo.num_iterations, kept["snapshots"])
            with preemption.deferred():
                train_stats = ppo.learn(
                    agent, envs, optimizer, tracker, res.device, start_iteration,
                    episodes_csv=out / "episodes.csv", on_iteration_end=on_end,
                )  # fmt: skip
        for group in envs:
            group.close()
        measured = final_evaluation(agent, evaluation, tracker, ppo.hp.total_timesteps)
        results = {
            "env_id": env["env_id"],
            "encoder": enc.name,
            "seed": seed,
            "total_timesteps": ppo.hp.total_timesteps,
            "train_sps": train_stats.get("train_sps"),
            "final_train_return": train_stats.get("final_train_return"),
            "train_perturbation": perturbation.name,
            "eval_sticky_actions": ev.sticky_actions,
            "eval_greedy": ev.greedy,
            "max_frames": env["max_frames"],
            **measured,
            "snapshots": kept["snapshots"],
            "head": cfg.head.kind,
            "trained_parameters": {
                "encoder": trained_parameters(agent.encoder),
                "heads": trained_parameters(agent.heads),
            },
            **{k: kept[k] for k in ("encoder_weights", "feature_statistics")},
            "config": results_config,
        }
        write_json(results, results_path)
        tracker.summary({"robustness_ratio": results["robustness_ratio"], "train_sps": results["train_sps"]})
        log.info("wrote %s", results_path)
        return results


def sight_frames(env: dict[str, Any], seed: int, device: torch.device) -> torch.Tensor:
    """Frames of random play that any encoder that sees tells apart (``require_sight``)."""
    return torch.as_tensor(random_play_observations(env, 32, (seed, SIGHT_GAMES)), device=device)


def encoder_named(cfg: DictConfig, weights: Any) -> str:
    frozen = ", frozen" if cfg.encoder.freeze else ""
    return f"encoder={cfg.encoder.name}{frozen}" + (f" with weights {weights}" if weights else "")


def plan(cfg: DictConfig, ppo: PPO, ev: Any) -> str:
    """What the job will do, in one line, before it starts (its ETA is logged once each phase runs)."""
    pretrain = f"pretrain {cfg.encoder.objective} (or reuse it), then " if cfg.encoder.objective else ""
    return (
        f"job: experiment={cfg.experiment_name} encoder={cfg.encoder.name} env={cfg.env.name} seed={cfg.seed}: "
        f"{pretrain}train PPO for {ppo.hp.total_timesteps:,} agent steps ({ppo.num_iterations} updates), then "
        f"{ev.episodes} full games under each of {len(ev.suite)} perturbations ({', '.join(ev.suite)}), "
        f"random play and {ev.invariance_states} invariance states; the expected duration follows the first update, "
        "then progress and ETA every 20 s"
    )


def evaluation_setup(cfg: DictConfig, res: Resolved) -> EvalSetup:
    """How the job evaluates. The games' emulator seeds derive from the run's seed and ``eval.seed_offset``
    only: every perturbation, and every condition of a sweep with that seed, plays the same games (paired)."""
    ev = OmegaConf.to_object(cfg.eval)
    names = dict.fromkeys([*cfg.perturbations, *ev.suite, *ev.snapshot_suite])  # corruptions by name too
    named = {name: instantiate(suite_config(cfg.perturbations, name)) for name in names}
    games = (cfg.seed, EVAL_GAMES, ev.seed_offset)
    return EvalSetup(res.env(cfg.env), ev, named, games, res.device, res.threads, Path(cfg.cache_dir))
