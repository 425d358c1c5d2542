"""The throughput measurements at a size that only proves they time what they say, and the figures
``benchmark.json`` derives from them, checked against hand computations."""

import dataclasses

import pytest
import torch
from helpers import HEAD, compose_cfg

from jepa_rl.benchmark.step_profile import PHASES
from jepa_rl.benchmark.table import report_lines
from jepa_rl.benchmark.throughput import (
    Machine,
    Measurements,
    Setup,
    emulator_sps,
    pretrain_step_seconds,
    summary,
)
from jepa_rl.config.fingerprint import plain
from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.rl.ppo import PPOSettings

CPU = Machine(torch.device("cpu"), 1, "none", "none", 1, None)
BREAKOUT = {"name": "breakout", "env_id": "breakout", "game": "breakout"}
# benchmark.json's keys, in the order the stage has always written them.
KEYS = [
    "device",
    "threads",
    "num_envs",
    "encoder",
    "autocast",
    "native_bf16",
    "ppo_precision",
    "env_groups",
    "pipeline",
    "freed_memory_kept",
    "runs",
    "median_sps",
    "ppo_over_emulator",
    "pipeline_over_emulator",
    "frozen_vit_over_ppo",
    "minutes_per_10m_steps",
    "ppo_phase_seconds",
    "ppo_phase_median_seconds",
    "emulator_plus_update_sps",
    "ppo_over_emulator_plus_update",
    "pretrain_batch",
    "pretrain_step_seconds",
    "pretrain_frames_per_sec",
    "pretrain_over_fwd_bwd",
    "pipeline_sps_by_perturbation",
    "num_steps",
    "acting_step_seconds_runs",
    "acting_step_seconds",
    "perturbation_cost",
    "evaluation_runs",
    "evaluation_sps",
    "evaluation_over_emulator",
    "peak_rss_mb",
]


def setup(num_envs: int = 2, num_steps: int = 8) -> Setup:
    ppo = PPOSettings(num_envs=num_envs, num_steps=num_steps, num_minibatches=1)
    return Setup(BREAKOUT, VisualPerturbation(), ppo, HEAD, 0, CPU)


def three_rounds() -> Measurements:
    return Measurements(
        runs={"emulator": [900.0, 1000.0, 1100.0], "pipeline": [500.0, 400.0, 600.0], "ppo": [100.0, 50.0, 200.0]}
        | {"ppo_frozen_vit": [20.0, 25.0, 30.0]},
        pretrain_seconds={"vit/jepa": [0.3, 0.2, 0.4], "vit/ae": [0.1, 0.2, 0.3], "vit/fwd_bwd": [0.1, 0.1, 0.1]},
        phases={
            k: {"rollout_seconds": [0.1, 0.2, 0.3], "update_seconds": [0.04, 0.02, 0.06]}
            for k in ("ppo", "ppo_frozen_vit")
        },
        by_perturbation={"clean": [400.0, 500.0, 450.0], "hard": [100.0, 200.0, 250.0]},
        profile={phase: [0.001, 0.002, 0.003] for phase in PHASES},
        evaluation={"evaluation": [300.0, 200.0, 400.0], "evaluation_emulator": [800.0, 1000.0, 900.0]},
    )


def test_the_summary_holds_the_medians_and_their_ratios_under_the_stages_keys():
    result = summary(setup(), "cnn", three_rounds(), pretrain_batch=8)
    assert list(result) == KEYS
    assert result["median_sps"] == {"emulator": 1000.0, "pipeline": 500.0, "ppo": 100.0, "ppo_frozen_vit": 25.0}
    assert result["ppo_over_emulator"] == 0.1 and result["pipeline_over_emulator"] == 0.5
    assert result["frozen_vit_over_ppo"] == 0.25
    assert result["minutes_per_10m_steps"] == {"ppo": 1e7 / 100 / 60, "ppo_frozen_vit": 1e7 / 25 / 60}
    # 16 agent steps per iteration: 0.016 s of emulation and the median update's 0.04 s.
    assert result["emulator_plus_update_sps"] == pytest.approx(16 / (16 / 1000 + 0.04))
    assert result["ppo_over_emulator_plus_update"] == 100.0 / result["emulator_plus_update_sps"]
    assert result["pretrain_frames_per_sec"] == {"vit/jepa": 8 / 0.3, "vit/ae": 8 / 0.2, "vit/fwd_bwd": 8 / 0.1}
    assert result["pretrain_over_fwd_bwd"] == {"vit/jepa": 0.3 / 0.1, "vit/ae": 0.2 / 0.1}
    assert result["perturbation_cost"] == {"clean": 500 / 450, "hard": 500 / 200}
    assert result["acting_step_seconds"] == dict.fromkeys(PHASES, 0.002)
    assert result["evaluation_sps"] == {"evaluation": 300.0}
    assert result["evaluation_over_emulator"] == {"evaluation": 300.0 / 900.0}
    assert (result["device"], result["ppo_precision"], result["pipeline"]) == ("cpu", "float32", "opencv")
    lines = report_lines(result, 16)
    assert any("(g) where an acting step of (c) goes" in line for line in lines)
    assert any("(h) evaluation" in line and "= 0.33" in line for line in lines)


def test_the_summary_names_the_torch_pipeline_and_bf16():
    machine = dataclasses.replace(CPU, ppo_precision="bf16", frames_device="cpu", env_groups=2)
    result = summary(dataclasses.replace(setup(), machine=machine), "vit", three_rounds(), pretrain_batch=8)
    assert (result["ppo_precision"], result["pipeline"], result["env_groups"]) == ("bf16", "torch on cpu", 2)


def test_the_emulator_alone_is_faster_than_the_whole_pipeline_under_a_blur():
    blur = VisualPerturbation(name="motion_blur_3", corruption="motion_blur", severity=3)
    emulator = emulator_sps(setup(), 64, preprocess=False)
    blurred = emulator_sps(setup(), 64, preprocess=True, perturbation=blur)
    assert emulator > blurred > 0


@pytest.mark.parametrize("objective", ["jepa", "ae", None])
def test_a_pretraining_step_is_timed_for_each_objective_and_the_plain_forward_backward(objective):
    encoder = plain(compose_cfg().encoders.jepa_cnn)
    seconds = pretrain_step_seconds(encoder, PretrainSettings(), objective, batch=2, steps=1, machine=CPU)
    assert 0 < seconds < 60
