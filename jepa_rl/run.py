"""The job: validate the config, then train PPO (resumable) and evaluate it under the suite."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl import preemption
from jepa_rl.agent import Agent, build_agent, make_optimizer
from jepa_rl.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from jepa_rl.config import build_perturbation, check_writable, resolve_threads, short_dirname, validate
from jepa_rl.envs import AtariPipeline, make_env
from jepa_rl.evaluate import evaluate, robustness_ratio
from jepa_rl.perturbations import VisualPerturbation
from jepa_rl.pretrained import encoder_weights, pretrain_stage
from jepa_rl.tracking import Tracker, stable_run_id, start_tracker
from jepa_rl.utils import pick_device, retain_freed_memory, seed_everything, write_json

log = logging.getLogger(__name__)

# Emulator seeds derive from (seed, purpose, ...): training and evaluation never play the same game.
TRAIN_GAMES, EVAL_GAMES = 0, 1
# Config sections that define what a checkpoint was trained on: a resume must match them.
TRAINING_KEYS = ("seed", "env", "encoder", "perturbation", "ppo", "pretrain")


def output_dir() -> Path:
    """This job's Hydra output directory (Hydra 1.3 does not chdir into it)."""
    return Path(HydraConfig.get().runtime.output_dir)


def job_threads(requested: int) -> int:
    """Threads for this job: ``threads`` if set, else submitit's ``cpus_per_task``, else the CPUs
    shared among joblib's ``n_jobs`` parallel jobs (all of them for a single job)."""
    launcher = HydraConfig.get().launcher
    if requested <= 0 and launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    n = launcher.get("n_jobs") or 1
    return resolve_threads(requested, len(os.sched_getaffinity(0)) if n <= 0 else int(n))


def sweep_id() -> str | None:
    """``<sweep name>/<timestamp>`` of this job's multirun (the last two parts of the sweep dir), else None."""
    from hydra.types import RunMode

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    return "/".join(Path(hc.sweep.dir).parts[-2:])


def sweep_tags() -> list[str]:
    """A tag shared by every run of a sweep, so a W&B dashboard filters to it."""
    sid = sweep_id()
    return [f"sweep:{sid}"[:64]] if sid else []


def condition_group(group: str, override_dirname: str, task_overrides: Sequence[str]) -> str:
    """The W&B group of a job: ``logger.group`` plus the overrides that set its condition apart.

    ``override_dirname`` leaves out the seed (``hydra.job.config.override_dirname``), so a condition's
    seeds share a group while conditions differing only in, e.g., ``encoder.lr_scale`` do not. A
    ``logger.group`` given on the command line is used as it is. W&B caps group names at 128 characters.
    """
    if not override_dirname or any(o.startswith("logger.group=") for o in task_overrides):
        return group
    return short_dirname(f"{group}-{override_dirname}", 128)


def record_failure(error: Exception) -> bool:
    """In a multirun, write the error to the job's ``error.txt`` and return True (the sweep goes on)."""
    from hydra.types import RunMode

    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return False
    import traceback

    out = output_dir()
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(traceback.format_exception(error))
    (out / "error.txt").write_text(f"{text}\n{type(error).__name__}: {error}\n")
    log.error("this cell failed (%s: %s); recorded in %s", type(error).__name__, error, out / "error.txt")
    return True


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Entry point called by ``launch.py``: dispatch on ``cfg.stage``."""
    out = output_dir()
    validate(cfg)
    check_writable(out)
    retain_freed_memory()
    if cfg.stage == "benchmark":
        from jepa_rl.benchmark import benchmark

        return benchmark(cfg, out)
    threads = job_threads(cfg.threads)
    torch.set_num_threads(threads)
    with preemption.guard():  # SLURM's warning signals: checkpoint, then requeue
        if cfg.stage == "pretrain":
            return pretrain_stage(cfg, out, pick_device(cfg.device), threads)
        if cfg.stage == "probe":
            from jepa_rl.probe_stage import probe_stage

            return probe_stage(cfg, out, pick_device(cfg.device), threads)
        return train_and_evaluate(cfg, out, threads)


def training_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config sections a checkpoint depends on (stored in it, compared on resume)."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
        for k in TRAINING_KEYS
    }


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """Dotted key of the first difference between two nested dicts (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    return None if a == b else prefix.rstrip(".")


def keep_rows_until(csv_path: Path, global_step: int) -> None:
    """Drop episode rows logged after ``global_step`` (work the resumed run will redo)."""
    if not csv_path.exists():
        return
    rows = [r for r in csv_path.read_text().splitlines() if r and int(r.split(",")[0]) <= global_step]
    csv_path.write_text("".join(r + "\n" for r in rows))


def env_groups(cfg: DictConfig, threads: int) -> int:
    """``env_groups``; ``auto`` is 2 for the CNN with 2 or more ``threads`` (0: every CPU), and else 1.

    The CNN's forward pass costs less than emulating a step, so one group's emulators can run on one
    core while the policy acts for the other group on another. A ViT's forward pass needs every core,
    and a one-thread job has no second core to overlap onto (two groups measured slower there).
    """
    if cfg.env_groups != "auto":
        return int(cfg.env_groups)
    return 2 if cfg.encoder.name == "cnn" and cfg.ppo.num_envs % 2 == 0 and resolve_threads(threads) >= 2 else 1


def make_train_envs(
    cfg: DictConfig, seed: int | Sequence[int], threads: int = 0, groups: int | None = None
) -> list[AtariPipeline]:
    """The training environments: the shared pipeline under the training perturbation, in ``groups``
    (default: ``env_groups``) pipelines that split ``ppo.num_envs`` and the emulator threads between
    them. Environment ``i`` gets the same emulator seed (``envs.env_seeds``) however they are grouped."""
    groups = groups or env_groups(cfg, threads)
    size, per_group = cfg.ppo.num_envs // groups, max(1, threads // groups) if threads else 0
    return [
        make_env(
            cfg.env, size, seed, build_perturbation(cfg.perturbation, "perturbation"), per_group, first_env=g * size
        )
        for g in range(groups)
    ]


def make_train_env(cfg: DictConfig, seed: int | Sequence[int], threads: int = 0) -> AtariPipeline:
    """All the training environments in one pipeline (the benchmark's emulator measurement, tests)."""
    return make_train_envs(cfg, seed, threads, groups=1)[0]


def make_eval_env(
    cfg: DictConfig, num_envs: int, perturbation: VisualPerturbation, seed: int | Sequence[int], threads: int = 0
) -> AtariPipeline:
    """The evaluation environments: the same pipeline, with evaluation's sticky-action setting."""
    return make_env(cfg.env, num_envs, seed, perturbation, num_threads=threads, sticky_actions=cfg.eval.sticky_actions)


def resume_state(cfg: DictConfig, ckpt_path: Path) -> dict[str, Any] | None:
    """The job's checkpoint to resume from (None: a fresh start); one trained with another config is refused."""
    if not ckpt_path.exists():
        return None
    state = load_checkpoint(ckpt_path)
    diff = first_difference(state["config"], training_fingerprint(cfg))
    if diff:
        raise CheckpointError(
            f"{ckpt_path} was trained with a different {diff}; "
            "rerun with the original config or choose a new hydra.run.dir"
        )
    log.info("resuming from %s at step %d", ckpt_path, state["global_step"])
    return state


def results_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config sections ``results.json`` depends on: training's and evaluation's."""
    suite = {name: OmegaConf.to_container(cfg.perturbations[name], resolve=True) for name in cfg.eval.suite}
    return {**training_fingerprint(cfg), "eval": OmegaConf.to_container(cfg.eval, resolve=True), "perturbations": suite}


def finished_results(cfg: DictConfig, path: Path) -> dict[str, Any] | None:
    """The job's ``results.json`` if this config produced it; None when there is work to do.

    Results of another training config are refused (a rerun must not relabel them). When only the
    evaluation settings changed, the final checkpoint is evaluated again.
    """
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    diff = first_difference(results.get("config", {}), results_fingerprint(cfg)) if "config" in results else None
    if diff is None:
        return results
    if diff.split(".")[0] in TRAINING_KEYS:
        raise CheckpointError(
            f"{path} holds results trained with a different {diff}; "
            "rerun with the original config or choose a new hydra.run.dir (hydra.sweep.dir for -m)"
        )
    log.info("%s was evaluated with a different %s: evaluating the trained agent again", path, diff)
    return None


def train_and_evaluate(cfg: DictConfig, out: Path, threads: int) -> dict[str, Any]:
    """Pretrain if needed, train (or resume) PPO, evaluate under ``eval.suite``, write ``results.json``."""
    results_path = out / "results.json"
    done = finished_results(cfg, results_path)
    if done is not None:
        log.info("%s exists: this job is complete, nothing to do", results_path)
        return done

    device = pick_device(cfg.device)
    ppo = instantiate(cfg.ppo)

    ckpt_path = out / CHECKPOINT_NAME
    state = resume_state(cfg, ckpt_path)
    start_iteration = state["iteration"] if state else 0
    seed_everything(cfg.seed + start_iteration)
    # A resumed segment starts fresh games with seeds of its own, not a replay of the first ones.
    env_seed = (cfg.seed, TRAIN_GAMES, start_iteration)
    # A resumed run has its (possibly pretrained) encoder in the checkpoint already.
    weights = None if state else encoder_weights(cfg, cfg.encoder, device, threads, out)
    weights_used = state.get("encoder_weights") if state else (str(weights) if weights else None)
    envs = make_train_envs(cfg, env_seed, threads)
    agent = build_agent(cfg.encoder, envs[0].num_actions, cfg.ppo.autocast, device, weights)
    optimizer = make_optimizer(agent, cfg.ppo.learning_rate, cfg.encoder.lr_scale)
    if state:
        agent.load_state_dict(state["agent"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    # Episodes logged after the checkpoint will be played again: drop them (all of them on a fresh start).
    keep_rows_until(out / "episodes.csv", state["global_step"] if state else -1)

    logger, hc = OmegaConf.to_container(cfg.logger, resolve=True), HydraConfig.get()
    logger["group"] = condition_group(logger["group"], hc.job.override_dirname, hc.overrides.task)
    logger["tags"] = [*logger["tags"], *sweep_tags()]
    tracker = start_tracker(
        **logger,
        config=OmegaConf.to_container(cfg, resolve=True),
        run_dir=out,
        run_id=state["run_id"] if state else stable_run_id(out),
    )
    try:
        train_stats = state["train_stats"] if state else {}
        if start_iteration < ppo.num_iterations:
            agent.train()
            save = make_checkpointer(cfg, agent, optimizer, tracker, ckpt_path, ppo.num_iterations, weights_used)
            with preemption.deferred():
                train_stats = ppo.learn(
                    agent,
                    envs,
                    optimizer,
                    tracker,
                    device,
                    start_iteration,
                    episodes_csv=out / "episodes.csv",
                    on_iteration_end=save,
                )
        for env in envs:
            env.close()
        results = evaluate_and_report(cfg, agent, device, tracker, threads, train_stats)
        results["encoder_weights"] = weights_used
        results["config"] = results_fingerprint(cfg)
        write_json(results, results_path)
        tracker.summary({"robustness_ratio": results["robustness_ratio"], "train_sps": results["train_sps"]})
        log.info("wrote %s", results_path)
        return results
    except BaseException:
        tracker.finish(exit_code=1)
        raise
    finally:
        tracker.finish()


def make_checkpointer(cfg, agent, optimizer, tracker: Tracker, path: Path, num_iterations: int, weights: str | None):
    """A callback saving a checkpoint every ``checkpoint_every`` steps, after the last update, and when the
    cluster signals a preemption or timeout (then handing the signal over: submitit requeues the job)."""
    every = cfg.checkpoint_every
    batch = cfg.ppo.num_envs * cfg.ppo.num_steps
    fingerprint = training_fingerprint(cfg)
    run_id = tracker.run.id if tracker.run else stable_run_id(path.parent)

    def save(iteration: int, global_step: int, train_stats: dict) -> None:
        boundary = global_step // every != (global_step - batch) // every or iteration == num_iterations
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


def evaluate_and_report(cfg, agent: Agent, device, tracker: Tracker, threads: int, train_stats) -> dict:
    """Run the evaluation suite, log it, and assemble the ``results.json`` content."""
    ev = cfg.eval
    suite = {name: build_perturbation(cfg.perturbations[name], f"perturbations.{name}") for name in ev.suite}
    step = cfg.ppo.total_timesteps

    def env_factory(num_envs, perturbation):
        return make_eval_env(cfg, num_envs, perturbation, (cfg.seed, EVAL_GAMES, ev.seed_offset), threads)

    def report(name, r):
        log.info("eval %-13s mean %8.2f  std %7.2f  (%d games)", name, r["mean"], r["std"], len(r["returns"]))
        metrics = {f"eval/{name}/mean": r["mean"], f"eval/{name}/std": r["std"]}
        tracker.log(metrics, step=step, again=True)  # evaluation reruns whole after a requeue

    scores = evaluate(agent, env_factory, suite, ev.episodes, ev.num_envs, device, ev.greedy, on_result=report)
    ratio = robustness_ratio(scores)
    tracker.table(
        "eval/table",
        ["perturbation", "mean", "std", "episodes"],
        [[n, r["mean"], r["std"], len(r["returns"])] for n, r in scores.items()],
        step=step,
    )
    return {
        "env_id": cfg.env.env_id,
        "encoder": cfg.encoder.name,
        "seed": cfg.seed,
        "total_timesteps": cfg.ppo.total_timesteps,
        "train_sps": train_stats.get("train_sps"),
        "final_train_return": train_stats.get("final_train_return"),
        "train_perturbation": cfg.perturbation.name,
        "eval_sticky_actions": ev.sticky_actions,
        "eval_greedy": ev.greedy,
        "eval": scores,
        "robustness_ratio": ratio,
    }
