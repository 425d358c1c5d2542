"""Faults with real processes: kill -9 at a random moment, cluster signals, submitit's local launcher."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
from forked_jobs import Job
from helpers import SHORT_GIFS, TINY, compose_cfg, launch
from helpers import start_job as start

from jepa_rl.runtime.checkpoint import load_checkpoint
from jepa_rl.runtime.wandb_history import history_steps, run_id

STEP = re.compile(r"step (\d+)/\d+")
RESUMED = re.compile(r"resuming from .* at step (\d+)")


def wait_for(predicate, proc: Job | None = None, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out waiting"
        assert proc is None or proc.poll() is None, "the process ended early"
        time.sleep(0.05)


def progress(log: Path) -> int:
    """The last training step the job reported in its log (0 before the first)."""
    steps = STEP.findall(log.read_text())
    return int(steps[-1]) if steps else 0


def resumed_from(log_text: str, saved: int) -> int:
    """The step a restarted job resumed from, checked against the checkpoint on disk at the kill."""
    found = RESUMED.search(log_text)
    if saved == 0:  # killed before the first checkpoint: the rerun starts over
        assert found is None
        return 0
    assert found is not None and int(found.group(1)) == saved
    return saved


@pytest.mark.slow
def test_training_killed_at_a_random_moment_resumes_and_finishes(tmp_path):
    # 8 updates of 256 steps, a checkpoint every 2; the log reports every update.
    total, every = 2048, 512
    args = [
        *TINY,
        f"ppo.total_timesteps={total}",
        f"checkpoint_every={every}",
        "eval.suite=[clean]",
        "eval.snapshots=2",  # at steps 1024 and 2048: each once, whatever the kill
        "eval.snapshot_suite=[clean]",
        "eval.snapshot_episodes=1",
        "hydra.run.dir=run",
    ]
    ckpt, log = tmp_path / "run" / "checkpoint.pt", tmp_path / "killed.log"
    proc = start(args, tmp_path, log)
    # Once it trains, kill it at a random moment.
    wait_for(lambda: progress(log) > 0, proc)
    time.sleep(random.Random(0).uniform(0.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reached = progress(log)
    assert reached < total, "killed after the end of training: the test needs a longer run"
    saved = load_checkpoint(ckpt)["global_step"] if ckpt.exists() else 0  # never half-written
    assert reached - saved <= every  # at most one checkpoint interval of work lost
    assert not (tmp_path / "run" / "results.json").exists()
    final = launch(args, tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    recomputed = reached - resumed_from(final.stdout + final.stderr, saved)
    assert 0 <= recomputed <= every
    print("steps recomputed after the kill:", recomputed)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["total_timesteps"] == total and len(results["eval"]["clean"]["returns"]) == 1
    assert [snap["step"] for snap in results["snapshots"]] == [1024, 2048]
    assert load_checkpoint(ckpt)["global_step"] == total
    header, *lines = (tmp_path / "run" / "episodes.csv").read_text().splitlines()
    assert header == "step,env,score,length"  # once, though the job ran in two segments
    games = [line.split(",") for line in lines]
    steps = [int(game[0]) for game in games]
    assert steps == sorted(steps) and steps[-1] <= total  # each game once, none from a lost segment
    # The last 100 games, across segments (not only those of the last one).
    assert results["final_train_return"] == pytest.approx(sum(float(g[2]) for g in games[-100:]) / len(games[-100:]))
    assert not list((tmp_path / "run").glob(".*.tmp"))
    # One W&B run in two segments (offline: a directory each; a killed one may have recorded nothing):
    # no step is recorded twice, and the last segment ends the training.
    segments = sorted((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(segments) == 2 and len({run_id(s) for s in segments} - {None}) == 1
    steps = [step for s in segments for step in history_steps(s)]
    assert steps == sorted(set(steps)) and steps[-1] == total
    print("W&B steps recorded per segment:", [len(history_steps(s)) for s in segments])


@pytest.mark.slow
def test_sigterm_checkpoints_at_the_current_step_then_exits(tmp_path):
    """Without submitit (a plain batch job), SLURM's SIGTERM still leaves a checkpoint of the last update."""
    args = [*TINY, "ppo.total_timesteps=6144", "checkpoint_every=100000", "logger=none", "hydra.run.dir=run"]
    log = tmp_path / "job.log"
    proc = start(args, tmp_path, log)
    wait_for(lambda: progress(log) >= 512, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    saved = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["global_step"]
    assert 512 <= saved < 6144 and saved == progress(log)  # the update under way finished, then was saved
    assert "received SIGTERM" in log.read_text()


def submitit_tasks(folder: Path) -> list[int]:
    """Process ids of submitit's worker processes for jobs under ``folder``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "submitit.core._submit" in cmd and any(str(folder) in part for part in cmd):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_submitit_local_sweep_survives_preemption(tmp_path):
    """A cell through hydra's submitit launcher (the path SLURM arrays take) gets the preemption signal mid-training."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=local", *TINY, "ppo.total_timesteps=2048", "checkpoint_every=100000", "seed=1"]
    args += ["eval.suite=[clean]", SHORT_GIFS, f"hydra.sweep.dir={sweep}"]
    proc = start(args, tmp_path, tmp_path / "sweep.log")

    def training() -> bool:
        csvs = list(sweep.glob("breakout/cnn/seed*/*/episodes.csv"))
        return len(csvs) == 1 and all(p.stat().st_size for p in csvs)

    wait_for(training, proc)
    tasks = submitit_tasks(sweep)
    assert len(tasks) == 1
    for pid in tasks:
        os.kill(pid, signal.SIGUSR2)
    assert proc.wait(timeout=400) == 0, (tmp_path / "sweep.log").read_text()[-3000:]

    for seed in (1,):
        (job,) = sweep.glob(f"breakout/cnn/seed{seed}/*/")
        results = json.loads((job / "results.json").read_text())
        assert results["seed"] == seed and results["total_timesteps"] == 2048
        # One W&B run, continued by the requeued job: two segments with the same id, no step twice.
        segments = sorted(job.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(segments) == 2
        assert run_id(segments[0]) == run_id(segments[1]) == load_checkpoint(job / "checkpoint.pt")["run_id"]
        first, second = (history_steps(s) for s in segments)
        assert first and second and min(second) == max(first) + 256 and second[-1] == 2048  # contiguous
    job_logs = [p.read_text() for p in sweep.glob(".submitit/*/*_log.out")]
    assert len(job_logs) == 1 and all("Requeued job" in t and "resuming from" in t for t in job_logs)
    assert "(1 of 1 cells)" in (tmp_path / "sweep.log").read_text() and (sweep / "REPORT.md").exists()


def test_slurm_launcher_config_makes_a_requeueable_array_job(tmp_path, monkeypatch):
    """The sbatch script submitit writes from conf/hydra/launcher/slurm.yaml (nothing is submitted)."""
    import submitit

    # submitit's SLURM executor refuses to exist where there is no `srun` on PATH; it is never run here.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    cfg = compose_cfg(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], hydra=True)
    params = {k: v for k, v in OmegaConf.to_container(cfg.hydra.launcher).items() if k != "_target_"}
    params.pop("submitit_folder"), params.pop("name")
    max_timeouts = params.pop("max_num_timeout")
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm", slurm_max_num_timeout=max_timeouts)
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
    text = executor._executor._make_submission_file_text("python launch.py", "uid")
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--signal=USR2@120", "--requeue"):
        assert line in text, text
    assert executor._executor.max_num_timeout == 20


@pytest.mark.parametrize("launcher", ["slurm", "local", "joblib", "submitit_slurm"])
def test_launcher_choices_are_accepted(launcher):
    assert compose_cfg([f"hydra/launcher={launcher}"], hydra=True).hydra.launcher._target_


@pytest.mark.slow
def test_sigterm_during_pretraining_keeps_its_progress(tmp_path):
    args = ["stage=pretrain", "encoder=jepa", "encoder.net.depth=1", "logger=none", "cache_dir=cache", "threads=1"]
    args += ["pretrain.frames.num_frames=256", "pretrain.batch_size=32", "pretrain.epochs=4", "pretrain.log_every=1"]
    args.append("hydra.run.dir=run")
    log = tmp_path / "job.log"
    proc = start(args, tmp_path, log)
    wait_for(lambda: "pretrain jepa step 3/32" in log.read_text(), proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    (partial,) = (tmp_path / "cache" / "encoders").glob(".*.partial.pt")
    saved = load_checkpoint(partial)["step"]
    assert 3 <= saved < 32
    rerun = launch(args, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{partial.name} at step {saved}" in rerun.stdout + rerun.stderr  # resumed, not restarted
    assert json.loads((tmp_path / "run" / "pretrain.json").read_text())
    assert not partial.exists()
