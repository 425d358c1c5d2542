"""The sweep's floor-free measures: retention over seeds (undefined seeds counted), invariance, matched skill."""

import numpy as np
import pytest
from helpers import fake_cell

from jepa_rl.sweep.aggregate import aggregate
from jepa_rl.sweep.cells import collect_cells
from jepa_rl.sweep.robustness import matched_skill, retention_matrix, snapshot_points

RANDOM = {"mean": 2.0, "std": 0.0, "returns": [2.0]}
NOISE = ["gaussian_noise_1", "gaussian_noise_2"]


def snap(step, clean, hard):
    return {"step": step, "eval": {"clean": {"mean": clean}, "hard": {"mean": hard}}}


def invariance(tv, agree):
    return {p: {"tv": tv, "greedy_agreement": agree, "states": 64} for p in ("noise", "hard")}


def make_sweep(root):
    # cnn: skilled, loses half under hard; jepa: seed 2 never left random play (no retention).
    fake_cell(root, "cnn", 1, [22, 12, 12], random_policy=RANDOM, retention={"noise": 0.5, "hard": 0.5},
              policy_invariance=invariance(0.2, 0.7), snapshots=[snap(100, 6, 4), snap(200, 22, 12)])  # fmt: skip
    fake_cell(root, "cnn", 2, [12, 7, 2], random_policy=RANDOM, retention={"noise": 0.5, "hard": 0.0},
              policy_invariance=invariance(0.4, 0.5), snapshots=[snap(100, 4, 3), snap(200, 12, 2)])  # fmt: skip
    fake_cell(root, "jepa", 1, [6, 6, 6], random_policy=RANDOM, retention={"noise": 1.0, "hard": 1.0},
              policy_invariance=invariance(0.0, 1.0), snapshots=[snap(100, 3, 3), snap(200, 6, 6)])  # fmt: skip
    fake_cell(root, "jepa", 2, [2, 2, 2], random_policy=RANDOM, retention=None,
              policy_invariance=invariance(0.0, 1.0), snapshots=[snap(100, 2, 2), snap(200, 2, 2)])  # fmt: skip


def test_retention_averages_the_seeds_that_have_it_and_counts_the_others(tmp_path):
    make_sweep(tmp_path)
    cells = collect_cells(tmp_path)
    matrices, undefined = retention_matrix(cells, ["noise", "hard"])
    assert np.array_equal(matrices["cnn"], [[0.5, 0.5], [0.5, 0.0]]) and matrices["jepa"].shape == (1, 2)
    assert undefined == {"cnn": 0, "jepa": 1}


def test_matched_skill_compares_retention_at_the_clean_score_every_condition_reached(tmp_path):
    make_sweep(tmp_path)
    points = snapshot_points(collect_cells(tmp_path))
    assert {"condition": "cnn", "seed": 1, "step": 100, "clean": 6, "perturbation": "hard", "retention": 0.5} in points
    level, matched = matched_skill(points)
    # jepa's best clean snapshot is 6 (seed 2's clean 2 is random play: no retention); cnn's nearest to 6
    # are seed 1's 6 (retention 0.5) and seed 2's 4 (retention 0.5).
    assert level == 6
    assert matched["jepa"] == {"retention": 1.0, "clean": 6.0, "seeds": 1}
    assert matched["cnn"] == {"retention": pytest.approx(0.5), "clean": 5.0, "seeds": 2}


def test_the_report_leads_with_retention_and_keeps_the_ratio_second(tmp_path):
    make_sweep(tmp_path)
    summary = aggregate(tmp_path, reps=200)
    robust = summary["robustness"]
    assert robust["retention"]["cnn"]["hard"]["mean"] == pytest.approx(0.25)
    assert robust["tv"]["cnn"]["noise"]["mean"] == pytest.approx(0.3)
    assert robust["random_policy_mean"] == 2.0 and "jepa > cnn" not in robust["retention_pairs"]
    assert set(robust["retention_pairs"]) == {"cnn > jepa"}
    report = (tmp_path / "REPORT.md").read_text()
    assert report.index("## Robustness above random play") < report.index("study's robustness ratio")
    assert "jepa (1 seed(s) left out: clean not clearly above random)" in report
    # jepa has retention for one seed: a point, not an interval, so no order and no P(cnn > jepa) is claimed.
    assert robust["retention_seeds"] == {"cnn": 2, "jepa": 1}
    assert "P(retention of cnn > jepa): not estimated, one of them has retention for a single seed only" in report
    assert "intervals do not overlap" not in report
    assert "Matched skill: retention at the snapshot nearest clean score 6.00" in report
    assert (tmp_path / "retention_vs_clean.png").stat().st_size > 1000
    # Normalised by the random policy the cells measured (2.0), not the published 1.7.
    assert "0 = random play 2.00, measured" in report


def test_corruption_error_is_lost_skill_over_the_cnns_and_game_shifts_get_their_own_table(tmp_path):
    suite = ["clean", "gaussian_noise_1", "gaussian_noise_2", "recolour_paddle_red"]
    pixel = {p: {"tv": 0.1, "greedy_agreement": 0.9, "states": 64} for p in suite[1:3]}  # no identical states
    kept = {"cnn": [0.8, 0.6, 0.9], "jepa": [0.9, 0.8, 0.7]}
    for encoder, retention in kept.items():
        fake_cell(tmp_path, encoder, 1, [20, 10, 10, 10], suite=suite, random_policy=RANDOM,
                  retention=dict(zip(suite[1:], retention, strict=True)), policy_invariance=pixel)  # fmt: skip
    robust = aggregate(tmp_path, reps=50, figures=False)["robustness"]
    ce = robust["corruption_error"]["conditions"]
    assert ce["cnn"]["mCE"] == pytest.approx(1.0)
    assert ce["jepa"]["gaussian_noise"] == pytest.approx((0.1 + 0.2) / (0.2 + 0.4)) == ce["jepa"]["mCE"]
    assert robust["invariance_perturbations"] == ["gaussian_noise_1", "gaussian_noise_2"]
    report = (tmp_path / "REPORT.md").read_text()
    assert "Shifts of the game itself" in report and "| jepa | 0.50 | 0.50 |" in report


def test_a_near_random_condition_gets_a_corruption_error_on_identical_states(tmp_path):
    # jepa never leaves random play (no retention), but its policy's TV on identical states is measured.
    suite = ["clean", "gaussian_noise_1", "gaussian_noise_2"]
    tvs = {"cnn": [0.1, 0.3], "jepa": [0.4, 0.6]}
    for encoder, tv in tvs.items():
        inv = {p: {"tv": v, "greedy_agreement": 1 - v, "states": 64} for p, v in zip(suite[1:], tv, strict=True)}
        kept = {"gaussian_noise_1": 0.8, "gaussian_noise_2": 0.5} if encoder == "cnn" else None
        fake_cell(tmp_path, encoder, 1, [20, 16, 11] if kept else [2, 2, 2], suite=suite, random_policy=RANDOM,
                  retention=kept, policy_invariance=inv)  # fmt: skip
    # A seed that played no games (eval.episodes=0): in the invariance tables, not in the scores.
    inv = {p: {"tv": 0.5, "greedy_agreement": 0.5, "states": 64} for p in suite[1:]}
    fake_cell(tmp_path, "jepa", 2, [], suite=[], retention=None, policy_invariance=inv)
    summary = aggregate(tmp_path, reps=50)
    ce = summary["robustness"]["invariance_corruption_error"]["conditions"]
    assert ce["jepa"]["gaussian_noise"] == pytest.approx((0.45 + 0.55) / (0.1 + 0.3)) == ce["jepa"]["mCE"]
    assert summary["robustness"]["tv"]["jepa"]["gaussian_noise_1"]["mean"] == pytest.approx(0.45)  # both seeds
    assert summary["statistics"]["jepa"]["clean"]["mean"] == 2  # the seed with games only
    assert "jepa" not in summary["robustness"]["corruption_error"]["conditions"]  # no retention: no skill error
    report = (tmp_path / "REPORT.md").read_text()
    assert "policy change: per family, sum over severities of the policy TV" in report and "| jepa | 2.50 |" in report
    assert summary["plots"]["invariance_degradation"].endswith("invariance_degradation.png")


def test_a_sweep_that_played_no_games_reports_its_policy_invariance(tmp_path):
    # Every cell evaluated with eval.episodes=0: the invariance tables, the TV corruption error and its figure.
    for encoder, tv in {"cnn": [0.1, 0.3], "jepa": [0.5, 0.5]}.items():
        inv = {p: {"tv": v, "greedy_agreement": 1 - v, "states": 64} for p, v in zip(NOISE, tv, strict=True)}
        fake_cell(tmp_path, encoder, 1, [], suite=[], retention=None, policy_invariance=inv)
    summary = aggregate(tmp_path, reps=50)
    assert summary["suite"] == [] and summary["statistics"] == {}  # no scores
    assert summary["robustness"]["invariance_perturbations"] == NOISE
    assert summary["robustness"]["invariance_corruption_error"]["conditions"]["jepa"]["mCE"] == pytest.approx(2.5)
    report = (tmp_path / "REPORT.md").read_text()
    assert "No cell played games (eval.episodes=0)" in report and "| jepa | 2.50 |" in report
    assert "retention is undefined everywhere" not in report  # nothing was played, not near-random play
    assert list(summary["plots"]) == ["invariance_degradation"] and "(invariance_degradation.png)" in report
