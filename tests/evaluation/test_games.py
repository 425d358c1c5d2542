"""Scores of results.json: the study's robustness ratio, retention above random play, games at the frame cap."""

import math

import numpy as np
import pytest
import torch
from helpers import ActionLog, cnn, compose_cfg, leaning_agent, new_agent, report_often
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_eval_env
from jepa_rl.envs.reference_scores import minimum_skill
from jepa_rl.evaluation.games import Floors, evaluate, play, retention, robustness_ratio, standard_error
from jepa_rl.evaluation.random_play import random_scores

CPU = torch.device("cpu")
SHORT = OmegaConf.to_container(compose_cfg(["env.max_frames=120"]).env, resolve=True)  # 30 agent steps a game
FIRE = 1  # Breakout's action that launches the ball


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
    kept, note = retention(results, Floors({"mean": 2.0, "std": 0.0, "returns": [2.0]}))
    assert kept == pytest.approx({"noise": 0.5, "hard": 0.0}) and "relative to random play" in note
    # Pong's negative scores: the worse agent no longer looks more robust.
    kept, _ = retention(scores(clean=-10.0, noise=-15.0), Floors({"mean": -20.0, "std": 0.0, "returns": [-20.0]}))
    assert kept == pytest.approx({"noise": 0.5})


def test_retention_is_undefined_when_clean_play_is_not_clearly_above_random():
    clean = {"mean": 3.0, "std": 2.0, "returns": [1.0, 5.0, 1.0, 5.0]}  # standard error 1
    random = {"mean": 1.7, "std": 0.0, "returns": [1.7] * 4}
    kept, note = retention({"clean": clean, **scores(noise=2.0)}, Floors(random))
    assert kept is None and "not clearly above random play 1.70" in note
    assert retention(scores(noise=2.0), Floors(random)) == (None, "no retention: eval.suite has no clean")


def games(*returns):
    """Scores of games as ``play`` reports them: mean, population std (``np.std``) and the returns."""
    return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "returns": list(returns)}


def test_the_standard_error_of_a_mean_score_is_its_std_over_the_root_of_the_games():
    # [1, 3, 5, 7]: mean 4, deviations -3 -1 1 3, population variance (9+1+1+9)/4 = 5, std sqrt(5);
    # standard error sqrt(5) / sqrt(4) = 1.1180.
    assert standard_error(games(1.0, 3.0, 5.0, 7.0)) == pytest.approx(math.sqrt(5) / 2)
    assert standard_error({"mean": 0.0, "std": 6.0, "returns": [0.0] * 9}) == pytest.approx(2.0)  # 6 / sqrt(9)
    assert standard_error({"mean": 0.0, "std": 0.0, "returns": []}) == math.inf  # no games: no evidence


# The gate at its edge, with spreads on both sides. Clean: 4 games, std 8 -> standard error 8 / sqrt(4) = 4.
# Random: 16 games, std 12 -> 12 / sqrt(16) = 3. Margin: 2 * sqrt(4**2 + 3**2) = 2 * 5 = 10 exactly, so with
# random play at 2 a clean mean of 12 is exactly on the gate. (Standard errors of 4 and 3, not 2: a squared
# 2 equals a doubled one, which would hide a gate that doubles instead of squaring.)
RANDOM_16 = games(*[-10.0, 14.0] * 8)  # mean 2, std 12


def clean_4(mean):
    return games(mean - 8, mean + 8, mean - 8, mean + 8)  # std 8


@pytest.mark.parametrize(
    ("clean", "defined"),
    [
        (12.01, True),  # 10.01 above random: a hair over the margin of 10
        (12.0, False),  # exactly the margin: "clearly above" is strictly above
        (11.99, False),  # 9.99 above: a hair under
    ],
)
def test_retention_is_gated_at_two_standard_errors_of_the_difference_of_the_means(clean, defined):
    assert clean_4(clean)["std"] == pytest.approx(8) and RANDOM_16["std"] == 12 and RANDOM_16["mean"] == 2
    results = {"clean": clean_4(clean), "noise": games(4.0, 5.0)}
    kept, note = retention(results, Floors(RANDOM_16))
    if defined:  # (noise - random) / (clean - random) = (4.5 - 2) / (12.01 - 2)
        assert kept == pytest.approx({"noise": 2.5 / 10.01}) and "relative to random play (2.00)" in note
    else:
        assert kept is None and "by more than two standard errors, 10.00" in note


@pytest.mark.parametrize(
    ("clean", "defined"),
    [
        (15.01, True),  # 13.01 above random: over the minimum skill of 13 (and the error margin of 10)
        (15.0, False),  # exactly the minimum skill: not above it
        (14.99, False),  # above the error margin, a hair under the minimum skill
    ],
)
def test_retention_also_needs_clean_play_above_the_floor_by_the_minimum_skill(clean, defined):
    results = {"clean": clean_4(clean), "noise": games(4.0, 5.0)}
    kept, note = retention(results, Floors(RANDOM_16), min_skill=13.0)
    if defined:
        assert kept == pytest.approx({"noise": 2.5 / 13.01})
    else:
        assert kept is None and "two standard errors, 10.00, and the minimum skill, 13.00" in note


def test_the_minimum_skill_is_a_share_of_the_games_random_to_human_range():
    assert minimum_skill("ALE/Breakout-v5", 0.1) == pytest.approx(0.1 * (30.5 - 1.7))  # 2.88 points
    assert minimum_skill("ALE/Pong-v5", 0.2) == pytest.approx(0.2 * (14.6 + 20.7))  # 7.06
    assert minimum_skill("ALE/Tetris-v5", 0.1) == 0.0  # no published scores: the error margin alone


def test_retention_is_measured_above_the_higher_of_random_and_blind_play():
    """A blind policy that beats random play raises the floor: the skill is clean play's above it, and
    the gate's standard error is the blind policy's."""
    results = {"clean": games(10.0, 14.0, 10.0, 14.0), "noise": games(6.0, 8.0)}  # clean 12 (SE 1), noise 7
    random = games(1.0, 3.0, 1.0, 3.0)  # mean 2
    blind = games(3.0, 5.0, 3.0, 5.0)  # mean 4, standard error 0.5
    kept, note = retention(results, Floors(random, blind))
    assert kept == pytest.approx({"noise": (7 - 4) / (12 - 4)})
    assert note == "retention relative to blind play (4.00; random play 2.00) and clean (12.00)"
    below = games(0.0, 2.0, 0.0, 2.0)  # mean 1: random play stays the floor
    kept, note = retention(results, Floors(random, below))
    assert kept == pytest.approx({"noise": 0.5}) and note.startswith("retention relative to random play (2.00; blind")
    # Clean 12 against a blind 11.5 of spread 4 (standard error 2): margin 2 * sqrt(1 + 4) = 4.47 > 0.5.
    kept, note = retention(results, Floors(random, games(7.5, 15.5, 7.5, 15.5)))
    assert kept is None and "not clearly above blind play 11.50" in note


def test_the_blind_floor_of_a_game_shift_is_its_own_blind_play():
    results = {"clean": games(10.0, 14.0, 10.0, 14.0), "mode_1": games(8.0, 10.0)}  # clean 12, mode_1 9
    random, blind = games(1.0, 3.0, 1.0, 3.0), games(3.0, 5.0, 3.0, 5.0)  # floors 2 and 4
    floors = Floors(random, blind, random_for={"mode_1": games(5.0, 7.0)}, blind_for={"mode_1": games(6.0, 8.0)})
    kept, _ = retention(results, floors)
    assert kept == pytest.approx({"mode_1": (9 - 7) / (12 - 4)})  # mode 1's blind 7 over its random 6


def test_retention_of_a_game_shift_is_measured_above_that_games_own_random_play():
    """Another mode is another game: its random floor is its own; the skill it is a share of is clean
    play's above the default game's random play."""
    results = {
        "clean": games(10.0, 14.0, 10.0, 14.0),  # mean 12, std 2, standard error 1
        "noise": games(6.0, 8.0),  # mean 7
        "mode_1": games(8.0, 10.0),  # mean 9
    }
    random = games(1.0, 3.0, 1.0, 3.0)  # mean 2, std 1, standard error 0.5: margin 2 * sqrt(1.25) = 2.24 < 10
    random_mode_1 = games(5.0, 7.0)  # mean 6: the shifted game gives random play 4 more points
    kept, _ = retention(results, Floors(random, random_for={"mode_1": random_mode_1}))
    # noise: (7 - 2) / (12 - 2) = 0.5; mode_1: (9 - 6) / (12 - 2) = 0.3, not (9 - 2) / 10 = 0.7.
    assert kept == pytest.approx({"noise": 0.5, "mode_1": 0.3})


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


def short_games(num_envs, perturbation, side_by_side=()):
    return make_eval_env(
        SHORT, num_envs, perturbation, seed=3, sticky_actions=0.25, threads=1, side_by_side=side_by_side
    )


def test_a_bf16_agent_is_evaluated_and_each_perturbation_reported_by_name_in_order():
    """The agent acts in its autocast region for the evaluation's device type (bf16 autocast needs one), and
    each result is handed to ``on_result`` under its perturbation's name as it finishes, in the suite's order."""
    torch.manual_seed(0)
    agent = new_agent(cnn(), autocast="bf16")
    suite = {"clean": VisualPerturbation(name="clean"), "noise": VisualPerturbation(name="noise", noise_std=20.0)}
    reported = []
    results = evaluate(agent, short_games, suite, 1, 1, CPU, on_result=lambda name, r: reported.append((name, r)))
    assert list(results) == ["clean", "noise"] and all(len(r["returns"]) == 1 for r in results.values())
    assert reported == list(results.items())


def test_a_greedy_evaluation_plays_the_most_likely_action_at_every_step():
    """A policy that leans to FIRE (p = 0.6) whatever it sees: sampled, it would leave FIRE at about 12 of
    a game's 30 steps; greedy, FIRE is every action the emulators get."""
    agent = leaning_agent(FIRE, 0.6)
    with torch.no_grad():
        probs = agent.log_probs(torch.zeros(1, 4, 84, 84, dtype=torch.uint8)).exp()[0]
    assert probs.tolist() == pytest.approx([0.4 / 3, 0.6, 0.4 / 3, 0.4 / 3])
    played = ActionLog(short_games)
    evaluate(agent, played, {"clean": VisualPerturbation(name="clean")}, 1, 1, CPU, greedy=True)
    assert played.actions == [FIRE] * 30


@pytest.mark.parametrize("terminal", [False, True])
def test_games_report_their_progress_with_a_bar_or_log_lines(monkeypatch, caplog, terminal):
    """A batch job's log gets a line of games with its ETA; a terminal gets the bar (the bar's text is its own)."""
    drawn = report_often(monkeypatch, terminal)
    with caplog.at_level("INFO", logger="jepa_rl.runtime.progress"):
        scores = play(lambda obs: np.ones(len(obs), dtype=np.int64), short_games(1, VisualPerturbation()), 2, "clean")
    assert len(scores["returns"]) == 2
    if terminal:
        assert "eval clean" in drawn.getvalue() and "games" in drawn.getvalue()
    else:
        assert any(r.getMessage().startswith("eval clean: 2/2 games (100%)") for r in caplog.records)
