"""Where an acting step of PPO's rollout spends its time: emulation, the pipeline's frame work, the copy of
the observations to the agent's device, the policy's forward pass, and the copy of the actions back.

The benchmark's (g) times the rollout's act-then-step loop phase by phase, with the device synchronised
after each phase: on a GPU, kernels run after their launch returns, and an unsynchronised clock would
charge them to whichever phase waits next. The synchronisation costs a little, so these phases add up
to slightly more than an unprofiled step; the ratios between them are what the table is for.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from jepa_rl.envs.pipeline import AtariPipeline, last_frames
from jepa_rl.models.agent import Agent

PHASES = ("emulate", "frames", "to_device", "act", "to_host")


def clock(device: torch.device) -> float:
    """``perf_counter`` once the device has finished what was queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def acting_step_seconds(agent: Agent, envs: AtariPipeline, steps: int, device: torch.device) -> dict[str, float]:
    """Mean seconds per acting step (all of ``envs``' environments) of each phase of ``PHASES``, over
    ``steps`` steps after a warm-up of 5. The agent acts as in a rollout (sampled actions, one autocast region)."""
    totals = dict.fromkeys(PHASES, 0.0)
    obs, _ = envs.reset()
    with agent.acting(device.type):
        for step in range(steps + 5):
            t0 = clock(device)
            x = torch.as_tensor(obs, device=device)
            t1 = clock(device)
            action = agent.act(x)[0]
            t2 = clock(device)
            actions = action.cpu().numpy().astype(np.int32)
            t3 = clock(device)
            raw, _, terminated, truncated, _ = envs.ale.step(actions)
            t4 = clock(device)
            envs.frames.push(last_frames(raw), terminated | truncated)
            obs = envs.frames.observation()
            t5 = clock(device)
            if step >= 5:
                for phase, seconds in zip(PHASES, (t4 - t3, t5 - t4, t1 - t0, t2 - t1, t3 - t2), strict=True):
                    totals[phase] += seconds
    return {phase: total / steps for phase, total in totals.items()}
