"""The acting-step profile: every phase of the act-then-step loop timed, together within the loop's wall time."""

import time

import torch
from helpers import cnn, new_agent, pipeline

from jepa_rl.benchmark.step_profile import PHASES, acting_step_seconds


def test_every_phase_of_an_acting_step_is_timed_within_the_wall_time():
    envs = pipeline("breakout", 2, 0, num_threads=1)
    agent = new_agent(cnn(), envs.num_actions)
    start = time.perf_counter()
    try:
        seconds = acting_step_seconds(agent, envs, steps=20, device=torch.device("cpu"))
    finally:
        envs.close()
    wall = time.perf_counter() - start
    assert set(seconds) == set(PHASES) and all(s > 0 for s in seconds.values())
    assert sum(seconds.values()) * 20 < wall
    assert seconds["act"] > seconds["to_device"]  # a CNN forward costs more than copying 2 stacks on a CPU
