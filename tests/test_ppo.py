"""PPO: generalised advantage estimation; the logged metrics on real environments (CleanRL's names, the
annealed rate, the time split); rollouts in overlapped env groups; freed memory kept for the next step."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from helpers import cnn, new_agent, pipeline, ppo, schema_kwargs

from jepa_rl.agent import make_optimizer
from jepa_rl.config.resolve import precision
from jepa_rl.config.schema import NatureCNNSchema
from jepa_rl.rollout import Rollout
from jepa_rl.tracking import Tracker

PRECISION = precision("auto", torch.device("cpu"))  # what ppo.autocast=auto picks here


# --- generalised advantage estimation -------------------------------------------------------------


# --- learning on real environments ----------------------------------------------------------------

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
    envs = pipeline("breakout", 2, 0, num_threads=1)
    agent = new_agent(cnn(), envs.num_actions, autocast=PRECISION)
    optimizer = make_optimizer(agent, 2.5e-4)
    tracker, ends = Recorder(), []
    learner = ppo(total_timesteps=128, num_envs=2, num_steps=32)
    start = time.perf_counter()
    try:
        learner.learn(agent, envs, optimizer, tracker, torch.device("cpu"), on_iteration_end=lambda *a: ends.append(a))
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
    """Two groups of 2 envs, each acting and stepping in its own thread: replaying the recorded
    actions in one 4-env pipeline with the same emulator seeds gives back every observation, reward,
    done flag and finished game, across the boundary between two rollouts."""
    capped = {"num_threads": 1, "max_frames": 320}  # games cut at 80 steps: the second rollout crosses a game end
    groups = [pipeline("breakout", 2, 3, first_env=e, **capped) for e in (0, 2)]
    replay = pipeline("breakout", 4, 3, **capped)
    agent = new_agent(cnn(), groups[0].num_actions, autocast=PRECISION)
    steps = 60
    learner = ppo(total_timesteps=2 * steps * 4, num_envs=4, num_steps=steps)
    buf = Rollout.allocate(steps, 4, (4, 84, 84), torch.uint8, "cpu")
    pool = ThreadPoolExecutor(2, initializer=torch.set_num_threads, initargs=(1,))
    try:
        starts = [env.reset() for env in groups]
        next_obs = torch.from_numpy(np.concatenate([obs for obs, _ in starts]))
        lives = np.concatenate([info["lives"] for _, info in starts])
        obs, info = replay.reset()
        replay_lives, global_step, games, played = info["lives"].copy(), 0, [], 0
        for _ in range(2):
            games.clear()
            next_obs, lives, global_step, _ = learner._rollout(
                agent, groups, buf, next_obs, lives, global_step, lambda *game: games.append(game), pool
            )
            replayed = []
            for t in range(steps):
                assert np.array_equal(buf.obs[t].numpy(), obs), f"observation {t} differs"
                obs, reward, terminated, truncated, info = replay.step(buf.actions[t].numpy())
                done = terminated | truncated
                assert np.array_equal(buf.rewards[t].numpy(), np.sign(reward))
                assert np.array_equal(buf.dones[t].numpy(), (done | (info["lives"] < replay_lives)).astype(np.float32))
                replay_lives = info["lives"].copy()
                step = global_step - steps * 4 + (t + 1) * 4
                replayed += [
                    (step, int(i), info["episode_return"][i], info["episode_length"][i]) for i in np.flatnonzero(done)
                ]
            assert np.array_equal(next_obs.numpy(), obs) and np.array_equal(lives, replay_lives)
            assert games == sorted(replayed)  # reported in step order
            played += len(games)
        assert played > 0, "no game ended: the check of finished games was empty"
    finally:
        pool.shutdown()
        for env in [*groups, replay]:
            env.close()


FAULTS_PER_STEP = """
import json, resource, sys, torch
from jepa_rl.encoders import NatureCNN
from jepa_rl.heads import PolicyHeads
from jepa_rl.memory import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
torch.set_num_threads(1)
net, obs = NatureCNN(**json.loads(sys.argv[2])), torch.randint(0, 256, (128, 4, 84, 84), dtype=torch.uint8)
heads = PolicyHeads(kind="trunk", width=512, feature_dim=net.feature_dim, num_actions=4)  # CleanRL's 3136->512
def step():
    logits, value = heads(net(obs))
    (logits.mean() + value.mean()).backward()
for _ in range(4):  # the heap grows to the working set over the first steps
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(12):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 12)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's")
@pytest.mark.slow
def test_kept_freed_memory_spares_each_training_step_its_page_faults():
    """The CNN agent's forward+backward (convolutions, trunk, heads), as in a PPO minibatch, in a fresh
    process each way."""

    settings = json.dumps(schema_kwargs(NatureCNNSchema, in_channels=4))  # the configured Nature-CNN

    def faults(mode: str) -> float:
        command = [sys.executable, "-c", FAULTS_PER_STEP, mode, settings]
        return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    default, kept = faults("default"), faults("retain")
    print(f"page faults per step: {default:.0f} with malloc's defaults, {kept:.0f} with freed memory kept")
    # Measured 133 against 1,941 (with the trunk; 0-87 against 1,579-4,711 without). Where malloc's own
    # dynamic threshold already keeps the blocks (one machine measured 43 by default and 79 kept), the
    # setting has nothing to spare: a few hundred faults are a fraction of a millisecond in a step.
    assert kept < max(default / 4, 300)
