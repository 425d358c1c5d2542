"""The train stage end to end through launch.py: results.json, W&B files, checkpoints, repeatability
(kills and signals: test_preemption.py; multiruns: tests/sweep/test_callback.py; the W&B group alone:
test_hydra_runtime.py)."""

import json
import time

import pytest
import torch
from helpers import TINY, TINY_PRETRAIN, launch

from jepa_rl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jepa_rl.hydra_runtime import short_dirname
from jepa_rl.wandb_files import records

SUITE = ["clean", "color_jitter", "noise", "mild", "hard"]


def check_results(path, total_timesteps):
    results = json.loads(path.read_text())
    for key in ("env_id", "encoder", "seed", "total_timesteps", "train_sps", "eval", "robustness_ratio"):
        assert key in results
    assert results["env_id"] == "ALE/Breakout-v5" and results["encoder"] == "cnn"
    assert results["total_timesteps"] == total_timesteps and results["train_sps"] > 0
    assert list(results["eval"]) == SUITE
    for r in results["eval"].values():
        assert set(r) == {"mean", "std", "returns", "capped"} and len(r["returns"]) == 1
        assert r["mean"] == pytest.approx(sum(r["returns"]) / len(r["returns"]))
        assert all(score >= 0 and float(score).is_integer() for score in r["returns"])  # raw game scores
    clean = results["eval"]["clean"]["mean"]
    if clean > 0:
        expected = sum(results["eval"][p]["mean"] / clean for p in SUITE[1:]) / 4
        assert results["robustness_ratio"] == pytest.approx(expected)
    return results


@pytest.mark.slow
def test_smoke_run_writes_results_and_wandb_files(tmp_path):
    # Online W&B with no server to reach: the job falls back to offline mode without a 90 s wait.
    unreachable = {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "0" * 40}
    start = time.monotonic()
    result = launch([*TINY, "logger.init_timeout=2", "hydra.run.dir=run"], tmp_path, unreachable)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "falling back to offline mode" in result.stdout + result.stderr
    assert time.monotonic() - start < 120
    run = tmp_path / "run"
    check_results(run / "results.json", 512)
    assert (run / ".hydra" / "config.yaml").exists()
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["global_step"] == 512
    offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert offline, "W&B offline mode writes a real run file"
    # The group: the condition (env, encoder, training perturbation, preset) and its overrides, not the seed.
    (group,) = {r.run.run_group for r in records(offline[0]) if r.WhichOneof("record_type") == "run"}
    overrides = "eval.episodes=1,eval.invariance_states=64,eval.num_envs=1,ppo.num_envs=4,ppo.num_steps=64,"
    overrides += "ppo.total_timesteps=512"
    # Past W&B's 128 characters: a readable prefix and a hash of the whole.
    assert group == short_dirname(f"breakout-cnn-train_clean-study-{overrides}", 128)


@pytest.mark.slow
def test_resume_with_another_config_is_refused(tmp_path):
    args = [*TINY, "logger=none", "hydra.run.dir=run", "eval.suite=[clean]"]
    assert launch(args, tmp_path).returncode == 0
    # The same command again finds the finished job and does nothing...
    again = launch(args, tmp_path)
    assert again.returncode == 0 and "complete" in again.stderr + again.stdout
    # ...other evaluation settings evaluate the trained agent again (results of another training config
    # are refused: tests/stages/test_resume.py)...
    again = launch([*args[:-1], "eval.suite=[clean,noise]"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results["eval"]) == ["clean", "noise"] and results["config"]["eval"]["suite"] == ["clean", "noise"]
    # ...and a checkpoint of another training config is never resumed (tested in-process, with the
    # other refusals, in tests/stages/test_resume.py).


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(path)
    save_checkpoint({"x": torch.zeros(3)}, path)
    assert load_checkpoint(path)["x"].shape == (3,)
    path.write_bytes(path.read_bytes()[:100])  # truncated mid-write by a crash
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


@pytest.mark.slow
def test_corrupt_checkpoint_in_a_run_dir_stops_the_job(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = launch([*TINY, "logger=none", "hydra.run.dir=run"], tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "corrupt" in last and "delete it" in last


@pytest.mark.slow
def test_a_vit_trains_end_to_end(tmp_path):
    # One update of a 1-block ViT: a ViT trained end to end is the slowest agent there is on a CPU.
    args = [*TINY, "encoder=vit", "encoder.net.depth=1", "ppo.total_timesteps=256", "logger=none"]
    result = launch([*args, "eval.suite=[clean,hard]", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["encoder"] == "vit" and list(results["eval"]) == ["clean", "hard"]
    assert set(results["policy_invariance"]) == {"hard"} and results["random_policy"]["returns"]
    assert results["feature_statistics"] is None  # trained with the policy: nothing to standardise


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_results(tmp_path):
    """Two runs of a frozen random-init CNN (standardised on a tiny frame set) on two threads (two env groups)."""
    args = [*TINY, *TINY_PRETRAIN, "encoder=cnn", "encoder.freeze=true", "ppo.total_timesteps=256", "threads=2"]
    # A frame cap of 500 agent steps: an untrained frozen agent may never press FIRE (a game would
    # run to the ALE's 27,000).
    args += ["env.max_frames=2000", "logger=none", "eval.suite=[clean,hard]"]
    for name in ("a", "b"):
        result = launch([*args, f"hydra.run.dir={name}"], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    a, b = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("a", "b"))
    # Convolutions frozen: the trunk and heads are what PPO trains, on features standardised on the frames.
    assert a["trained_parameters"] == {"encoder": 0, "heads": 3136 * 512 + 512 + 512 * 4 + 4 + 512 + 1}
    assert a["feature_statistics"]["frames"] == 64 and set(a["policy_invariance"]) == {"hard"}
    a.pop("train_sps"), b.pop("train_sps")  # wall-clock speed is the one thing allowed to differ
    assert a == b
    assert (tmp_path / "a" / "episodes.csv").read_text() == (tmp_path / "b" / "episodes.csv").read_text()
