"""PPO's logged metrics on real environments: CleanRL's names, the annealed rate, and the time split."""

import time

import numpy as np
import pytest
import torch

from jepa_rl.agent import Agent, make_optimizer
from jepa_rl.encoders import NatureCNN
from jepa_rl.envs import AtariPipeline
from jepa_rl.ppo import PPO, Rollout, intra_op_threads, shard_pool
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


def test_rollout_in_overlapped_groups_records_what_the_environments_did():
    """Two groups of 2 envs, stepped while the policy acts for the other group: replaying the recorded
    actions in one 4-env pipeline with the same emulator seeds gives back every observation, reward,
    done flag and finished game, across the boundary between two rollouts."""
    groups = [AtariPipeline("breakout", 2, seed=3, num_threads=1), AtariPipeline("breakout", 2, seed=5, num_threads=1)]
    replay = AtariPipeline("breakout", 4, seed=3, num_threads=1)
    agent = Agent(NatureCNN(), groups[0].num_actions, autocast="bf16")
    ppo = PPO(total_timesteps=1200, num_envs=4, num_steps=150)
    buf = Rollout.allocate(150, 4, (4, 84, 84), torch.uint8, "cpu")
    try:
        starts = [env.reset() for env in groups]
        next_obs = torch.from_numpy(np.concatenate([obs for obs, _ in starts]))
        lives = np.concatenate([info["lives"] for _, info in starts])
        obs, info = replay.reset()
        replay_lives, global_step, games, played = info["lives"].copy(), 0, [], 0
        for _ in range(2):
            games.clear()
            next_obs, lives, global_step, _ = ppo._rollout(
                agent, groups, buf, next_obs, lives, global_step, lambda *game: games.append(game)
            )
            replayed = []
            for t in range(150):
                assert np.array_equal(buf.obs[t].numpy(), obs), f"observation {t} differs"
                obs, reward, terminated, truncated, info = replay.step(buf.actions[t].numpy())
                done = terminated | truncated
                assert np.array_equal(buf.rewards[t].numpy(), np.sign(reward))
                assert np.array_equal(buf.dones[t].numpy(), (done | (info["lives"] < replay_lives)).astype(np.float32))
                replay_lives = info["lives"].copy()
                step = global_step - 600 + (t + 1) * 4
                replayed += [
                    (step, int(i), info["episode_return"][i], info["episode_length"][i]) for i in np.flatnonzero(done)
                ]
            assert np.array_equal(next_obs.numpy(), obs) and np.array_equal(lives, replay_lives)
            assert sorted(games) == sorted(replayed)
            played += len(games)
        assert played > 0, "no game ended: the check of finished games was empty"
    finally:
        for env in [*groups, replay]:
            env.close()


def _update_copy(agent: Agent, shards: int, data: tuple) -> tuple[dict, dict]:
    """Run one two-epoch PPO update on a copy of ``agent`` with ``shards``; its weights and metrics."""
    import copy

    agent = copy.deepcopy(agent)
    buf, advantages, returns = data
    ppo = PPO(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2, total_timesteps=64)
    torch.manual_seed(0)
    # As PPO.learn runs it: one torch thread per shard, here and in the pool's thread.
    pool = shard_pool(shards, threads=1)
    try:
        optimizer = make_optimizer(agent, 1e-3)
        with intra_op_threads(1):
            metrics = ppo._update(agent, optimizer, buf, advantages, returns, pool=pool, shards=shards)
    finally:
        if pool:
            pool.shutdown()
    return agent.state_dict(), metrics


def test_an_update_in_parallel_shards_equals_the_whole_minibatch_update_and_repeats_exactly():
    """Shard gradients summed in order are the minibatch's gradient, and the same run gives the same bits."""
    envs = AtariPipeline("breakout", 4, seed=0, num_threads=1)
    agent = Agent(NatureCNN(), envs.num_actions)  # float32: the comparison is about the sum, not bf16
    T, N = 16, 4
    buf = Rollout.allocate(T, N, envs.observation_shape, torch.uint8, "cpu")
    obs, _ = envs.reset()
    try:
        with torch.no_grad():
            for t in range(T):  # real frames, the policy's own actions and log-probabilities
                buf.obs[t] = torch.from_numpy(obs)
                buf.actions[t], buf.logprobs[t], buf.values[t] = agent.act(buf.obs[t])
                obs, *_ = envs.step(buf.actions[t].numpy())
    finally:
        envs.close()
    generator = torch.Generator().manual_seed(1)
    data = (buf, torch.randn(T, N, generator=generator), torch.randn(T, N, generator=generator))
    whole, whole_metrics = _update_copy(agent, 1, data)
    sharded, sharded_metrics = _update_copy(agent, 2, data)
    again, again_metrics = _update_copy(agent, 2, data)
    assert not torch.allclose(whole["actor.weight"], agent.state_dict()["actor.weight"])  # it did learn
    for name, value in whole.items():
        assert torch.allclose(sharded[name], value, rtol=1e-4, atol=1e-6), name
        assert torch.equal(again[name], sharded[name]), name
    assert sharded_metrics == pytest.approx(whole_metrics, rel=1e-4, abs=1e-6)
    assert again_metrics == sharded_metrics
