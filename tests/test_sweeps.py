"""Sweeps and their aggregation: the named grid through launch.py, hand-checked statistics, failed cells."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, TINY_PRETRAIN, compose_cfg, launch
from omegaconf import OmegaConf

from jepa_rl.sweep.aggregate import aggregate
from jepa_rl.sweep.callback import AggregateSweep
from jepa_rl.sweep.cells import AggregationError, collect_cells
from jepa_rl.sweep.plots import curve_rows, drop_from_clean
from jepa_rl.sweep.statistics import improvement_probability, interval_estimates, normalised

SUITE = ["clean", "noise", "hard"]


def fake_cell(root, encoder, seed, means, env="breakout", overrides=(), suite=SUITE, job=None, results=True):
    """A job directory as a sweep leaves it: .hydra/config.yaml, overrides.yaml and (finished) results.json.

    ``means`` are the mean returns of ``suite``; the robustness ratio is None where the clean mean is <= 0.
    """
    job = root / (job or f"{env}/{encoder}/seed{seed}")
    (job / ".hydra").mkdir(parents=True)
    cfg = compose_cfg([f"env={env}", f"encoder={encoder}", f"seed={seed}", *overrides])
    OmegaConf.save(cfg, job / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create([f"encoder={encoder}", f"seed={seed}", *overrides]), job / ".hydra" / "overrides.yaml"
    )
    if not results:
        return job
    ev = {p: {"mean": m, "std": 0.0, "returns": [m]} for p, m in zip(suite, means, strict=True)}
    clean = ev.get("clean", {}).get("mean", 0)
    ratio = float(np.mean([r["mean"] / clean for p, r in ev.items() if p != "clean"])) if clean > 0 else None
    results = {"env_id": cfg.env.env_id, "encoder": encoder, "seed": seed, "eval": ev, "robustness_ratio": ratio}
    (job / "results.json").write_text(json.dumps(results))
    return job


def test_aggregation_gives_hand_checked_numbers(tmp_path):
    cnn = [[10, 5, 2], [20, 10, 4], [30, 30, 6], [40, 20, 8], [100, 50, 10]]
    for seed, means in enumerate(cnn, start=1):
        fake_cell(tmp_path, "cnn", seed, means)
    for seed in (1, 2):
        fake_cell(tmp_path, "jepa", seed, [12, 12, 12])
    summary = aggregate(tmp_path, reps=500)
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


def test_fast_statistics_are_rliables():
    """The vectorised P(X > Y) and per-perturbation estimates give rliable's own numbers."""
    from rliable import metrics

    rng = np.random.default_rng(0)
    for runs_x, runs_y in ((3, 3), (5, 2), (1, 4)):
        x = rng.integers(0, 6, (runs_x, 5)).astype(float)  # small integers: plenty of ties
        y = rng.integers(0, 6, (runs_y, 5)).astype(float)
        for a, b in ((x, y), (y, x), (x, x)):
            assert improvement_probability(a, b)[0] == pytest.approx(metrics.probability_of_improvement(a, b))
    for runs in (3, 5, 8):  # IQMs that cut 0, 1 and 2 runs from each end
        scores = rng.uniform(0, 30, (runs, 3))
        stats = interval_estimates({"c": scores}, reps=200, seed=0)["c"]
        for j in range(3):
            column = scores[:, j : j + 1]
            assert stats[j]["mean"] == pytest.approx(metrics.aggregate_mean(column))
            assert stats[j]["iqm"] == pytest.approx(metrics.aggregate_iqm(column))
            low, high = stats[j]["iqm_ci"]
            assert column.min() - 1e-9 <= low <= stats[j]["iqm"] <= high <= column.max() + 1e-9


def test_bad_sweep_directories_are_named(tmp_path):
    with pytest.raises(AggregationError, match="holds no job directories"):
        aggregate(tmp_path)
    fake_cell(tmp_path, "cnn", 1, [10, 5, 2])
    broken = fake_cell(tmp_path, "cnn", 2, [10, 5, 2])
    (broken / "results.json").write_text("{not json")
    summary = aggregate(tmp_path, reps=100)
    statuses = {c["seed"]: (c["status"], c["problem"]) for c in summary["cells"].values()}
    assert statuses[1][0] == "ok" and statuses[2][0] == "malformed" and "results.json" in statuses[2][1]
    assert "malformed" in (tmp_path / "REPORT.md").read_text()
    fake_cell(tmp_path, "cnn", 3, [1, 1, 1], env="pong")
    summary = aggregate(tmp_path, reps=100)  # the other game's cell is named, the rest still aggregated
    pong = next(c for c in summary["cells"].values() if c["seed"] == 3)
    assert pong["status"] == "other_game" and "Pong" in pong["problem"] and "config.yaml" in pong["problem"]
    assert summary["statistics"]["cnn"]["clean"]["mean"] == 10


def test_grid_sweep_with_joblib_writes_the_report(tmp_path):
    args = [
        "-m",
        "-cd",
        str(ROOT / "multirun_sweeps"),
        "-cn",
        "grid",
        "encoder=cnn,jepa",
        "seed=1,2",
        *TINY,
        *TINY_PRETRAIN,
    ]
    args += ["logger=none", "eval.suite=[clean,hard]", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = launch([*args, "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "sweep" / "cells.csv").read_text().splitlines()))
    assert sorted((r["condition"], r["seed"], r["status"]) for r in rows) == [
        ("cnn", "1", "ok"),
        ("cnn", "2", "ok"),
        ("jepa", "1", "ok"),
        ("jepa", "2", "ok"),
    ]
    report = (tmp_path / "sweep" / "REPORT.md").read_text()
    assert "## Cells: 4 of 4 finished" in report and "| jepa | 2 |" in report
    assert len(list((tmp_path / "cache" / "encoders").glob("*/encoder.pt"))) == 1  # both jepa seeds share it
    for plot in ("returns", "drop_from_clean", "degradation", "robustness_ratio", "clean_vs_robustness"):
        assert (tmp_path / "sweep" / f"{plot}.png").stat().st_size > 1000
        assert f"({plot}.png)" in report


def test_a_failed_cell_is_reported_and_the_others_aggregated(tmp_path):
    args = ["-m", *TINY, "logger=wandb", "eval.suite=[clean,hard]", "perturbations.hard.noise_std=5,-1"]
    result = launch([*args, "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode != 0 and "1 of 2 cells did not finish" in result.stderr
    report = (tmp_path / "sweep" / "REPORT.md").read_text()
    assert "## Cells: 1 of 2 finished" in report and "**failed**" in report and "noise_std" in report
    assert "perturbations.hard.noise_std=5" in report  # the condition that ran, in the table
    assert list((tmp_path / "sweep" / "wandb").glob("offline-run-*-summary-*"))  # the sweep's summary run


def test_learning_curves_of_seeds_share_their_steps(tmp_path):
    # Two seeds whose last games end at different steps: the curve's points must still line up.
    for seed, last in ((1, 9_000), (2, 10_000)):
        job = fake_cell(tmp_path, "cnn", seed, [10, 5, 2])
        steps = np.linspace(100, last, 40)
        (job / "episodes.csv").write_text("".join(f"{int(s)},0,{seed + s / 1000:.1f},100\n" for s in steps))
    rows = curve_rows(collect_cells(tmp_path), bins=10)
    by_seed = [sorted(rows[rows.seed == s].step) for s in (1, 2)]
    assert by_seed[0] == by_seed[1][: len(by_seed[0])] and len(by_seed[1]) == 10
    assert rows.step.max() == 10_000


BOOTSTRAP_SCRIPT = """
import json, numpy as np
from jepa_rl.sweep.statistics import interval_estimates, probability_of_improvement
x = np.array([[10.0, 5, 2], [20, 10, 4], [30, 30, 6], [40, 20, 8], [100, 50, 10]])
print(json.dumps([interval_estimates({"c": x}, 300, 0)["c"], probability_of_improvement(x, x[::-1] * 0.9, 300, 0)]))
"""


def test_bootstrap_intervals_repeat_across_processes():
    """rliable resamples with the global np.random: seeded, two fresh processes give the same intervals."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", BOOTSTRAP_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(h)},
        ).stdout
        for h in (0, 1)
    ]
    assert runs[0] == runs[1] and "mean_ci" in runs[0]
    state = np.random.get_state()[1].copy()
    interval_estimates({"c": np.arange(12.0).reshape(4, 3)}, reps=50, seed=0)
    assert (np.random.get_state()[1] == state).all()  # the global generator is given back as it was


def test_clean_is_found_by_name_and_may_be_absent(tmp_path):
    order = ["noise", "clean", "hard"]
    for seed in (1, 2):
        fake_cell(tmp_path / "a", "cnn", seed, [5, 20, 2], suite=order, overrides=["eval.suite=[noise,clean,hard]"])
    summary = aggregate(tmp_path / "a", reps=100)
    assert summary["suite"] == order
    assert "- cnn: clean IQM 20.0 [20.0, 20.0]" in (tmp_path / "a" / "REPORT.md").read_text()
    for seed in (1, 2):
        fake_cell(tmp_path / "b", "cnn", seed, [5, 2], suite=["noise", "hard"], overrides=["eval.suite=[noise,hard]"])
    summary = aggregate(tmp_path / "b", reps=100)  # no clean: no clean-relative findings or figures, no crash
    report = (tmp_path / "b" / "REPORT.md").read_text()
    assert "has no `clean` evaluation" in report and "- cnn: clean IQM" not in report
    assert "drop_from_clean" not in summary["plots"] and "returns" in summary["plots"]


def test_negative_clean_means_leave_ratios_undefined(tmp_path):
    for seed in (1, 2):
        fake_cell(tmp_path, "cnn", seed, [-20, -21, -19], env="pong")
    aggregate(tmp_path, reps=100)
    assert "robustness ratio undefined (clean mean <= 0)" in (tmp_path / "REPORT.md").read_text()
    df = pd.DataFrame(
        [
            {"condition": k, "perturbation": p, "return": r}
            for k, clean in (("pos", 10.0), ("zero", 0.0), ("neg", -20.0))
            for p, r in (("clean", clean), ("noise", 5.0))
        ]
    )
    drop = drop_from_clean(df)["noise"]
    assert drop["pos"] == pytest.approx(0.5) and np.isnan(drop["zero"]) and np.isnan(drop["neg"])


def test_a_constant_condition_keeps_encoders_apart_and_duplicates_are_flagged(tmp_path):
    for encoder in ("cnn", "jepa"):
        for seed in (1, 2):
            fake_cell(tmp_path, encoder, seed, [10 * seed, 5, 2], overrides=["condition=base"])
    fake_cell(tmp_path, "cnn", 1, [99, 99, 99], overrides=["condition=base"], job="rerun/cnn/seed1")
    summary = aggregate(tmp_path, reps=100)
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
    summary = aggregate(tmp_path, reps=100)
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
    aggregate(tmp_path, reps=100)
    report = (tmp_path / "REPORT.md").read_text()
    assert "left out, playing other games: `pong/cnn/seed2` (ALE/Pong-v5)" in report


def test_only_conditions_with_equal_other_overrides_are_compared(tmp_path):
    for encoder in ("cnn", "jepa"):
        for steps in (100000, 200000):
            fake_cell(
                tmp_path, encoder, 1, [10, 5, 2], overrides=[f"ppo.total_timesteps={steps}"], job=f"{encoder}{steps}"
            )
    pairs = aggregate(tmp_path, reps=50)["probability_of_improvement"]
    assert sorted(pairs) == [
        "jepa ppo.total_timesteps=100000 > cnn ppo.total_timesteps=100000",
        "jepa ppo.total_timesteps=200000 > cnn ppo.total_timesteps=200000",
    ]
    assert "| jepa ppo.total_timesteps=100000 | 1 | 10.0 | 5.0 | 2.0 | 0.35 |" in (tmp_path / "REPORT.md").read_text()


def test_failed_cells_fail_the_sweep_even_when_wandb_fails(tmp_path, caplog):
    fake_cell(tmp_path, "cnn", 1, [10, 5, 2])
    failed = fake_cell(tmp_path, "cnn", 2, [], results=False)
    (failed / "error.txt").write_text("Traceback ...\nValueError: boom\n")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}, "logger": {"backend": "none"}})
    with pytest.raises(SystemExit, match="1 of 2 cells did not finish"):  # the logger config is broken: W&B fails
        AggregateSweep().on_multirun_end(config)
    assert "no W&B summary run" in caplog.text
