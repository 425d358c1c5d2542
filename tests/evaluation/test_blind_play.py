"""The blind floor: a policy that keeps the agent's action preferences but never looks at the screen."""

import numpy as np
import pytest
import torch
from helpers import compose_cfg, leaning_agent
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_eval_env
from jepa_rl.evaluation.blind_play import blind_distribution, blind_scores, fixed_distribution_policy
from jepa_rl.evaluation.games import play

CPU = torch.device("cpu")
SHORT = OmegaConf.to_container(compose_cfg(["env.max_frames=120"]).env, resolve=True)  # 30 agent steps a game
LEFT = 3  # Breakout: NOOP, FIRE, RIGHT, LEFT


def short_envs(num_envs=2, seed=5):
    return make_eval_env(SHORT, num_envs, VisualPerturbation(name="clean"), seed, sticky_actions=0.25, threads=1)


def test_a_blind_policy_draws_its_actions_at_the_given_frequencies_and_repeats_with_its_seed():
    probs = np.array([0.1, 0.4, 0.05, 0.45])
    act = fixed_distribution_policy(probs, (1, 2, 3))
    drawn = np.concatenate([act(np.zeros((8, 4, 84, 84))) for _ in range(5000)])
    assert np.bincount(drawn, minlength=4) / len(drawn) == pytest.approx(probs, abs=0.01)  # 40k draws: sd 0.0025
    again = fixed_distribution_policy(probs, (1, 2, 3))
    other = fixed_distribution_policy(probs, (1, 2, 4))
    first = [again(np.zeros((8, 1))) for _ in range(3)]
    assert [a.tolist() for a in first] == [d.tolist() for d in np.split(drawn[:24], 3)]
    assert [other(np.zeros((8, 1))).tolist() for _ in range(3)] != [a.tolist() for a in first]


def test_play_counts_the_actions_of_the_counted_games_only():
    envs = short_envs(num_envs=2)
    try:  # 3 games on 2 environments: the second plays one game, then its actions no longer count
        scores = play(lambda obs: np.full(len(obs), LEFT), envs, episodes=3)
    finally:
        envs.close()
    # Every game of SHORT lasts 30 agent steps (the frame cap, 120 frames at frame skip 4; no life is lost
    # so soon): 3 games are 90 counted actions, all LEFT.
    assert scores["capped"] == 3 and scores["action_counts"] == [0, 0, 0, 90]


def test_action_frequencies_are_the_agents_clean_choices_and_a_fixed_frame_its_policy_on_one_screen():
    clean = {"action_counts": [10, 30, 0, 60]}
    agent = leaning_agent(LEFT, 0.7)  # ignores the pixels: LEFT 0.7, the others 0.1 each
    made = []

    def make_clean_env(n):
        made.append(n)
        return short_envs(n)

    frequencies = blind_distribution("action_frequencies", clean, agent, make_clean_env, CPU, greedy=False)
    assert frequencies.tolist() == [0.1, 0.3, 0.0, 0.6] and made == []  # no game needed
    frozen = blind_distribution("fixed_frame", clean, agent, make_clean_env, CPU, greedy=False)
    assert frozen == pytest.approx([0.1, 0.1, 0.1, 0.7], abs=1e-5) and made == [1]
    greedy = blind_distribution("fixed_frame", clean, agent, make_clean_env, CPU, greedy=True)
    assert greedy.tolist() == [0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="eval.blind_floor=frozen is not a blind floor"):
        blind_distribution("frozen", clean, agent, make_clean_env, CPU, greedy=False)


def test_blind_scores_play_the_given_games_and_record_the_distribution():
    probs = np.array([0.0, 0.0, 0.0, 1.0])  # always LEFT: every 30-step game ends at the cap
    envs = short_envs(num_envs=2, seed=9)
    try:
        scores = blind_scores(probs, envs, episodes=4, seed=(9, 3))
        seeds = envs.seeds.tolist()
    finally:
        envs.close()
    assert len(scores["returns"]) == 4 and scores["capped"] == 4
    assert scores["action_distribution"] == [0.0, 0.0, 0.0, 1.0] and scores["action_counts"] == [0, 0, 0, 120]
    assert seeds == short_envs(2, 9).seeds.tolist()
