"""Scores of results.json: the study's robustness ratio, retention above random play, games at the frame cap."""

import numpy as np
import pytest
from helpers import compose_cfg
from omegaconf import OmegaConf

from jepa_rl.envs import make_eval_env
from jepa_rl.evaluate import play, retention, robustness_ratio
from jepa_rl.perturbations import VisualPerturbation
from jepa_rl.random_baseline import random_scores


def scores(**means):
    return {name: {"mean": mean, "std": 0.0, "returns": [mean]} for name, mean in means.items()}


def test_robustness_ratio_is_the_mean_share_of_the_clean_score_kept():
    assert robustness_ratio(scores(clean=40.0, noise=30.0, hard=10.0)) == pytest.approx((0.75 + 0.25) / 2)
    assert robustness_ratio(scores(noise=30.0, clean=40.0)) == pytest.approx(0.75)  # found by name, not position


@pytest.mark.parametrize(
    "means",
    [
        dict(clean=-20.0, noise=-21.0),  # Pong: as a raw ratio, 1.05 would call the worse agent more robust
        dict(clean=0.0, noise=3.0),
        dict(clean=5.0),  # nothing to compare with
        dict(noise=5.0),  # no clean reference
    ],
)
def test_robustness_ratio_is_undefined_without_a_positive_clean_score(means):
    assert robustness_ratio(scores(**means)) is None


def test_retention_is_the_share_of_skill_above_random_kept():
    results = scores(clean=20.0, noise=11.0, hard=2.0)
    kept, note = retention(results, {"mean": 2.0, "std": 0.0, "returns": [2.0]})
    assert kept == pytest.approx({"noise": 0.5, "hard": 0.0}) and "relative to random play" in note
    # Pong's negative scores: the worse agent no longer looks more robust.
    kept, _ = retention(scores(clean=-10.0, noise=-15.0), {"mean": -20.0, "std": 0.0, "returns": [-20.0]})
    assert kept == pytest.approx({"noise": 0.5})


def test_retention_is_undefined_when_clean_play_is_not_clearly_above_random():
    clean = {"mean": 3.0, "std": 2.0, "returns": [1.0, 5.0, 1.0, 5.0]}  # standard error 1
    random = {"mean": 1.7, "std": 0.0, "returns": [1.7] * 4}
    kept, note = retention({"clean": clean, **scores(noise=2.0)}, random)
    assert kept is None and "not clearly above random play 1.70" in note
    assert retention(scores(noise=2.0), random) == (None, "no retention: eval.suite has no clean")


def test_games_at_the_frame_cap_are_counted_and_the_random_policy_is_cached(tmp_path):
    env = OmegaConf.to_container(compose_cfg(["env.max_frames=400"]).env, resolve=True)
    clean = VisualPerturbation(name="clean")
    envs = make_eval_env(env, 2, clean, seed=3, sticky_actions=0.25, threads=1)
    try:  # NOOP forever: Breakout never launches the ball, so every game runs to the cap
        stalled = play(lambda obs: np.zeros(len(obs), dtype=np.int64), envs, episodes=3)
    finally:
        envs.close()
    assert stalled["capped"] == 3 and stalled["returns"] == [0.0, 0.0, 0.0]
    first = random_scores(tmp_path, env, episodes=3, num_envs=2, sticky_actions=0.25, threads=1)
    assert len(first["returns"]) == 3 and 0 <= first["capped"] <= 3
    assert random_scores(tmp_path, env, episodes=3, num_envs=2, sticky_actions=0.25, threads=1) == first
    assert len(list((tmp_path / "random_scores").iterdir())) == 2  # the artifact and its lock: measured once
