"""ImageNet-C corruption families: the reference's definitions, seeded per environment, in the pipeline."""

import math

import cv2
import numpy as np
import pytest
from helpers import pipeline

from jepa_rl.corruptions import FAMILIES, corrupt, disk_kernel, motion_kernel
from jepa_rl.perturbations import VisualPerturbation, suite_config


@pytest.fixture(scope="module")
def frame():
    """A real Breakout frame at full resolution, RGB."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make("ALE/Breakout-v5")
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        obs, *_ = env.step(1)
    env.close()
    return obs


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_changes_the_frame_more_at_each_severity(frame, family):
    distances = []
    for severity in range(1, 6):
        out = corrupt(frame, family, severity, np.random.default_rng(0))
        assert out.shape == frame.shape and out.dtype == np.uint8
        distances.append(np.abs(out.astype(int) - frame).mean())
    assert distances[0] > 0
    # Severity 5 is the strongest; pixelate's and JPEG's steps are not monotone on a flat-coloured frame.
    assert distances[-1] == max(distances) or family in ("pixelate", "jpeg_compression")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_corruption_draws_only_from_the_generator_it_is_given(frame, family):
    np.random.seed(1)
    a = corrupt(frame, family, 3, np.random.default_rng(7))
    np.random.seed(2)
    assert np.array_equal(a, corrupt(frame, family, 3, np.random.default_rng(7)))


def test_brightness_raises_the_hsv_value_at_fixed_hue_and_saturation():
    x = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    x[:5] = 0  # black pixels become grey
    hsv = cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.3, 0, 1)
    expected = np.rint(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255)
    assert np.abs(corrupt(x, "brightness", 3, np.random.default_rng(0)) - expected).max() <= 1


def test_contrast_and_blurs_keep_a_flat_frame_flat():
    flat = np.full((210, 160, 3), 90, dtype=np.uint8)
    for family in ("contrast", "motion_blur"):
        assert np.array_equal(corrupt(flat, family, 5, np.random.default_rng(0)), flat)
    assert np.array_equal(corrupt(flat, "defocus_blur", 3, np.random.default_rng(0)), flat)
    # As in the reference, the disks that fill their grid (radius 8 and 10) sum to 1.01 once anti-aliased.
    assert disk_kernel(6, 0.5).sum() == pytest.approx(1, abs=1e-5)
    assert disk_kernel(10, 0.5).sum() == pytest.approx(1.011, abs=1e-3)


def test_motion_blur_smears_along_its_angle():
    kernel = motion_kernel(10, 3, angle=0.0)  # horizontal: one row of weights, decaying to one side
    rows = np.flatnonzero(kernel.sum(1))
    assert len(rows) == 1 and kernel.sum() == pytest.approx(1, abs=1e-6)
    weights = kernel[rows[0]][kernel[rows[0]] > 0]
    assert len(weights) == 21 and np.all(np.diff(weights) <= 0)  # from the pixel itself outwards
    diagonal = motion_kernel(10, 3, angle=45.0)
    ys, xs = np.nonzero(diagonal)
    assert math.isclose(abs(np.corrcoef(ys, xs)[0, 1]), 1.0, rel_tol=1e-6)


def test_a_corruption_in_the_perturbation_is_seeded_per_environment():
    frames = np.random.default_rng(0).integers(0, 256, (3, 210, 160, 3), dtype=np.uint8)
    p = VisualPerturbation(name="shot_noise_3", corruption="shot_noise", severity=3)
    p.bind([5, 6, 5])
    out = p(frames[[0, 0, 0]])
    assert np.array_equal(out[0], out[2]) and not np.array_equal(out[0], out[1])
    assert not p.is_identity and p.params()["corruption"] == "shot_noise"


def test_a_suite_names_a_corruption_family_at_a_severity():
    named = {"clean": {"name": "clean"}}
    assert suite_config(named, "clean") == {"name": "clean"}
    node = suite_config(named, "motion_blur_2")
    assert node["corruption"] == "motion_blur" and node["severity"] == 2
    with pytest.raises(ValueError, match="unknown perturbation 'fog_3'"):
        suite_config(named, "fog_3")
    with pytest.raises(ValueError, match="severity=6 is outside 1-5"):
        VisualPerturbation(name="x", corruption="pixelate", severity=6)
    with pytest.raises(ValueError, match="corruption=snow is not a corruption family"):
        VisualPerturbation(name="x", corruption="snow", severity=2)


def test_the_pipeline_corrupts_what_the_agent_sees_and_nothing_of_the_game():
    """Same seed and actions: other observations, the same rewards, lives and ends of games."""
    runs = []
    for perturbation in (
        VisualPerturbation(name="clean"),
        VisualPerturbation(name="motion_blur_5", corruption="motion_blur", severity=5),
    ):
        envs = pipeline("breakout", 2, 3, perturbation=perturbation, max_frames=400, num_threads=1)
        obs, _ = envs.reset()
        seen, events = [obs], []
        for _ in range(120):
            obs, reward, term, trunc, info = envs.step(np.ones(2, dtype=np.int32))
            seen.append(obs)
            events.append((reward.tolist(), term.tolist(), trunc.tolist(), info["lives"].tolist()))
        envs.close()
        runs.append((np.stack(seen), events))
    (clean, clean_events), (blurred, blurred_events) = runs
    assert clean_events == blurred_events
    assert np.abs(clean.astype(int) - blurred).mean() > 1
