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

from jepa_rl import preemption
from jepa_rl.agent import Agent, build_agent, make_optimizer
from jepa_rl.checkpoint import CHECKPOINT_NAME, save_checkpoint
from jepa_rl.config.resolve import Resolved
from jepa_rl.config.schema import EvalSchema
from jepa_rl.config.validate import build, build_agent_of, build_pipeline, settings
from jepa_rl.encoder_cache import encoder_source
from jepa_rl.envs import make_eval_env, make_train_envs
from jepa_rl.evaluate import evaluate, robustness_ratio
from jepa_rl.files import write_json
from jepa_rl.hydra_runtime import job_group, sweep_tags
from jepa_rl.perturbations import VisualPerturbation
from jepa_rl.ppo import PPO
from jepa_rl.seeding import EVAL_GAMES, TRAIN_GAMES, seed_everything
from jepa_rl.stages.resume import (
    finished_results,
    keep_rows_until,
    plain,
    results_fingerprint,
    resume_state,
    training_fingerprint,
)
from jepa_rl.tracking import Tracker, stable_run_id, tracker_session

log = logging.getLogger(__name__)


def check(cfg: DictConfig) -> None:
    """Build one environment of the pipeline, the agent and its optimizer (and pretrainer), PPO, the settings."""
    build_pipeline(cfg)
    build_agent_of(cfg)
    build(cfg.ppo, "ppo")
    settings(cfg.eval, "eval")
    settings(cfg.logger, "logger")


def run(cfg: DictConfig, out: Path, res: Resolved) -> dict[str, Any]:
    """Train (or resume) and evaluate the job ``cfg``; returns what ``results.json`` holds."""
    results_path, ckpt_path = out / "results.json", out / CHECKPOINT_NAME
    results_config = results_fingerprint(cfg)
    done = finished_results(results_path, results_config)
    if done is not None:
        log.info("%s exists: this job is complete, nothing to do", results_path)
        return done
    seed, enc, ev = cfg.seed, cfg.encoder, OmegaConf.to_object(cfg.eval)
    env, net = plain(cfg.env), plain(enc.net)
    ppo: PPO = instantiate(cfg.ppo)
    fingerprint = training_fingerprint(cfg)
    perturbation: VisualPerturbation = instantiate(cfg.perturbation)
    suite = {name: instantiate(cfg.perturbations[name]) for name in ev.suite}
    logger = asdict(OmegaConf.to_object(cfg.logger))
    logger.update(group=job_group(logger["group"]), tags=[*logger["tags"], *sweep_tags()])

    state = resume_state(ckpt_path, fingerprint)
    start_iteration = state["iteration"] if state else 0
    seed_everything(seed + start_iteration)
    # A resumed segment starts fresh games with seeds of its own, not a replay of the first ones.
    env_seed = (seed, TRAIN_GAMES, start_iteration)
    # A resumed run has its (possibly pretrained) encoder in the checkpoint already.
    weights = None if state else encoder_source(cfg, res).weights(net, enc.objective, enc.weights, out)
    weights_used = state.get("encoder_weights") if state else (str(weights) if weights else None)
    envs = make_train_envs(env, perturbation, ppo.num_envs, res.env_groups, env_seed, res.threads)
    agent = build_agent(net, enc.freeze, envs[0].num_actions, res.ppo_precision, res.device, weights)
    optimizer = make_optimizer(agent, ppo.learning_rate, enc.lr_scale)
    if state:
        agent.load_state_dict(state["agent"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    # Episodes logged after the checkpoint will be played again: drop them (all of them on a fresh start).
    keep_rows_until(out / "episodes.csv", state["global_step"] if state else -1)

    run_id = state["run_id"] if state else stable_run_id(out)
    with tracker_session(**logger, config=plain(cfg), run_dir=out, run_id=run_id) as tracker:
        train_stats = state["train_stats"] if state else {}
        if start_iteration < ppo.num_iterations:
            agent.train()
            save = checkpointer(
                agent, optimizer, tracker, ckpt_path, ppo, cfg.checkpoint_every, fingerprint, weights_used
            )
            with preemption.deferred():
                train_stats = ppo.learn(
                    agent, envs, optimizer, tracker, res.device, start_iteration,
                    episodes_csv=out / "episodes.csv", on_iteration_end=save,
                )  # fmt: skip
        for group in envs:
            group.close()
        scores = evaluate_suite(agent, env, suite, ev, (seed, EVAL_GAMES, ev.seed_offset), res, tracker, ppo)
        results = {
            "env_id": env["env_id"],
            "encoder": enc.name,
            "seed": seed,
            "total_timesteps": ppo.total_timesteps,
            "train_sps": train_stats.get("train_sps"),
            "final_train_return": train_stats.get("final_train_return"),
            "train_perturbation": perturbation.name,
            "eval_sticky_actions": ev.sticky_actions,
            "eval_greedy": ev.greedy,
            "eval": scores,
            "robustness_ratio": robustness_ratio(scores),
            "encoder_weights": weights_used,
            "config": results_config,
        }
        write_json(results, results_path)
        tracker.summary({"robustness_ratio": results["robustness_ratio"], "train_sps": results["train_sps"]})
        log.info("wrote %s", results_path)
        return results


def checkpointer(
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    tracker: Tracker,
    path: Path,
    ppo: PPO,
    every: int,
    fingerprint: dict[str, Any],
    weights: str | None,
):
    """A callback saving a checkpoint every ``every`` agent steps, after the last update, and when the
    cluster signals a preemption or timeout (then handing the signal over: submitit requeues the job)."""
    run_id = tracker.run.id if tracker.run else stable_run_id(path.parent)

    def save(iteration: int, global_step: int, train_stats: dict) -> None:
        boundary = global_step // every != (global_step - ppo.batch_size) // every or iteration == ppo.num_iterations
        if not boundary and not preemption.pending():
            return
        save_checkpoint(
            {
                "agent": agent.state_dict(),
                "optimizer": optimizer.state_dict(),
                "iteration": iteration,
                "global_step": global_step,
                "torch_rng": torch.get_rng_state(),
                "config": fingerprint,
                "run_id": run_id,
                "train_stats": train_stats,
                "encoder_weights": weights,
            },
            path,
        )
        if preemption.pending():
            log.warning("signalled: checkpoint at step %d in %s; a rerun resumes from it", global_step, path)
            tracker.preempting()
            preemption.hand_over()

    return save


def evaluate_suite(
    agent: Agent,
    env: dict[str, Any],
    suite: dict[str, VisualPerturbation],
    ev: EvalSchema,
    seed: tuple[int, ...],
    res: Resolved,
    tracker: Tracker,
    ppo: PPO,
) -> dict[str, dict]:
    """Full games under every perturbation of ``suite``, logged as they finish and as a table."""
    step = ppo.total_timesteps

    def env_factory(num_envs: int, perturbation: VisualPerturbation):
        return make_eval_env(env, num_envs, perturbation, seed, ev.sticky_actions, res.threads)

    def report(name: str, r: dict) -> None:
        log.info("eval %-13s mean %8.2f  std %7.2f  (%d games)", name, r["mean"], r["std"], len(r["returns"]))
        metrics = {f"eval/{name}/mean": r["mean"], f"eval/{name}/std": r["std"]}
        tracker.log(metrics, step=step, again=True)  # evaluation reruns whole after a requeue

    scores = evaluate(agent, env_factory, suite, ev.episodes, ev.num_envs, res.device, ev.greedy, on_result=report)
    tracker.table(
        "eval/table",
        ["perturbation", "mean", "std", "episodes"],
        [[n, r["mean"], r["std"], len(r["returns"])] for n, r in scores.items()],
        step=step,
    )
    return scores
