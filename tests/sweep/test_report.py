"""REPORT.md and stats.json from hand-made cells: hand-checked numbers, findings, comparisons."""

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import fake_cell

from jepa_rl.sweep.aggregate import aggregate
from jepa_rl.sweep.cells import Cell
from jepa_rl.sweep.report import clean_findings
from jepa_rl.sweep.robustness_report import pair_finding, retention_findings
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
    unknown = normalised(np.array([3, 4]), "ALE/Tetris-v5")  # no published scores: NaN, as floats
    assert unknown.shape == (2,) and unknown.dtype == float and np.isnan(unknown).all()


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


# --- the findings: rankings, interval verdicts, pairwise probabilities, the near-random warning --------------

RANDOM = {"mean": 2.0, "std": 0.0, "returns": [2.0]}  # the random policy's score each cell measured
FOUR = ["clean", "noise", "mild", "hard"]
# Retention of seeds 1, 2, 3: under noise jepa clearly keeps the most, under mild jepa and ae overlap, under
# hard ae clearly keeps the most; cnn keeps the least everywhere.
KEPT = {
    "ae": {"noise": [0.45, 0.50, 0.55], "mild": [0.50, 0.58, 0.66], "hard": [0.75, 0.80, 0.85]},
    "cnn": {"noise": [0.25, 0.30, 0.35], "mild": [0.10, 0.20, 0.30], "hard": [0.05, 0.10, 0.15]},
    "jepa": {"noise": [0.85, 0.90, 0.95], "mild": [0.45, 0.62, 0.79], "hard": [0.35, 0.40, 0.45]},
}
CLEAN = {"ae": [14, 15, 16], "cnn": [30, 32, 34], "jepa": [20, 22, 24]}  # clean raw score of seeds 1, 2, 3
SHARE = {"ae": 0.5, "cnn": 0.25, "jepa": 0.9}  # each perturbed raw score is this share of the seed's clean one


@pytest.fixture(scope="module")
def clear_sweep(tmp_path_factory):
    """Three seeds each of ae, cnn and jepa, aggregated once: (the summary, REPORT.md)."""
    root = tmp_path_factory.mktemp("sweep")
    for encoder, kept in KEPT.items():
        for i, clean in enumerate(CLEAN[encoder]):
            retention = {p: kept[p][i] for p in FOUR[1:]}
            means = [clean] + [clean * SHARE[encoder]] * 3
            fake_cell(root, encoder, i + 1, means, suite=FOUR, random_policy=RANDOM, retention=retention)
    summary = aggregate(root, reps=300, figures=False)
    return summary, (root / "REPORT.md").read_text()


def findings_under(report: str, title: str) -> list[str]:
    """The ``- `` lines of the report's section ``title``, in order."""
    section = report.split(f"{title}\n\n", 1)[1].split("\n#", 1)[0]
    return [line for line in section.splitlines() if line.startswith("- ")]


def interval(ci: list[float], digits: int = 2) -> str:
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def test_retention_findings_rank_each_perturbation_and_resolve_the_order_only_when_intervals_are_apart(clear_sweep):
    summary, report = clear_sweep
    r = summary["robustness"]["retention"]
    ci = {k: {p: interval(r[k][p]["ci"]) for p in FOUR[1:]} for k in r}
    # The verdicts' premises, from the intervals: apart under noise and hard, overlapping under mild.
    assert r["jepa"]["noise"]["ci"][0] > r["ae"]["noise"]["ci"][1]
    assert r["ae"]["hard"]["ci"][0] > r["jepa"]["hard"]["ci"][1]
    assert r["jepa"]["mild"]["ci"][0] < r["ae"]["mild"]["ci"][1]
    # Ratios of sums by hand, each seed weighed by its skill (clean - random 2): jepa 18, 20, 22; ae 12, 13, 14.
    # noise jepa (0.85*18 + 0.90*20 + 0.95*22) / 60 = 0.903, ae (0.45*12 + 0.50*13 + 0.55*14) / 39 = 0.503;
    # mild jepa (0.45*18 + 0.62*20 + 0.79*22) / 60 = 0.631, ae (0.50*12 + 0.58*13 + 0.66*14) / 39 = 0.584;
    # hard ae (0.75*12 + 0.80*13 + 0.85*14) / 39 = 0.803, jepa (0.35*18 + 0.40*20 + 0.45*22) / 60 = 0.403.
    assert r["jepa"]["noise"]["retention"] == pytest.approx(54.2 / 60)
    assert r["ae"]["mild"]["retention"] == pytest.approx(22.78 / 39)
    skill = "keeps the most of the skill that comes from its pixels"
    assert findings_under(report, "### Findings on retention")[:3] == [
        f"- under noise, jepa {skill} (0.90 {ci['jepa']['noise']}), then ae (0.50 {ci['ae']['noise']}): "
        "the intervals do not overlap",
        f"- under mild, jepa {skill} (0.63 {ci['jepa']['mild']}), then ae (0.58 {ci['ae']['mild']}): "
        "the intervals overlap, so the order is not resolved",
        f"- under hard, ae {skill} (0.80 {ci['ae']['hard']}), then jepa (0.40 {ci['jepa']['hard']}): "
        "the intervals do not overlap",
    ]


def test_retention_pairs_name_the_condition_that_scores_higher_only_when_the_interval_excludes_one_half(clear_sweep):
    summary, report = clear_sweep
    pairs = summary["robustness"]["retention_pairs"]
    # P(A > B) by hand: the share of seed pairs (3 x 3) where A keeps more, averaged over noise, mild, hard.
    # ae > cnn: every ae seed above every cnn seed, under all three -> 1. cnn > jepa: never -> 0.
    # ae > jepa: noise 0/9; mild 4/9 (ae's 0.50, 0.58, 0.66 over jepa's 0.45, and 0.66 over 0.62); hard 9/9.
    assert pairs["ae > cnn"]["p"] == 1.0 and pairs["ae > cnn"]["ci"] == [1.0, 1.0]
    assert pairs["cnn > jepa"]["p"] == 0.0 and pairs["cnn > jepa"]["ci"] == [0.0, 0.0]
    assert pairs["ae > jepa"]["p"] == pytest.approx((0 + 4 / 9 + 1) / 3)  # 13/27 = 0.48
    low, high = pairs["ae > jepa"]["ci"]
    assert low < 0.5 < high
    # Pairs are named in sorted order: the first of "ae > cnn" wins, the second of "cnn > jepa".
    assert findings_under(report, "### Findings on retention")[3:] == [
        "- P(retention of ae > cnn) over all perturbations = 1.00 [1.00, 1.00]: ae scores higher "
        "more often than not, and the interval excludes 0.5",
        f"- P(retention of ae > jepa) over all perturbations = 0.48 {interval([low, high])}: the interval "
        "includes 0.5: no reliable difference",
        "- P(retention of cnn > jepa) over all perturbations = 0.00 [0.00, 0.00]: jepa scores higher more "
        "often than not, and the interval excludes 0.5",
    ]


def test_clean_findings_rank_the_conditions_by_clean_iqm_best_first(clear_sweep):
    summary, report = clear_sweep
    ci = {k: interval(summary["statistics"][k]["clean"]["iqm_ci"], 1) for k in CLEAN}
    # Clean IQM of three seeds (none trimmed: int(3 / 4) = 0) is their mean: cnn 32, jepa 22, ae 15, all far
    # above random play ((15 - 2) / (30.5 - 2) = 0.46 normalised): no warning. Each seed's robustness ratio
    # is its share (perturbed / clean): 0.25, 0.90, 0.50.
    # Raw P(jepa > cnn): clean 0 (cnn's 30..34 above jepa's 20..24), each perturbation 1 -> 3/4; jepa > ae: 1.
    seeds = "- 3 seed(s) per condition: bootstrap intervals over so few runs are wide and themselves uncertain; "
    assert findings_under(report, "## Findings on raw scores and the study's robustness ratio") == [
        f"- cnn: clean IQM 32.0 {ci['cnn']}, robustness ratio 0.25",
        f"- jepa: clean IQM 22.0 {ci['jepa']}, robustness ratio 0.90",
        f"- ae: clean IQM 15.0 {ci['ae']}, robustness ratio 0.50",
        "- P(jepa > cnn) over all perturbations = 0.75 [0.75, 0.75]: jepa scores higher more often than not, "
        "and the interval excludes 0.5",
        "- P(jepa > ae) over all perturbations = 1.00 [1.00, 1.00]: jepa scores higher more often than not, "
        "and the interval excludes 0.5",
        seeds + "treat differences inside them as unresolved.",
    ]
    assert "No condition plays clearly above random" not in report


@pytest.mark.parametrize(
    ("ci", "verdict"),
    [
        ([0.6, 0.9], "a scores higher more often than not, and the interval excludes 0.5"),
        ([0.1, 0.4], "b scores higher more often than not, and the interval excludes 0.5"),
        ([0.5, 0.9], "the interval includes 0.5: no reliable difference"),  # touching 0.5 is not excluding it
        ([0.1, 0.5], "the interval includes 0.5: no reliable difference"),
        ([0.3, 0.7], "the interval includes 0.5: no reliable difference"),
    ],
)
def test_pair_finding_names_a_winner_only_when_the_interval_excludes_one_half(ci, verdict):
    line = pair_finding("a > b", {"p": 0.55, "ci": ci})
    assert line == f"- P(a > b) over all perturbations = 0.55 {interval(ci)}: {verdict}"


WARNING = (
    "- **No condition plays clearly above random on clean games** (normalised clean IQM < 0.05): this sweep "
    "cannot answer the question; robustness ratios and comparisons below are about noise. Train longer "
    "(e.g. experiment=cpu's 1M steps or the study's 10M)."
)
NEAR = " (clean play is near random: its ratio says little)"


@pytest.mark.parametrize(
    ("cnn_iqm", "random", "warned"),
    [
        (1.9, 0.5, True),  # (1.9 - 0.5) / (30.5 - 1.7) = 0.0486: below 0.05 (over human - measured: 0.047)
        (1.95, 0.5, False),  # 1.45 / 28.8 = 0.0503: not below (over human - measured: 0.048, below)
        (2.1, 0.5, False),  # 1.6 / 28.8 = 0.056
        (3.0, None, True),  # no measured random: the published 1.7, (3.0 - 1.7) / (30.5 - 1.7) = 0.045
        (3.3, None, False),  # 1.6 / 28.8 = 0.056
    ],
)
def test_the_near_random_warning_needs_every_condition_below_five_percent_of_human(cnn_iqm, random, warned):
    """clean_findings on hand-made cells and statistics: jepa plays at random (IQM 1.0, below 0.05 either
    way), cnn at ``cnn_iqm``; the cells measured the random policy at ``random`` (None: not measured)."""
    measured = {"random_policy": {"mean": random}} if random is not None else {}
    cells = [
        Cell(Path(k), k, 1, "ok", env_id="ALE/Breakout-v5", results={"robustness_ratio": ratio, **measured})
        for k, ratio in (("cnn", 0.8), ("jepa", 1.0))
    ]
    stats = {k: {0: {"iqm": iqm, "iqm_ci": [iqm - 0.5, iqm + 0.5]}} for k, iqm in (("cnn", cnn_iqm), ("jepa", 1.0))}
    low, high = f"{cnn_iqm - 0.5:.1f}", f"{cnn_iqm + 0.5:.1f}"
    cnn = f"- cnn: clean IQM {cnn_iqm:.1f} [{low}, {high}], robustness ratio 0.80"
    jepa = "- jepa: clean IQM 1.0 [0.5, 1.5], robustness ratio 1.00" + NEAR
    expected = [WARNING, cnn + NEAR, jepa] if warned else [cnn, jepa]
    assert clean_findings(cells, ["clean"], stats) == expected


def test_two_conditions_are_ranked_too_and_a_single_seed_resolves_nothing():
    """The smallest comparison, cnn against jepa, gets its line; with one seed the order is left open, whichever
    of the two has it."""
    robust = {
        "perturbations": ["noise"],
        "retention": {
            "cnn": {"noise": {"retention": 0.3, "ci": [0.2, 0.4]}},
            "jepa": {"noise": {"retention": 0.8, "ci": [0.7, 0.9]}},
        },
        "retention_seeds": {"cnn": 3, "jepa": 3},
        "retention_pairs": {"cnn > jepa": {"p": 0.1, "ci": [0.0, 0.3]}},
    }
    skill = "keeps the most of the skill that comes from its pixels"
    apart = "the intervals do not overlap"
    assert retention_findings(robust) == [
        f"- under noise, jepa {skill} (0.80 [0.70, 0.90]), then cnn (0.30 [0.20, 0.40]): {apart}",
        "- P(retention of cnn > jepa) over all perturbations = 0.10 [0.00, 0.30]: jepa scores higher more often "
        "than not, and the interval excludes 0.5",
    ]
    single = "one of them has retention for a single seed only, so the order is not resolved"
    unestimated = "- P(retention of cnn > jepa): not estimated, one of them has retention for a single seed only"
    for one in ("cnn", "jepa"):  # the second of the ranking, then the first
        robust["retention_seeds"] = {"cnn": 3, "jepa": 3} | {one: 1}
        found = retention_findings(robust)
        assert found[0].endswith(single) and found[1] == unestimated
    robust["retention_seeds"] = {"cnn": 2, "jepa": 2}  # two seeds each: resolved, and P(A > B) estimated
    found = retention_findings(robust)
    assert found[0].endswith(apart) and found[1].startswith("- P(retention of cnn > jepa) over all perturbations")


@pytest.mark.parametrize(("low", "apart"), [(0.41, True), (0.4, False), (0.39, False)])
def test_intervals_that_touch_overlap(low, apart):
    robust = {
        "perturbations": ["noise"],
        "retention": {
            "cnn": {"noise": {"retention": 0.3, "ci": [0.2, 0.4]}},
            "jepa": {"noise": {"retention": 0.8, "ci": [low, 0.9]}},
        },
        "retention_seeds": {"cnn": 3, "jepa": 3},
        "retention_pairs": {},
    }
    verdict = "the intervals do not overlap" if apart else "the intervals overlap, so the order is not resolved"
    assert retention_findings(robust)[0].endswith(verdict)
