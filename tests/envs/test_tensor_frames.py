"""The pipeline's frame work as torch ops gives OpenCV's observations: grayscale and HSV bit for bit, the
area resize and whole pipelines within one gray level, noise with the same statistics; PPO, evaluation
and frame collection run on it."""

import cv2
import numpy as np
import pytest
import torch
from helpers import cnn, compose_cfg, new_agent, pipeline, ppo
from omegaconf import OmegaConf

from jepa_rl.config import ConfigError
from jepa_rl.config.resolve import frames_device
from jepa_rl.envs import tensor_frames
from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_eval_env, to_gray84, to_host
from jepa_rl.evaluation.games import agent_policy, play
from jepa_rl.models.agent import make_optimizer
from jepa_rl.pretrain.frame_sets import collect
from jepa_rl.runtime.tracking import Tracker

CPU = torch.device("cpu")
STUDY = {  # the study's perturbations (conf/perturbations)
    "color_jitter": VisualPerturbation("color_jitter", 0.2, 0.3, 0.2),
    "hard": VisualPerturbation("hard", 0.4, 0.5, 0.4, 25.0),
}


def colours(n: int, seed: int = 0) -> np.ndarray:
    """``n`` random RGB colours as an image ``[n / 256, 256, 3]``, the Atari palette's extremes included."""
    rgb = np.random.default_rng(seed).integers(0, 256, (n, 3), dtype=np.uint8)
    rgb[:8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [1, 1, 1], [254, 0, 1], [7, 7, 8]]
    return rgb.reshape(-1, 256, 3)


def test_grayscale_and_hsv_are_opencvs_bit_for_bit():
    rgb = colours(1 << 20)
    assert np.array_equal(tensor_frames.to_gray(torch.from_numpy(rgb)).numpy(), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    hsv = tensor_frames.rgb_to_hsv(torch.from_numpy(rgb)).numpy()
    assert np.array_equal(hsv, cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
    h, s, v = np.meshgrid(np.arange(180), np.arange(256), np.arange(0, 256, 5), indexing="ij")
    every_hsv = np.stack([h, s, v], -1).astype(np.uint8).reshape(-1, 256, 3)
    back = tensor_frames.hsv_to_rgb(torch.from_numpy(every_hsv)).numpy()
    assert np.array_equal(back, cv2.cvtColor(every_hsv, cv2.COLOR_HSV2RGB))


def test_area_weights_are_opencvs_inter_area_map():
    weights = tensor_frames.area_weights(210, 84)
    assert weights.shape == (84, 210) and np.allclose(weights.sum(1), 1)
    image = np.random.default_rng(1).random((210, 160), dtype=np.float32)
    expected = cv2.resize(image, (84, 84), interpolation=cv2.INTER_AREA)
    assert np.allclose(weights @ image @ tensor_frames.area_weights(160, 84).T, expected, atol=1e-5)


def test_gray84_is_within_one_level_of_opencv_on_game_frames():
    envs = pipeline("breakout", 4, 0, num_threads=1)
    rng = np.random.default_rng(0)
    diffs = []
    try:
        raw, _ = envs.ale.reset(seed=envs.seeds)
        for _ in range(60):
            raw, *_ = envs.ale.step(rng.integers(0, envs.num_actions, 4).astype(np.int32))
            frames = raw[:, -1]
            diffs.append(to_gray84(frames).astype(int) - tensor_frames.to_gray84(torch.from_numpy(frames)).numpy())
    finally:
        envs.close()
    diffs = np.abs(np.stack(diffs))
    assert diffs.max() <= 1 and diffs.mean() < 1e-3


def play_both(perturbation: VisualPerturbation, steps: int = 40):
    """Observations of the OpenCV and the torch pipelines over the same games (same seeds, same actions)."""
    kwargs = {"num_threads": 1, "max_frames": 120}  # games cut at 30 steps: the runs cross a game end
    host = pipeline("breakout", 2, 7, perturbation=perturbation.copy(), **kwargs)
    torch_ops = pipeline("breakout", 2, 7, perturbation=perturbation.copy(), frames_device="cpu", **kwargs)
    rng = np.random.default_rng(0)
    seen = []
    try:
        (a, _), (b, _) = host.reset(), torch_ops.reset()
        assert isinstance(b, torch.Tensor) and b.dtype == torch.uint8 and b.shape == a.shape
        seen.append((a, b.numpy()))
        ended = False
        for _ in range(steps):  # across a game end, too (a new stack, new jitter)
            actions = rng.integers(0, host.num_actions, 2)
            (a, ra, _, truncated, _), (b, rb, *_) = host.step(actions), torch_ops.step(actions)
            assert np.array_equal(ra, rb)
            ended |= truncated.any()
            seen.append((a, b.numpy()))
    finally:
        host.close(), torch_ops.close()
    assert ended
    return np.stack([a for a, _ in seen]).astype(int), np.stack([b for _, b in seen]).astype(int)


@pytest.mark.parametrize("name", ["clean", "color_jitter", "gaussian_noise_3"])
def test_the_torch_pipeline_sees_what_the_opencv_one_does(name):
    perturbation = STUDY.get(name) or VisualPerturbation(name)
    if name == "gaussian_noise_3":  # a corruption family runs on the host in both
        perturbation = VisualPerturbation(name, corruption="gaussian_noise", severity=3)
    host, torch_ops = play_both(perturbation)
    diff = np.abs(host - torch_ops)
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_the_torch_pipelines_noise_has_the_host_noise_statistics():
    clean, _ = play_both(VisualPerturbation("clean"))
    host, torch_ops = play_both(VisualPerturbation("noise", noise_std=10.0))
    host_std, torch_std = (host - clean).std(), (torch_ops - clean).std()
    assert host_std > 1 and torch_std == pytest.approx(host_std, rel=0.05)
    assert not np.array_equal(host, torch_ops)  # drawn from the device's generator, not the host's


def test_pipeline_setting_is_checked_and_auto_is_opencv_on_a_cpu():
    assert frames_device("auto", CPU) is None and frames_device("opencv", CPU) is None
    assert frames_device("torch", CPU) == "cpu"
    with pytest.raises(ConfigError, match="pipeline=gpu is not a pipeline; choose auto, opencv or torch"):
        frames_device("gpu", CPU)


def test_ppo_evaluation_and_frame_collection_run_on_the_torch_pipeline():
    envs = pipeline("breakout", 2, 0, num_threads=1, frames_device="cpu")
    agent = new_agent(cnn(), envs.num_actions)
    try:
        learner = ppo(total_timesteps=64, num_envs=2, num_steps=32)
        learner.learn(agent, envs, make_optimizer(agent, 2.5e-4), Tracker(), CPU)
    finally:
        envs.close()
    env = {**OmegaConf.to_container(compose_cfg(["env.max_frames=200"]).env, resolve=True), "frames_device": "cpu"}
    evaluation = make_eval_env(env, 2, STUDY["color_jitter"].copy(), seed=3, sticky_actions=0.25, threads=1)
    with agent.acting("cpu"):
        scores = play(agent_policy(agent, CPU, greedy=False), evaluation, episodes=2)
    assert len(scores["returns"]) == 2
    collecting = pipeline("breakout", 2, 3, num_threads=1, record_ram=True, frames_device="cpu")
    data = collect(collecting, num_frames=8, keep_every=2, seed=0)
    collecting.close()
    assert data["frames"].dtype == np.uint8 and data["frames"].shape == (8, 4, 84, 84)
    assert isinstance(to_host(torch.zeros(2)), np.ndarray)
