"""PPO's logged metrics on real environments: CleanRL's names, the annealed rate, and the time split."""

import time

import pytest
import torch

from jepa_rl.agent import Agent, make_optimizer
from jepa_rl.encoders import NatureCNN
from jepa_rl.envs import AtariPipeline
from jepa_rl.ppo import PPO
from jepa_rl.tracking import Tracker

CLEANRL_METRICS = {
    "charts/SPS",
    "charts/learning_rate",
    "losses/value_loss",
    "losses/policy_loss",
    "losses/entropy",
    "losses/old_approx_kl",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
}


class Recorder(Tracker):
    """A tracker that keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int, dict]] = []

    def log(self, metrics: dict[str, float], step: int, again: bool = False) -> None:
        self.logged.append((step, dict(metrics)))


def test_every_iteration_logs_cleanrl_metrics_and_where_its_time_went():
    envs = AtariPipeline("breakout", 2, seed=0, num_threads=1)
    agent = Agent(NatureCNN(), envs.num_actions, autocast="bf16")
    optimizer = make_optimizer(agent, 2.5e-4)
    tracker, ends = Recorder(), []
    ppo = PPO(total_timesteps=128, num_envs=2, num_steps=32)
    start = time.perf_counter()
    try:
        ppo.learn(agent, envs, optimizer, tracker, torch.device("cpu"), on_iteration_end=lambda *a: ends.append(a))
    finally:
        envs.close()
    wall = time.perf_counter() - start
    assert [step for step, _ in tracker.logged] == [64, 128]
    for _, metrics in tracker.logged:
        assert CLEANRL_METRICS | {"perf/rollout_seconds", "perf/update_seconds"} <= set(metrics)
    # The learning rate anneals linearly to 0 over the iterations, as CleanRL's does.
    rates = [metrics["charts/learning_rate"] for _, metrics in tracker.logged]
    assert rates == pytest.approx([2.5e-4, 1.25e-4])
    split = [m["perf/rollout_seconds"] + m["perf/update_seconds"] for _, m in tracker.logged]
    assert all(s > 0 for s in split) and sum(split) <= wall
    assert [stats["update_seconds"] for *_, stats in ends] == [m["perf/update_seconds"] for _, m in tracker.logged]
