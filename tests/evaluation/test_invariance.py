"""Policy invariance: the views are the very states the clean games were in; identical views change nothing."""

import numpy as np
import pytest
import torch
from helpers import ActionLog, cnn, compose_cfg, leaning_agent, new_agent, report_often
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_eval_env
from jepa_rl.evaluation.invariance import compare, policy_invariance

CPU = torch.device("cpu")
FIRE = 1  # Breakout's action that launches the ball
ENV = OmegaConf.to_container(compose_cfg(["env.max_frames=600"]).env, resolve=True)


def noise():
    return VisualPerturbation(name="noise", noise_std=20.0)


def make_env(num_envs, perturbation, views=None):
    return make_eval_env(ENV, num_envs, perturbation, seed=5, sticky_actions=0.25, threads=1, views=views)


def test_each_view_is_the_pipeline_of_that_perturbation_in_the_same_states():
    viewed, alone = make_env(2, VisualPerturbation(name="clean"), {"noise": noise()}), make_env(2, noise())
    rng = np.random.default_rng(0)
    try:
        (_, info), (obs, _) = viewed.reset(), alone.reset()
        assert np.array_equal(info["views"]["noise"], obs)
        for _ in range(200):  # across game ends and autoresets too
            actions = rng.integers(0, viewed.num_actions, 2)
            (_, _, _, _, info), (obs, *_) = viewed.step(actions), alone.step(actions)
            assert np.array_equal(info["views"]["noise"], obs)
    finally:
        viewed.close(), alone.close()


def test_identical_views_change_nothing_and_noise_changes_a_pixel_reading_policy():
    torch.manual_seed(0)
    agent = new_agent(cnn())
    with torch.no_grad():
        agent.heads.actor.weight.mul_(300)  # a policy that reads its pixels strongly
    clean = VisualPerturbation(name="clean")
    views = {"clean_again": VisualPerturbation(name="clean_again"), "noise": noise()}
    result = policy_invariance(agent, make_env, clean, views, states=48, num_envs=4, device=CPU, greedy=False)
    assert result["clean_again"] == {"tv": 0.0, "greedy_agreement": 1.0, "states": 48}
    assert result["noise"]["tv"] > 0.01 and result["noise"]["states"] == 48


def test_a_bf16_agent_measures_invariance_in_its_autocast_region():
    """The agent reads the states in its autocast region for the device's type (bf16 autocast needs one)."""
    torch.manual_seed(0)
    agent = new_agent(cnn(), autocast="bf16")
    clean = VisualPerturbation(name="clean")
    result = policy_invariance(
        agent, make_env, clean, {"noise": noise()}, states=8, num_envs=1, device=CPU, greedy=False
    )
    assert result["noise"]["states"] == 8 and 0 <= result["noise"]["tv"] <= 1


def test_greedy_invariance_games_are_driven_by_the_most_likely_clean_action():
    """A policy that leans to FIRE (p = 0.6) whatever it sees: greedy, the clean games it drives get FIRE at
    every step (sampled, about 13 of these 32 actions would be others)."""
    agent, driven = leaning_agent(FIRE, 0.6), ActionLog(make_env)
    clean = VisualPerturbation(name="clean")
    policy_invariance(agent, driven, clean, {"noise": noise()}, states=32, num_envs=2, device=CPU, greedy=True)
    assert driven.actions == [FIRE] * 32


def test_tv_distance_and_greedy_agreement():
    a = torch.log(torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]) + 1e-12)
    b = torch.log(torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]]) + 1e-12)
    tv, same = compare(a, b)
    assert torch.allclose(tv, torch.tensor([0.0, 1.0]), atol=1e-6) and same.tolist() == [1.0, 0.0]


def test_tv_distance_and_greedy_agreement_on_partly_different_distributions():
    # Row 1: |.7-.5| + |.2-.1| + |.1-.4| = .6, TV .3; both argmax 0 (their argmin differ: 2 and 1).
    # Row 2: |.1-.2| + |.6-.2| + |.3-.6| = .8, TV .4; argmax 1 and 2 (their argmin agree: 0).
    clean = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]))
    perturbed = torch.log(torch.tensor([[0.5, 0.1, 0.4], [0.2, 0.2, 0.6]]))
    tv, same = compare(clean, perturbed)
    assert torch.allclose(tv, torch.tensor([0.3, 0.4]), atol=1e-6) and same.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("terminal", [False, True])
def test_the_invariance_pass_reports_its_states_with_a_bar_or_log_lines(monkeypatch, caplog, terminal):
    drawn = report_often(monkeypatch, terminal)
    with caplog.at_level("INFO", logger="jepa_rl.runtime.progress"):
        out = policy_invariance(
            new_agent(cnn()),
            make_env,
            VisualPerturbation(name="clean"),
            {"noise": noise()},
            8,
            2,
            torch.device("cpu"),
            False,
        )
    assert out["noise"]["states"] == 8
    if terminal:
        assert "invariance" in drawn.getvalue() and "states" in drawn.getvalue()
    else:
        assert any(r.getMessage().startswith("invariance: 8/8 states (100%)") for r in caplog.records)
