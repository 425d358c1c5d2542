"""Frame collection: every k-th observation with its RAM; collections replay exactly and mix in a
checkpoint's policy; the content-addressed cache builds once and rebuilds what is corrupt. (That the
RAM-recording emulator gives the training pipeline's frames is tested in ``test_envs.py``.)"""

import multiprocessing
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cnn, compose_cfg, new_agent, pipeline, save_agent_checkpoint
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.pretrain.frame_sets import ARRAYS, cached_frames, collect, later_rows, load_frames
from jepa_rl.pretrain.settings import FramesSettings
from jepa_rl.runtime.artifact_cache import cached_artifact, spec_key

FRAMES = FramesSettings(num_frames=96, keep_every=3, num_envs=2, seed=3)


@pytest.fixture(scope="module")
def env() -> dict:
    """The ``env`` group (breakout) as ``cached_frames`` gets it: a plain dict."""
    return OmegaConf.to_container(compose_cfg([]).env, resolve=True)


def test_collect_keeps_every_kth_observation_with_its_ram():
    # Games capped at 100 emulator frames (25 steps): several end, so the game ids have to advance.
    envs = pipeline("breakout", 4, 3, record_ram=True, num_threads=1, max_frames=100)
    data = collect(envs, num_frames=90, keep_every=3, seed=3)
    envs.close()
    assert data["frames"].shape == (90, 4, 84, 84) and data["frames"].dtype == np.uint8
    assert data["ram"].shape == (90, 128) and data["actions"].shape == (69, 4)  # ceil(90 / 4) * 3 steps
    assert np.all(data["step"] % 3 == 2)
    assert len(np.unique(data["ram"][:, 72])) > 1  # the paddle moved under random actions
    # Rows are laid out (kept slot, env), and a game's id is env + 4 * (games that env finished): the id
    # names its env, and within an env it stays, or moves to the env's next id when a game ends.
    assert np.array_equal(data["episode"] % 4, np.arange(90) % 4)
    moves = np.diff(data["episode"][:88].reshape(22, 4), axis=0)  # [kept slot - 1, env]
    assert set(np.unique(moves)) == {0, 4}


def test_later_rows_stay_in_the_game():
    """Rows laid out as collect lays them out, (kept slot, env): env 0 plays games 0 then 2, env 1 game 1."""
    episode = np.array([0, 1, 0, 1, 2, 1, 2, 1])
    step = np.array([1, 1, 3, 3, 5, 5, 7, 7])
    assert later_rows(episode, step, 0).tolist() == list(range(8))
    assert later_rows(episode, step, 1).tolist() == [2, 3, -1, 5, 6, 7, -1, -1]
    assert later_rows(episode, step, 3).tolist() == [-1, 7, -1, -1, -1, -1, -1, -1]
    assert (later_rows(episode, step, 8) == -1).all()


def test_collection_in_several_processes_gives_the_same_frames():
    data = []
    for threads in (1, 2):  # 2: one process per game
        envs = pipeline("breakout", 4, 5, record_ram=True, num_threads=threads)
        data.append(collect(envs, num_frames=64, keep_every=2, seed=5))
        envs.close()
    for name in ARRAYS:
        assert np.array_equal(data[0][name], data[1][name]), name


def test_cached_frames_replay_the_same_games_under_a_perturbation(tmp_path, env):
    clean_dir = cached_frames(tmp_path, env, FRAMES, threads=1)
    clean = load_frames(clean_dir)
    again = load_frames(cached_frames(tmp_path, env, FRAMES, VisualPerturbation(), replay=clean_dir, threads=1))
    assert np.array_equal(again["frames"], clean["frames"]) and np.array_equal(again["ram"], clean["ram"])
    noisy = VisualPerturbation("noise", noise_std=25)
    replay = load_frames(cached_frames(tmp_path, env, FRAMES, noisy, replay=clean_dir, threads=1))
    assert np.array_equal(replay["ram"], clean["ram"])  # the same emulator states...
    assert not np.array_equal(replay["frames"], clean["frames"])  # ...seen through noise


def test_cache_builds_once_and_rebuilds_a_corrupt_artifact(tmp_path):
    builds = []

    def build(directory):
        builds.append(directory)
        (directory / "data.bin").write_bytes(b"x" * 1000)

    spec = {"what": "test", "size": 1000}
    first = cached_artifact(tmp_path, "things", spec, build)
    assert cached_artifact(tmp_path, "things", spec, build) == first and len(builds) == 1
    assert first.name == spec_key(spec)
    (first / "data.bin").write_bytes(b"x" * 500)  # truncated behind the cache's back
    assert cached_artifact(tmp_path, "things", spec, build) == first and len(builds) == 2
    assert (first / "data.bin").read_bytes() == b"x" * 1000
    other = cached_artifact(tmp_path, "things", {**spec, "size": 2}, build)
    assert other != first and len(builds) == 3


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    def build(directory):
        (directory / "half.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_artifact(tmp_path, "things", {"a": 1}, build)
    assert not (tmp_path / "things" / spec_key({"a": 1})).exists()


def test_a_checkpoint_policy_mixes_into_the_random_one(tmp_path, env):
    # An agent that always plays RIGHT (action 2): its share of the actions follows policy_fraction.
    policy = new_agent(cnn())
    with torch.no_grad():
        policy.heads.actor.weight.zero_()
        policy.heads.actor.bias.copy_(torch.tensor([0.0, 0.0, 50.0, 0.0]))
    net = OmegaConf.to_container(compose_cfg([]).encoders.cnn.net, resolve=True)
    save_agent_checkpoint(policy, tmp_path / "checkpoint.pt", net)
    shares = []
    for fraction in (0.0, 0.5, 1.0):
        frames = replace(FRAMES, policy_checkpoint=str(tmp_path / "checkpoint.pt"), policy_fraction=fraction)
        data = load_frames(cached_frames(tmp_path, env, frames, threads=1))
        shares.append((data["actions"] == 2).mean())
    assert shares[0] == pytest.approx(0.25, abs=0.08)
    assert shares[1] == pytest.approx(0.625, abs=0.08)
    assert shares[2] == 1.0


def _build_slowly(directory):
    with open(directory.parent.parent / "builds.log", "a") as log:
        log.write("built\n")
    time.sleep(1.0)  # long enough that the other jobs arrive while this one builds
    (directory / "data.bin").write_bytes(b"x" * 1000)


def _ask_for_artifact(root):
    return str(cached_artifact(Path(root), "things", {"shared": True}, _build_slowly))


@pytest.mark.slow
def test_four_parallel_jobs_build_a_shared_artifact_once(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        paths = pool.map(_ask_for_artifact, [str(tmp_path)] * 4)
    assert len(set(paths)) == 1 and (Path(paths[0]) / "data.bin").read_bytes() == b"x" * 1000
    assert (tmp_path / "builds.log").read_text() == "built\n"


def _build_forever(directory):
    (directory / "data.bin").write_bytes(b"half")
    (directory.parent.parent / "started").touch()
    time.sleep(300)  # killed before it gets further


@pytest.mark.slow
def test_a_builder_killed_mid_way_leaves_nothing_another_job_loads(tmp_path):
    builder = multiprocessing.get_context("spawn").Process(
        target=cached_artifact, args=(tmp_path, "things", {"shared": True}, _build_forever)
    )
    builder.start()
    deadline = time.time() + 120
    while not (tmp_path / "started").exists():
        assert time.time() < deadline and builder.is_alive()
        time.sleep(0.05)
    os.kill(builder.pid, signal.SIGKILL)  # holding the lock, half-way through its files
    builder.join()
    builds = []

    def build(directory):
        builds.append(1)
        (directory / "data.bin").write_bytes(b"x" * 1000)

    path = cached_artifact(tmp_path, "things", {"shared": True}, build)  # the lock died with the builder
    assert builds == [1] and (path / "data.bin").read_bytes() == b"x" * 1000
    assert not list((tmp_path / "things").glob(".*.tmp"))
