"""The benchmark stage end to end through launch.py, at a size that only proves it measures what it says."""

import json
import statistics

import pytest
from helpers import launch

pytestmark = pytest.mark.slow

TINY_BENCHMARK = [
    "stage=benchmark",
    "logger=none",
    "threads=1",
    "env_groups=2",  # the CNN's PPO with two groups of envs, through launch.py
    "ppo.num_envs=2",
    "ppo.num_steps=32",
    "benchmark.repeats=2",
    "benchmark.env_steps=64",
    "benchmark.ppo_iterations=2",
    "benchmark.pretrain_batch=4",
    "benchmark.pretrain_steps=1",
    "benchmark.pretrain_encoders=[jepa,jepa_cnn]",
    "benchmark.perturbations=[clean,hard,motion_blur_3]",
    "benchmark.eval_frames=40",  # 10 agent steps a game
    "eval.suite=[clean,noise]",
]


def test_benchmark_measures_every_stage_and_splits_each_ppo_iteration(tmp_path):
    result = launch([*TINY_BENCHMARK, "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the emulator and the update alone" in result.stdout
    assert "PPO: 2 env groups" in result.stdout
    bench = json.loads((tmp_path / "run" / "benchmark.json").read_text())
    assert bench["env_groups"] == 2 and isinstance(bench["freed_memory_kept"], bool)
    for key in ("emulator", "pipeline", "ppo", "ppo_frozen_vit"):
        assert len(bench["runs"][key]) == 2 and all(sps > 0 for sps in bench["runs"][key])
    batch = 2 * 32
    for key, phases in bench["ppo_phase_seconds"].items():
        measured = zip(phases["rollout_seconds"], phases["update_seconds"], bench["runs"][key], strict=True)
        for rollout, update, sps in measured:
            # Both phases lie inside the timed iterations, so together they cannot exceed the wall time.
            assert rollout > 0 and update > 0 and rollout + update <= batch / sps
    # A frozen encoder's features are reused by the update: no encoder forward or backward there.
    cnn, frozen = (bench["ppo_phase_seconds"][k]["update_seconds"] for k in ("ppo", "ppo_frozen_vit"))
    assert max(frozen) < min(cnn)
    assert bench["emulator_plus_update_sps"] < bench["median_sps"]["emulator"]
    assert bench["ppo_over_emulator_plus_update"] == bench["median_sps"]["ppo"] / bench["emulator_plus_update_sps"]
    steps = {f"{net}/{kind}" for net in ("jepa", "jepa_cnn") for kind in ("jepa", "ae", "fwd_bwd")}
    assert set(bench["pretrain_frames_per_sec"]) == steps
    assert set(bench["pretrain_over_fwd_bwd"]) == {k for k in steps if not k.endswith("fwd_bwd")}
    assert set(bench["perturbation_cost"]) == {"clean", "hard", "motion_blur_3"}
    assert bench["perturbation_cost"]["motion_blur_3"] > 1  # a blur per frame costs time
    assert "(f) the pipeline under each perturbation" in result.stdout
    assert "(g) where an acting step of (c) goes" in result.stdout
    assert set(bench["acting_step_seconds"]) == {"emulate", "frames", "to_device", "act", "to_host"}
    assert all(len(runs) == 2 for runs in bench["acting_step_seconds_runs"].values())
    # Each part is printed as it finishes, before the table.
    done = [line for line in result.stdout.splitlines() if line.startswith("  done: ")]
    assert len(done) >= 8 and result.stdout.index(done[-1]) < result.stdout.index("benchmark on cpu")
    assert set(bench["evaluation_sps"]) == {"evaluation", "evaluation_frozen_vit"}
    runs = bench["evaluation_runs"]
    for key, sps in bench["evaluation_sps"].items():  # (h) against the emulator with as many envs, each a median
        assert len(runs[key]) == 2 and sps == pytest.approx(statistics.median(runs[key]))
        emulator = statistics.median(runs[f"{key}_emulator"])
        assert bench["evaluation_over_emulator"][key] == pytest.approx(sps / emulator)
    assert "frames by opencv" in result.stdout and bench["pipeline"] == "opencv"  # pipeline=auto on a CPU
    for key, minutes in bench["minutes_per_10m_steps"].items():
        assert minutes == pytest.approx(1e7 / bench["median_sps"][key] / 60)
