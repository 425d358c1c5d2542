"""A sweep over several games: human-normalised clean scores, IQM stratified over games, profiles."""

import pytest
from helpers import fake_cell
from omegaconf import OmegaConf

from jepa_rl.sweep.aggregate import aggregate


def test_a_multi_game_sweep_is_summarised_across_games(tmp_path):
    # Breakout: random 1.7, human 30.5; Pong: random -20.7, human 14.6 (the published scores).
    jobs = []
    for seed in (1, 2, 3, 4):
        jobs.append(fake_cell(tmp_path, "cnn", seed, [1.7 + 28.8 * seed / 4, 0, 0]))  # normalised 0.25 ... 1.0
        jobs.append(fake_cell(tmp_path, "cnn", seed, [-20.7 + 35.3 * seed / 8, 0, 0], env="pong"))  # 0.125 ... 0.5
    jobs.append(fake_cell(tmp_path, "jepa", 1, [30.5, 0, 0]))  # one game only: not in the cross-game summary
    for job in jobs:  # the sweep varies the game on its command line: not a condition, a task
        game = "pong" if "pong" in str(job) else "breakout"
        given = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        OmegaConf.save(OmegaConf.create([*given, f"env={game}"]), job / ".hydra" / "overrides.yaml")
    summary = aggregate(tmp_path, reps=200)
    statuses = sorted(c["status"] for c in summary["cells"].values())
    assert statuses == ["ok"] * 5 + ["other_game"] * 4  # the other game's cells: left out of the report, not failed
    games = summary["across_games"]
    assert games["games"] == ["ALE/Breakout-v5", "ALE/Pong-v5"] and set(games["statistics"]) == {"cnn"}
    cnn = games["statistics"]["cnn"]
    assert (cnn["runs"], cnn["games"]) == (4, 2)
    runs = sorted([0.25, 0.5, 0.75, 1.0, 0.125, 0.25, 0.375, 0.5])  # IQM: the middle four of eight
    assert cnn["iqm"] == pytest.approx(sum(runs[2:6]) / 4) and cnn["mean"] == pytest.approx(sum(runs) / 8)
    assert cnn["iqm_ci"][0] <= cnn["iqm"] <= cnn["iqm_ci"][1]
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Across games: ALE/Breakout-v5, ALE/Pong-v5" in report and "| cnn | 4 x 2 |" in report
    assert (tmp_path / "performance_profiles.png").stat().st_size > 0


def test_one_game_has_no_cross_game_summary(tmp_path):
    fake_cell(tmp_path, "cnn", 1, [10, 5, 2])
    assert aggregate(tmp_path, reps=50, figures=False)["across_games"] is None


def test_a_measured_floor_moves_a_games_zero_but_never_its_scale_and_a_drift_is_named(tmp_path):
    """DoubleDunk's published range is 2.2 points (-18.6 to -16.4). Its cells measured random play at -17.6,
    one point (45% of the range) above the published: a score of -16.5 is (-16.5 + 17.6) / 2.2 = 0.5, where
    dividing by human minus the measured floor (1.2) would give 0.92. DoubleDunk is the report's own game
    (three cells to Breakout's two); the Breakout cells measured no random play (the published one stands)."""
    random = {"mean": -17.6, "std": 0.0, "returns": [-17.6]}
    jobs = [fake_cell(tmp_path, "jepa", 1, [-16.5, 0, 0], env="double_dunk", random_policy=random)]
    for seed in (1, 2):
        jobs.append(fake_cell(tmp_path, "cnn", seed, [-16.5, 0, 0], env="double_dunk", random_policy=random))
        jobs.append(fake_cell(tmp_path, "cnn", seed, [1.7 + 28.8 * 0.5, 0, 0]))
    for job in jobs:
        game = "double_dunk" if "double_dunk" in str(job) else "breakout"
        given = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        OmegaConf.save(OmegaConf.create([*given, f"env={game}"]), job / ".hydra" / "overrides.yaml")
    summary = aggregate(tmp_path, reps=50, figures=False)
    assert summary["env_id"] == "ALE/DoubleDunk-v5"
    games = summary["across_games"]
    assert games["statistics"]["cnn"]["mean"] == pytest.approx(0.5)  # 0.5 in both games
    drift = games["drifted_floors"]
    assert list(drift) == ["ALE/DoubleDunk-v5"] and drift["ALE/DoubleDunk-v5"]["shift"] == pytest.approx(1 / 2.2)
    report = (tmp_path / "REPORT.md").read_text()
    assert "- **ALE/DoubleDunk-v5**: its cells' random play measured -17.6, +45% of its published 2.2-point" in report
