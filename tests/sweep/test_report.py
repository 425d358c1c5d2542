"""REPORT.md and stats.json from hand-made cells: hand-checked numbers, findings, comparisons."""

import csv

import numpy as np
import pytest
from helpers import fake_cell

from jepa_rl.sweep.aggregate import aggregate
from jepa_rl.sweep.statistics import normalised


def test_aggregation_gives_hand_checked_numbers(tmp_path):
    cnn = [[10, 5, 2], [20, 10, 4], [30, 30, 6], [40, 20, 8], [100, 50, 10]]
    for seed, means in enumerate(cnn, start=1):
        fake_cell(tmp_path, "cnn", seed, means)
    for seed in (1, 2):
        fake_cell(tmp_path, "jepa", seed, [12, 12, 12])
    summary = aggregate(tmp_path, reps=500, figures=False)
    clean = summary["statistics"]["cnn"]["clean"]
    assert clean["mean"] == pytest.approx(40.0)
    # IQM of 10, 20, 30, 40, 100: trim 25% (1.25 runs) from each end -> (0.75*20 + 30 + 0.75*40) / 2.5 = 30
    assert clean["iqm"] == pytest.approx(30.0)
    assert clean["mean_ci"][0] <= 40.0 <= clean["mean_ci"][1]
    rows = list(csv.DictReader((tmp_path / "cells.csv").read_text().splitlines()))
    assert len(rows) == 7 and {r["status"] for r in rows} == {"ok"}
    report = (tmp_path / "REPORT.md").read_text()
    ratios = [np.mean([m[1] / m[0], m[2] / m[0]]) for m in cnn]
    assert f"{np.mean(ratios):.2f} ± {np.std(ratios, ddof=1):.2f}" in report  # robustness ratio over seeds
    # The sample std (ddof=1) over seeds: 10, 20, 30, 40, 100 -> sqrt(5000 / 4) = 35.4
    assert "| cnn | 5 | 40.0 ± 35.4 | 23.0 ± 17.9 | 6.0 ± 3.2 |" in report
    assert "P(jepa > cnn)" in report and "seed(s) per condition" in report
    norm = summary["normalised_statistics"]["cnn"]["clean"]["mean"]
    assert norm == pytest.approx((40.0 - 1.7) / (30.5 - 1.7))  # (score - random) / (human - random)
    assert normalised(np.array(30.5), "ALE/Breakout-v5") == pytest.approx(1.0)
    assert normalised(np.array(1.7), "ALE/Breakout-v5") == pytest.approx(0.0)
    assert normalised(np.array(14.6), "ALE/Pong-v5") == pytest.approx(1.0)


def test_clean_is_found_by_name_and_may_be_absent(tmp_path):
    order = ["noise", "clean", "hard"]
    for seed in (1, 2):
        fake_cell(tmp_path / "a", "cnn", seed, [5, 20, 2], suite=order, overrides=["eval.suite=[noise,clean,hard]"])
    summary = aggregate(tmp_path / "a", reps=100, figures=False)
    assert summary["suite"] == order
    assert "- cnn: clean IQM 20.0 [20.0, 20.0]" in (tmp_path / "a" / "REPORT.md").read_text()
    for seed in (1, 2):
        fake_cell(tmp_path / "b", "cnn", seed, [5, 2], suite=["noise", "hard"], overrides=["eval.suite=[noise,hard]"])
    summary = aggregate(tmp_path / "b", reps=100)  # no clean: no clean-relative findings or figures, no crash
    report = (tmp_path / "b" / "REPORT.md").read_text()
    assert "has no `clean` evaluation" in report and "- cnn: clean IQM" not in report
    assert "drop_from_clean" not in summary["plots"] and "returns" in summary["plots"]


def test_only_conditions_with_equal_other_overrides_are_compared(tmp_path):
    for encoder in ("cnn", "jepa"):
        for steps in (100000, 200000):
            fake_cell(
                tmp_path, encoder, 1, [10, 5, 2], overrides=[f"ppo.total_timesteps={steps}"], job=f"{encoder}{steps}"
            )
    pairs = aggregate(tmp_path, reps=50, figures=False)["probability_of_improvement"]
    assert sorted(pairs) == [
        "jepa ppo.total_timesteps=100000 > cnn ppo.total_timesteps=100000",
        "jepa ppo.total_timesteps=200000 > cnn ppo.total_timesteps=200000",
    ]
    assert "| jepa ppo.total_timesteps=100000 | 1 | 10.0 | 5.0 | 2.0 | 0.35 |" in (tmp_path / "REPORT.md").read_text()
