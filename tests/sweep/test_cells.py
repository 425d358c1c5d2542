"""Reading a sweep's cells: malformed and other-game cells, duplicates, the reference suite and game."""

import os
import subprocess
import sys

import pytest
from helpers import SUITE, fake_cell

from jepa_rl.sweep.aggregate import aggregate, main
from jepa_rl.sweep.cells import AggregationError


def test_bad_sweep_directories_are_named(tmp_path):
    with pytest.raises(AggregationError, match="holds no job directories"):
        aggregate(tmp_path)
    fake_cell(tmp_path, "cnn", 1, [10, 5, 2])
    broken = fake_cell(tmp_path, "cnn", 2, [10, 5, 2])
    (broken / "results.json").write_text("{not json")
    summary = aggregate(tmp_path, reps=100, figures=False)
    statuses = {c["seed"]: (c["status"], c["problem"]) for c in summary["cells"].values()}
    assert statuses[1][0] == "ok" and statuses[2][0] == "malformed" and "results.json" in statuses[2][1]
    assert "malformed" in (tmp_path / "REPORT.md").read_text()
    fake_cell(tmp_path, "cnn", 3, [1, 1, 1], env="pong")
    summary = aggregate(tmp_path, reps=100, figures=False)  # the other game's cell is named, the rest still aggregated
    pong = next(c for c in summary["cells"].values() if c["seed"] == 3)
    assert pong["status"] == "other_game" and "Pong" in pong["problem"] and "config.yaml" in pong["problem"]
    assert summary["statistics"]["cnn"]["clean"]["mean"] == 10
    fake_cell(tmp_path, "cnn", 4, [], suite=[])  # eval.episodes=0: policy invariance only, no games
    no_games = aggregate(tmp_path, reps=100, figures=False)["cells"]["breakout/cnn/seed4"]
    assert no_games["status"] == "no_games" and "holds no games (eval.episodes=0)" in no_games["problem"]
    assert "- **no_games**: `breakout/cnn/seed4`" in (tmp_path / "REPORT.md").read_text()


def test_a_constant_condition_keeps_encoders_apart_and_duplicates_are_flagged(tmp_path):
    for encoder in ("cnn", "jepa"):
        for seed in (1, 2):
            fake_cell(tmp_path, encoder, seed, [10 * seed, 5, 2], overrides=["condition=base"])
    fake_cell(tmp_path, "cnn", 1, [99, 99, 99], overrides=["condition=base"], job="rerun/cnn/seed1")
    summary = aggregate(tmp_path, reps=100, figures=False)
    assert set(summary["statistics"]) == {"base/cnn", "base/jepa"}
    assert summary["statistics"]["base/cnn"]["clean"]["mean"] == 15  # the duplicate is not averaged in
    rerun = summary["cells"]["rerun/cnn/seed1"]
    assert rerun["status"] == "malformed" and "same condition (base/cnn) and seed (1)" in rerun["problem"]
    assert list(summary["probability_of_improvement"]) == ["base/jepa > base/cnn"]


def test_the_most_common_suite_is_the_reference_in_any_order(tmp_path):
    fake_cell(tmp_path, "cnn", 1, [10, 5], suite=["clean", "noise"])  # first in path order, but alone
    for seed in (2, 3):
        fake_cell(tmp_path, "cnn", seed, [10, 5, 2])
    fake_cell(tmp_path, "cnn", 4, [2, 10, 5], suite=["hard", "clean", "noise"])  # the same set, another order
    summary = aggregate(tmp_path, reps=100, figures=False)
    statuses = {c["seed"]: c["status"] for c in summary["cells"].values()}
    assert statuses == {1: "malformed", 2: "ok", 3: "ok", 4: "ok"} and summary["suite"] == SUITE
    assert summary["statistics"]["cnn"]["hard"]["mean"] == 2


def test_a_tie_between_games_is_decided_by_name(tmp_path):
    fake_cell(tmp_path, "cnn", 1, [10, 5, 2])
    fake_cell(tmp_path, "cnn", 2, [-20, -21, -19], env="pong")
    script = f"from jepa_rl.sweep.cells import collect_cells; print(collect_cells({str(tmp_path)!r})[0].status)"
    for h in (0, 1):  # hash seeds under which a set of the two env ids iterates in either order
        env = {**os.environ, "PYTHONHASHSEED": str(h)}
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
        assert out.stdout.strip() == "ok"  # breakout/cnn/seed1 plays ALE/Breakout-v5: the first name
    aggregate(tmp_path, reps=100, figures=False)
    report = (tmp_path / "REPORT.md").read_text()
    assert "left out, playing other games: `pong/cnn/seed2` (ALE/Pong-v5)" in report


def test_the_command_line_rebuilds_numbers_and_tables_without_figures(tmp_path, capsys):
    fake_cell(tmp_path, "cnn", 1, [10, 5, 2])
    assert main([str(tmp_path), "--no-figures"]) == 0
    assert "(1 cells aggregated, 0 not)" in capsys.readouterr().out
    report = (tmp_path / "REPORT.md").read_text()
    assert "| cnn | 1 | 10.0 | 5.0 | 2.0 |" in report and not list(tmp_path.glob("*.png"))
    assert "Not drawn (aggregated with `--no-figures`" in report
    assert main(["--no-figure", str(tmp_path)]) == 2 and "usage:" in capsys.readouterr().err
