"""The sweep's measures that play without looking cannot win: floors, retention as a ratio of sums, policy
invariance relative to the game's own variation, bounded corruption error, and matched skill."""

import numpy as np
import pytest
from helpers import fake_cell

from jepa_rl.sweep.aggregate import aggregate
from jepa_rl.sweep.cells import collect_cells
from jepa_rl.sweep.matched_skill import TOLERANCE, matched_skill, snapshot_points
from jepa_rl.sweep.robustness import corruption_error, corruption_error_lines, floors, retained
from jepa_rl.sweep.statistics import summed_skill_ratio

RANDOM = {"mean": 2.0, "std": 0.0, "returns": [2.0]}
NOISE = ["gaussian_noise_1", "gaussian_noise_2"]
MIN_SKILL = 0.1 * (30.5 - 1.7)  # the default eval.min_skill_share of Breakout's random-to-human range: 2.88


def blind(mean):
    return {"mean": mean, "std": 0.0, "returns": [mean], "kind": "action_frequencies"}


def snap(step, clean, hard, blind_mean=None, **others):
    scores = {"clean": {"mean": clean}, "hard": {"mean": hard}} | {k: {"mean": v} for k, v in others.items()}
    return {"step": step, "eval": scores, "blind_policy": None if blind_mean is None else blind(blind_mean)}


def invariance(tv, agree, ratio):
    return {
        p: {"tv": tv, "greedy_agreement": agree, "states": 64, "game_tv": 0.2, "tv_ratio": ratio}
        for p in ("noise", "hard")
    }


def make_sweep(root):
    # cnn: skill from the pixels on both seeds (floor: random 2 on seed 1, blind 4 on seed 2).
    # jepa: seed 1 barely clears random play; seed 2's clean 5 is its blind play's: no skill from the pixels.
    fake_cell(root, "cnn", 1, [22, 12, 12], random_policy=RANDOM, blind_policy=blind(1.5),
              retention={"noise": 0.5, "hard": 0.5}, policy_invariance=invariance(0.2, 0.7, 1.0))  # fmt: skip
    fake_cell(root, "cnn", 2, [14, 9, 4], random_policy=RANDOM, blind_policy=blind(4.0),
              retention={"noise": 0.5, "hard": 0.0}, policy_invariance=invariance(0.4, 0.5, 2.0))  # fmt: skip
    fake_cell(root, "jepa", 1, [6, 6, 6], random_policy=RANDOM, blind_policy=blind(2.5),
              retention={"noise": 1.0, "hard": 1.0}, policy_invariance=invariance(0.0, 1.0, None))  # fmt: skip
    fake_cell(root, "jepa", 2, [5, 5, 5], random_policy=RANDOM, blind_policy=blind(5.0), retention=None,
              policy_invariance=invariance(0.1, 0.9, 0.5))  # fmt: skip


def test_each_condition_says_how_many_seeds_have_skill_from_the_pixels(tmp_path):
    make_sweep(tmp_path)
    found = floors(collect_cells(tmp_path))
    assert found["cnn"] == {"clean": 18.0, "random": 2.0, "blind": 2.75, "blind_seeds": 2, "from_pixels": 2, "seeds": 2}
    assert found["jepa"] == {"clean": 5.5, "random": 2.0, "blind": 3.75, "blind_seeds": 2, "from_pixels": 1, "seeds": 2}


def test_retention_is_a_ratio_of_sums_over_seeds_each_weighed_by_its_skill(tmp_path):
    make_sweep(tmp_path)
    kept = retained(collect_cells(tmp_path), ["noise", "hard"])
    # Skill is clean above the higher floor: seed 1 22 - 2 = 20 (blind 1.5 is lower), seed 2 14 - 4 = 10.
    assert kept["cnn"]["seeds"] == [1, 2] and kept["cnn"]["skill"].tolist() == [20.0, 10.0]
    assert kept["jepa"]["seeds"] == [1] and kept["jepa"]["skill"].tolist() == [3.5]  # 6 - blind 2.5
    robust = aggregate(tmp_path, reps=200, figures=False)["robustness"]
    # hard: (0.5 * 20 + 0.0 * 10) / 30 = 1/3, not the mean of ratios 0.25.
    assert robust["retention"]["cnn"]["hard"]["retention"] == pytest.approx(1 / 3)
    assert robust["retention_seeds"] == {"cnn": 2, "jepa": 1}
    assert robust["retention_undefined_seeds"] == {"cnn": 0, "jepa": 1}


def test_one_barely_passing_seed_cannot_swing_the_ratio_of_sums():
    """Two seeds keep half of 20 points; a third cleared its floor by half a point and "keeps" 2.5 of it (a
    retention of 5, noise): the mean of ratios is 2.0, the ratio of sums 22.5 / 40.5 = 0.56."""
    skill = np.array([20.0, 20.0, 0.5])
    kept = np.array([[10.0], [10.0], [2.5]])
    [(r)] = summed_skill_ratio(skill, kept, reps=500, seed=0).values()
    assert (kept[:, 0] / skill).mean() == pytest.approx(2.0)
    assert r["retention"] == pytest.approx(22.5 / 40.5) and r["ci"][0] <= r["retention"] <= r["ci"][1]
    # Resampling whole seeds: the interval's ends are ratios of sums of resampled seeds, 0.5 (the two
    # skilled seeds alone) up to 5 (the noisy seed alone, in a resample of it three times).
    assert r["ci"][0] >= 0.5 and r["ci"][1] <= 5.0
    [(one)] = summed_skill_ratio(skill[:1], kept[:1], reps=500, seed=0).values()
    assert one == {"retention": 0.5, "ci": [0.5, 0.5]}  # one seed: a point


def test_the_headline_uses_only_measures_a_blind_policy_cannot_win(tmp_path):
    make_sweep(tmp_path)
    summary = aggregate(tmp_path, reps=200)
    robust = summary["robustness"]
    assert robust["random_policy_mean"] == 2.0 and robust["blind_policy_mean"] == pytest.approx(3.25)
    # jepa seed 1's policy ignores its frames (tv_ratio None): left out of the ratio, counted.
    assert robust["tv_ratio"]["jepa"]["noise"]["mean"] == pytest.approx(0.5)  # seed 2's alone
    assert robust["tv_ratio"]["cnn"]["noise"]["mean"] == pytest.approx(1.5)
    assert robust["blind_to_frames"] == {"cnn": 0, "jepa": 1}
    report = (tmp_path / "REPORT.md").read_text()
    headline = report.split("## Robustness of the skill that comes from the pixels", 1)[1].split(
        "### Measures a policy"
    )[0]
    assert "| cnn | 2 of 2 seeds | 18.00 | 2.00 | 2.75 |" in headline
    assert "| jepa | 1 of 2 seeds | 5.50 | 2.00 | 3.75 |" in headline
    assert "jepa (1 seed(s) left out: no skill from the pixels)" in headline
    assert set(robust["retention_pairs"]) == {"cnn > jepa"}
    assert "jepa (1 seed(s) left out: the policy hardly reads its frames)" in headline
    assert "Policy TV on identical states" not in headline  # the TV a blind policy wins comes after, labelled
    assert "### Measures a policy that ignores the frame wins" in report
    ignored = report.split("### Measures a policy that ignores the frame wins", 1)[1]
    assert ignored.index("**Policy TV on identical states**") < ignored.index("**Greedy agreement on identical")
    assert report.index("### Measures a policy that ignores the frame wins") < report.index("study's robustness ratio")
    assert "P(retention of cnn > jepa): not estimated, one of them has retention for a single seed only" in report
    assert "0 = random play 2.00, measured" in report  # normalised by the random play the cells measured


def matched_cells(root):
    """Snapshots under clean, hard and noise; cells' random play 2. Skill = clean - max(random, blind)."""
    fake_cell(root, "cnn", 1, [22, 12, 12], random_policy=RANDOM, retention={"noise": 0.5, "hard": 0.5},
              snapshots=[snap(100, 6, 4, 3, noise=5), snap(200, 22, 12, 2, noise=17)])  # fmt: skip
    fake_cell(root, "cnn", 2, [12, 7, 2], random_policy=RANDOM, retention={"noise": 0.5, "hard": 0.0},
              snapshots=[snap(100, 4, 3, noise=4), snap(200, 12, 2, noise=7)])  # fmt: skip
    fake_cell(root, "jepa", 1, [6, 6, 6], random_policy=RANDOM, retention={"noise": 1.0, "hard": 1.0},
              snapshots=[snap(100, 3, 3, noise=3), snap(200, 6, 6, noise=4)])  # fmt: skip
    fake_cell(root, "jepa", 2, [2, 2, 2], random_policy=RANDOM, retention=None,
              snapshots=[snap(100, 2, 2, noise=2), snap(200, 2, 2, noise=2)])  # fmt: skip
    fake_cell(root, "vit", 1, [4, 3, 3], random_policy=RANDOM, retention=None,  # best skill 2: under 2.88
              snapshots=[snap(100, 3, 3, noise=3), snap(200, 4, 3, noise=3)])  # fmt: skip
    # 0.5 points, then 30: sorted before cnn and jepa, so that leaving it out does not end the comparison.
    fake_cell(root, "ae_cnn", 1, [30, 20, 20], random_policy=RANDOM, retention={"noise": 0.6, "hard": 0.6},
              snapshots=[snap(100, 2.5, 2, noise=2), snap(200, 32, 17, noise=20)])  # fmt: skip
    # No snapshots at all: neither compared nor listed; no random play measured: its snapshots are not read,
    # and the cells after it still are.
    fake_cell(root, "jepa_cnn", 1, [9, 9, 9], random_policy=RANDOM, retention={"noise": 1.0, "hard": 1.0})
    fake_cell(root, "ae", 1, [9, 9, 9], retention=None, snapshots=[snap(100, 9, 9, noise=9)])


def test_matched_skill_compares_at_a_level_every_compared_condition_reached_within_a_tolerance(tmp_path):
    matched_cells(tmp_path)
    cells = collect_cells(tmp_path)
    points = snapshot_points(cells)
    assert {"condition": "cnn", "seed": 1, "step": 100, "clean": 6, "skill": 3, "perturbation": "hard",
            "retention": pytest.approx(1 / 3)} in points  # fmt: skip  # floor: the snapshot's blind 3
    m = matched_skill(cells, MIN_SKILL, reps=200, seed=0)
    # Best skills: cnn 20, jepa 4, ae_cnn 30, vit 2 (under the minimum 2.88: left out, not the level's floor).
    assert m["level"] == 4 and m["tolerance"] == pytest.approx(TOLERANCE * 4) == 1.0
    assert m["below_level"] == ["vit"] and m["min_skill"] == MIN_SKILL
    # ae_cnn's snapshots are at 0.5 and 30 points: none within 1 of the level.
    assert m["none_near"] == ["ae_cnn"]
    assert {"condition": "ae_cnn", "seed": 1, "step": 100, "clean": 2.5, "skill": 0.5, "perturbation": "hard",
            "retention": 0.0} in points  # fmt: skip  # half a point of skill still has a retention
    assert {p["condition"] for p in points} == {"cnn", "jepa", "vit", "ae_cnn"}  # ae measured no random play
    # cnn: seed 1's snapshot at 3 points (its 20 is far), seed 2's at 2 and 10 both outside [3, 5]: one seed.
    assert m["conditions"]["cnn"]["seeds"] == 1 and m["conditions"]["cnn"]["skill"] == 3
    assert m["conditions"]["cnn"]["retention"]["hard"]["retention"] == pytest.approx((4 - 3) / 3)
    assert m["conditions"]["cnn"]["retention"]["noise"]["retention"] == pytest.approx((5 - 3) / 3)
    assert m["conditions"]["jepa"]["seeds"] == 1 and m["conditions"]["jepa"]["retention"]["noise"] == {
        "retention": pytest.approx(0.5), "ci": [pytest.approx(0.5), pytest.approx(0.5)]
    }  # fmt: skip
    assert sorted(m["conditions"]) == ["cnn", "jepa"] and m["conditions"]["cnn"]["clean"] == 6
    assert set(m["conditions"]["cnn"]["retention"]) == {"hard", "noise"}  # every perturbation, not clean


def test_matched_skill_takes_each_seeds_nearest_snapshot_and_its_best_not_its_last(tmp_path):
    # Skill 10, 30, 4, 6, then 2: the best is 30, not the last (2, under the minimum skill); the level is jepa's 5.
    snaps = [snap(100, 12, 7), snap(200, 32, 17), snap(300, 6, 4), snap(400, 8, 5), snap(500, 4, 3)]
    fake_cell(tmp_path, "cnn", 1, [6, 6, 6], random_policy=RANDOM, retention={"noise": 1.0, "hard": 1.0},
              snapshots=snaps)  # fmt: skip
    fake_cell(tmp_path, "jepa", 1, [7, 7, 7], random_policy=RANDOM, retention={"noise": 1.0, "hard": 1.0},
              snapshots=[snap(100, 7, 7)])  # fmt: skip
    m = matched_skill(collect_cells(tmp_path), MIN_SKILL, reps=50, seed=0)
    assert m["level"] == 5 and m["below_level"] == []
    # cnn's snapshots at 4 and 6 points are equally near 5 (within 1.25): the earlier, at step 300, is taken.
    assert m["conditions"]["cnn"]["skill"] == 4 and m["conditions"]["cnn"]["retention"]["hard"]["retention"] == 0.5


def test_corruption_error_is_bounded_lost_skill_over_the_seeds_every_condition_has(tmp_path):
    suite = ["clean", "gaussian_noise_1", "gaussian_noise_2", "recolour_paddle_red"]
    pixel = {p: {"tv": 0.1, "greedy_agreement": 0.9, "states": 64, "tv_ratio": 0.5} for p in suite[1:3]}
    kept = {  # per seed: gaussian_noise_1, gaussian_noise_2, recolour
        ("cnn", 1): [0.8, 0.6, 0.9], ("cnn", 2): [0.8, 0.6, 0.9],
        ("jepa", 1): [1.3, 0.8, 0.7],  # retention above 1 counts as 1: no skill lost, never a negative error
        ("jepa", 3): [0.0, 0.0, 0.0],  # a seed cnn has no retention for: left out of the comparison
        ("ae", 1): [-0.5, 0.4, 0.5], ("ae", 2): [-0.5, 0.4, 0.5],  # below 0 counts as 0: all the skill lost
    }  # fmt: skip
    for (encoder, seed), retention in kept.items():
        fake_cell(tmp_path, encoder, seed, [20, 10, 10, 10], suite=suite, random_policy=RANDOM,
                  retention=dict(zip(suite[1:], retention, strict=True)), policy_invariance=pixel)  # fmt: skip
    robust = aggregate(tmp_path, reps=50, figures=False)["robustness"]
    ce = robust["corruption_error"]
    assert ce["seeds"] == [1] and ce["reference"] == "cnn"
    assert ce["conditions"]["cnn"]["mCE"] == pytest.approx(1.0)
    # cnn loses 0.2 + 0.4 = 0.6; jepa (seed 1) 0 + 0.2; ae (seed 1) 1 + 0.6.
    assert ce["conditions"]["jepa"]["gaussian_noise"] == pytest.approx(0.2 / 0.6)
    assert ce["conditions"]["ae"]["gaussian_noise"] == pytest.approx(1.6 / 0.6)
    report = (tmp_path / "REPORT.md").read_text()
    assert "Shifts of the game itself" in report and "on the seeds every condition has a retention for (1)" in report
    assert robust["invariance_perturbations"] == ["gaussian_noise_1", "gaussian_noise_2"]  # no shift of the game
    # Against another reference, named in the config (or on the report command's line).
    other = aggregate(tmp_path, reps=50, figures=False, reference="ae")["robustness"]["corruption_error"]
    assert other["conditions"]["cnn"]["gaussian_noise"] == pytest.approx(0.6 / 1.6)
    missing = aggregate(tmp_path, reps=50, figures=False, reference="vit")["robustness"]["corruption_error"]
    assert missing == {"reference": "vit", "problem": "the reference condition vit has no retention"}
    assert "No corruption error: the reference condition vit has no retention" in (tmp_path / "REPORT.md").read_text()


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
    # Cells from before the invariance ratio (no tv_ratio): not counted as blind to their frames.
    assert summary["robustness"]["blind_to_frames"] == {"cnn": 0, "jepa": 0}
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
    assert summary["robustness"]["random_policy_mean"] is None and summary["robustness"]["blind_policy_mean"] is None
    assert summary["robustness"]["invariance_perturbations"] == NOISE
    assert summary["robustness"]["invariance_corruption_error"]["conditions"]["jepa"]["mCE"] == pytest.approx(2.5)
    report = (tmp_path / "REPORT.md").read_text()
    assert "No cell played games (eval.episodes=0)" in report and "| jepa | 2.50 |" in report
    assert "retention is undefined everywhere" not in report  # nothing was played, not near-random play
    assert list(summary["plots"]) == ["invariance_degradation"] and "(invariance_degradation.png)" in report


def test_the_corruption_error_table_is_written_line_for_line():
    ce = {
        "reference": "cnn",
        "seeds": [1, 3],
        "conditions": {
            "jepa": {"gaussian_noise": 0.5, "contrast": None, "mCE": 0.5},
            "cnn": {"gaussian_noise": 1.0, "contrast": None, "mCE": 1.0},
        },
    }
    assert corruption_error_lines(ce) == [
        "",
        "Corruption error, as ImageNet-C's on lost skill: per family, sum over severities of 1 - clip(retention, "
        "0, 1) over cnn's, on the seeds every condition has a retention for (1, 3); mCE is their mean (below 1: "
        "loses less than cnn).",
        "",
        "| condition | mCE | gaussian_noise | contrast |",
        "|---|---|---|---|",
        "| cnn | 1.00 | 1.00 | - |",
        "| jepa | 0.50 | 0.50 | - |",
    ]
    on_tv = corruption_error_lines({k: v for k, v in ce.items() if k != "seeds"}, on_tv=True)
    assert on_tv[1] == (
        "Corruption error, as ImageNet-C's on policy change: per family, sum over severities of the policy TV on "
        "identical states over cnn's; mCE is their mean (below 1: changes less than cnn)."
    )
    assert corruption_error_lines({}) == []
    assert corruption_error_lines({"reference": "vit", "problem": "the reference condition vit has no retention"}) == [
        "",
        "No corruption error: the reference condition vit has no retention (reference: vit, "
        "hydra.callbacks.aggregate.reference).",
    ]


def test_the_ratio_of_sums_interval_is_seeded_and_a_bootstrap_from_two_seeds_on():
    skill, kept = np.array([10.0, 20.0]), np.array([[2.0], [16.0]])  # 0.2 and 0.8 of their skill
    [(two)] = summed_skill_ratio(skill, kept, reps=400, seed=3).values()
    # Two seeds: resamples are (a, a), (a, b), (b, b), so the interval spans 0.2 to 0.8, not the point 0.6.
    assert two["retention"] == pytest.approx(18 / 30) and two["ci"] == pytest.approx([0.2, 0.8])
    six, kept6 = np.array([10.0, 20.0, 5.0, 8.0, 12.0, 30.0]), np.array([[2.0], [16.0], [1.0], [6.0], [3.0], [9.0]])
    first, again, other = (summed_skill_ratio(six, kept6, reps=200, seed=s)[0] for s in (3, 3, 4))
    assert first == again and first["ci"] != other["ci"]  # the same seed, the same interval in any process


def test_the_robustness_statistics_repeat_exactly_when_rebuilt(tmp_path):
    """Every interval of the headline is seeded: retention's ratio of sums, the invariance ratio, P(A > B) and
    matched skill. Two aggregations of the same cells give the same numbers; pairs are named once each."""
    for encoder, base in (("cnn", 20.0), ("jepa", 12.0), ("ae", 8.0)):
        for seed in (1, 2, 3):
            clean = base + seed
            kept = {"noise": 0.3 + 0.1 * seed, "hard": 0.2 * seed}
            fake_cell(tmp_path, encoder, seed, [clean, clean * 0.6, clean * 0.3], random_policy=RANDOM,
                      blind_policy=blind(2.5), retention=kept,
                      policy_invariance=invariance(0.1 * seed, 0.8, 0.5 * seed),
                      snapshots=[snap(100, 6 + seed, 4), snap(200, clean, clean * 0.3)])  # fmt: skip
    first = aggregate(tmp_path, reps=100, figures=False)["robustness"]
    again = aggregate(tmp_path, reps=100, figures=False)["robustness"]
    assert first == again and first["reference"] == "cnn"
    assert set(first["retention_pairs"]) == {"ae > cnn", "ae > jepa", "cnn > jepa"}
    assert first["matched_skill"]["level"] is not None and first["matched_skill"]["conditions"]
    ci = first["retention"]["cnn"]["hard"]["ci"]
    assert ci[0] < ci[1]  # three seeds: a bootstrap, not a point


def test_a_family_the_reference_loses_nothing_on_has_no_ratio_and_seeds_must_be_shared():
    perts = ["gaussian_noise_1", "contrast_1"]

    def kept(seeds, rows):
        return {"seeds": seeds, "skill": np.ones(len(seeds)), "retention": np.array(rows, dtype=float)}

    # The reference keeps all its skill under contrast: no ratio there (None), and mCE is over noise alone.
    ce = corruption_error({"cnn": kept([1], [[0.5, 1.0]]), "jepa": kept([1], [[0.75, 0.5]])}, perts, "cnn")
    assert ce["conditions"]["jepa"] == {"gaussian_noise": 0.5, "contrast": None, "mCE": 0.5}
    # ... and no family at all: no mCE.
    none = corruption_error({"cnn": kept([1], [[1.0, 1.0]]), "jepa": kept([1], [[0.5, 0.5]])}, perts, "cnn")
    assert none["conditions"]["jepa"] == {"gaussian_noise": None, "contrast": None, "mCE": None}
    apart = corruption_error({"cnn": kept([1], [[0.5, 1.0]]), "jepa": kept([2], [[0.5, 0.5]])}, perts, "cnn")
    assert apart == {"reference": "cnn", "problem": "no seed has a retention in every condition"}


def test_a_snapshot_of_another_game_mode_is_measured_above_that_modes_random_play(tmp_path):
    by_variant = {"mode_4": {"mean": 5.0, "std": 0.0, "returns": [5.0]}}
    fake_cell(tmp_path, "cnn", 1, [12, 9, 9], random_policy=RANDOM, random_policy_by_variant=by_variant,
              retention={"noise": 0.7, "hard": 0.7}, snapshots=[snap(100, 12, 7, mode_4=8)])  # fmt: skip
    points = {p["perturbation"]: p["retention"] for p in snapshot_points(collect_cells(tmp_path))}
    assert points == {"hard": pytest.approx(0.5), "mode_4": pytest.approx(0.3)}  # (8 - 5) / (12 - 2)


def test_a_condition_without_blind_play_or_clean_games_has_none_not_a_nan(tmp_path):
    fake_cell(tmp_path, "cnn", 1, [12, 7], suite=["noise", "hard"], random_policy=RANDOM, retention=None)
    assert floors(collect_cells(tmp_path))["cnn"] == {
        "clean": None, "random": 2.0, "blind": None, "blind_seeds": 0, "from_pixels": 0, "seeds": 1
    }  # fmt: skip


def test_matched_skill_without_a_level_names_the_conditions_under_the_minimum():
    from jepa_rl.sweep.robustness_report import matched_lines

    below = {"level": None, "tolerance": None, "min_skill": 2.88, "conditions": {}, "below_level": ["jepa"]}
    assert matched_lines(below | {"none_near": []}) == [
        "",
        "Matched skill: no snapshot clears the minimum skill (2.88 points above its floor): jepa.",
    ]
