"""Policy invariance: the views are the very states the clean games were in; identical views change nothing."""

import numpy as np
import pytest
import torch
from helpers import ActionLog, cnn, compose_cfg, leaning_agent, new_agent
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_eval_env
from jepa_rl.evaluation.games import evaluate
from jepa_rl.evaluation.invariance import MIN_GAME_TV, StateSampler, compare

CPU = torch.device("cpu")
FIRE = 1  # Breakout's action that launches the ball
ENV = OmegaConf.to_container(compose_cfg(["env.max_frames=600"]).env, resolve=True)


def noise():
    return VisualPerturbation(name="noise", noise_std=20.0)


def make_env(num_envs, perturbation, views=None, side_by_side=()):
    return make_eval_env(
        ENV, num_envs, perturbation, 5, sticky_actions=0.25, threads=1, views=views, side_by_side=side_by_side
    )


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


def sampled(agent, views, states, num_envs=4, games=4, greedy=False, make=make_env, seed=(7,)):
    """The invariance measures of ``agent``'s clean evaluation games (``games`` of them) on ``states`` states."""
    sampler = StateSampler(agent, views, states, seed, CPU)
    evaluate(agent, make, {"clean": VisualPerturbation(name="clean")}, games, num_envs, CPU, greedy, sampler=sampler)
    return sampler


def reading_agent():
    torch.manual_seed(0)
    agent = new_agent(cnn())
    with torch.no_grad():
        agent.heads.actor.weight.mul_(300)  # a policy that reads its pixels strongly
    return agent


def test_identical_views_change_nothing_and_noise_changes_a_pixel_reading_policy():
    views = {"clean_again": VisualPerturbation(name="clean_again"), "noise": noise()}
    result = sampled(reading_agent(), views, states=48).measures()
    game_tv = result["noise"]["game_tv"]
    assert result["clean_again"] == {
        "tv": 0.0, "greedy_agreement": 1.0, "states": 48, "game_tv": game_tv, "tv_ratio": 0.0
    }  # fmt: skip
    assert result["noise"]["tv"] > 0.01 and result["noise"]["states"] == 48
    assert game_tv > MIN_GAME_TV and result["noise"]["tv_ratio"] == pytest.approx(result["noise"]["tv"] / game_tv)


def test_the_sample_repeats_with_its_seed_and_the_games_variation_is_read_on_clean_states():
    """The same seeds (torch's for the actions, the sampler's for the states) keep the same states; the game's
    own variation pairs clean states, whichever view the suite lists first."""
    agent = reading_agent()
    views = {"clean_again": VisualPerturbation(name="clean_again"), "noise": noise()}

    def run(views, seed=(7,)):
        torch.manual_seed(0)
        return sampled(agent, views, states=24, games=2, seed=seed)

    first, again, other = run(views), run(views), run(views, seed=(8,))
    assert [place for _, _, place in first.kept] == [place for _, _, place in again.kept]
    assert [place for _, _, place in other.kept] != [place for _, _, place in first.kept]
    swapped = run({"noise": noise(), "clean_again": views["clean_again"]})
    assert first.measures()["noise"]["game_tv"] == swapped.measures()["noise"]["game_tv"]


def test_a_policy_that_ignores_the_pixels_has_no_invariance_ratio_not_a_perfect_one():
    """Zero actor weights: the same action distribution on every frame. Its TV under noise is 0, which looks
    perfectly invariant; its clean states of one game differ by 0 too, so the ratio is undefined."""
    result = sampled(leaning_agent(FIRE, 0.6), {"noise": noise()}, states=48).measures()["noise"]
    assert result["tv"] == pytest.approx(0.0, abs=1e-6) and result["game_tv"] == pytest.approx(0.0, abs=1e-6)
    assert result["tv_ratio"] is None


def test_states_are_sampled_uniformly_across_whole_games_not_from_their_start():
    """3 games of 150 agent steps on 2 environments (450 states offered: the second environment plays one
    counted game, then a game that does not count): the 60 kept are a uniform sample of the 450, so about
    half come from the second half (a binomial's sd: 6.5%), and some from the last tenth; the first 60,
    which a pass over the games' start would take, hold few."""
    sampler = sampled(reading_agent(), {"noise": noise()}, states=60, num_envs=2, games=3)
    places = np.array([place for _, _, place in sampler.kept])
    assert len(places) == 60 and len(set(places.tolist())) == 60 and places.max() <= 450
    assert 0.3 < (places > 225).mean() < 0.7 and (places > 405).any() and (places <= 60).mean() < 0.3
    # Every counted game is represented, and only those.
    assert {game for _, game, _ in sampler.kept} == {(0, 0), (0, 1), (1, 0)}


def test_the_games_own_variation_pairs_states_of_the_same_game_only():
    """Two games whose policy is constant inside each game but differs between them: pairs within a game
    differ by nothing; a pairing across games would see a TV of 0.5."""
    sampler = StateSampler(None, {"noise": noise()}, 8, (1,), CPU)
    a, b = torch.log(torch.tensor([0.5, 0.5, 0.0, 0.0]) + 1e-12), torch.log(torch.tensor([0.0, 0.0, 0.5, 0.5]) + 1e-12)
    sampler.kept = [(torch.stack([a, a]), (0, 0), k) for k in range(4)] + [(torch.stack([b, b]), (0, 1), 4)]
    sampler.kept += [(torch.stack([b, a]), (1, 0), 5), (torch.stack([a, b]), (1, 0), 6)]
    # Games (0, 0): 4 states of a; (0, 1): one state, no pair; (1, 0): states b and a, TV 1 between them.
    # Pairs: 4 in game (0, 0) at 0, 2 in game (1, 0) at 1: mean 2 / 6.
    assert sampler.game_tv(torch.stack([s[0][0] for s in sampler.kept])) == pytest.approx(2 / 6, abs=1e-6)
    alone = StateSampler(None, {"noise": noise()}, 8, (1,), CPU)
    alone.kept = [(torch.stack([a, a]), (0, k), k) for k in range(3)]  # one state per game: nothing to pair
    assert alone.game_tv(torch.stack([s[0][0] for s in alone.kept])) is None


def test_a_bf16_agent_measures_invariance_in_its_autocast_region():
    """The agent reads the states in its autocast region for the device's type (bf16 autocast needs one)."""
    torch.manual_seed(0)
    agent = new_agent(cnn(), autocast="bf16")
    result = sampled(agent, {"noise": noise()}, states=8, num_envs=1, games=1).measures()
    assert result["noise"]["states"] == 8 and 0 <= result["noise"]["tv"] <= 1


def test_greedy_invariance_games_are_driven_by_the_most_likely_clean_action():
    """A policy that leans to FIRE (p = 0.6) whatever it sees: greedy, the clean games it drives get FIRE at
    every step (sampled, about 40% of the actions would be others); an environment whose game has ended
    gets NOOP until the other's ends."""
    agent, driven = leaning_agent(FIRE, 0.6), ActionLog(make_env)
    sampled(agent, {"noise": noise()}, states=32, num_envs=2, games=2, greedy=True, make=driven)
    assert set(driven.actions) <= {FIRE, 0} and driven.actions.count(FIRE) >= 32
    assert driven.actions[:2] == [FIRE, FIRE]


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
