"""A PPO job's training state on disk: saved every few agent steps, after the last update and when the
cluster signals a preemption; restored, all of it, when the job is run again."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from jepa_rl.models.agent import Agent
from jepa_rl.rl.ppo import PPO
from jepa_rl.runtime import preemption
from jepa_rl.runtime.checkpoint import save_checkpoint
from jepa_rl.runtime.tracking import Tracker, stable_run_id

log = logging.getLogger(__name__)


def checkpointer(
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    tracker: Tracker,
    path: Path,
    ppo: PPO,
    every: int,
    fingerprint: dict[str, Any],
    extra: dict[str, Any],
):
    """A callback saving a checkpoint every ``every`` agent steps, after the last update, and when the
    cluster signals a preemption or timeout (then handing the signal over: submitit requeues the job).
    ``extra`` is stored with it as it is (what a resumed job reports but cannot recompute)."""
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
                "num_actions": agent.num_actions,
                "agent_autocast": agent.autocast,
                **extra,
            },
            path,
        )
        if preemption.pending():
            log.warning("signalled: checkpoint at step %d in %s; a rerun resumes from it", global_step, path)
            tracker.preempting()
            preemption.hand_over()

    return save


def restore(state: dict[str, Any], agent: Agent, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load a checkpoint's training state: the agent's weights and precision, the optimizer (with each
    group's base learning rate, which the annealing reads) and torch's generator, which draws the
    minibatch order and the rollout's action streams. Returns what the job reports but cannot recompute."""
    agent.load_state_dict(state["agent"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    agent.autocast = state["agent_autocast"]
    return {k: state[k] for k in ("encoder_weights", "feature_statistics", "snapshots")}
