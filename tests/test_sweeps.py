"""Sweeps and their aggregation: the named grid through launch.py, hand-checked statistics, failed cells."""

import csv
import json

import numpy as np
import pytest
from conftest import ROOT, TINY, TINY_PRETRAIN, compose_cfg, launch
from omegaconf import OmegaConf

from jepa_rl.aggregate import (
    AggregationError,
    aggregate,
    collect_cells,
    improvement_probability,
    interval_estimates,
    normalised,
)
from jepa_rl.plots import curve_rows

SUITE = ["clean", "noise", "hard"]


def fake_cell(root, encoder, seed, means, env="breakout", overrides=()):
    """A finished job directory as a sweep leaves it: .hydra/config.yaml, overrides.yaml, results.json."""
    job = root / env / encoder / f"seed{seed}"
    (job / ".hydra").mkdir(parents=True)
    cfg = compose_cfg([f"env={env}", f"encoder={encoder}", f"seed={seed}", *overrides])
    OmegaConf.save(cfg, job / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create([f"encoder={encoder}", f"seed={seed}", *overrides]), job / ".hydra" / "overrides.yaml"
    )
    ev = {p: {"mean": m, "std": 0.0, "returns": [m]} for p, m in zip(SUITE, means, strict=True)}
    ratio = float(np.mean([m / means[0] for m in means[1:]]))
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
    assert f"{np.mean(ratios):.2f} ± {np.std(ratios):.2f}" in report  # robustness ratio over seeds
    assert "| cnn | 5 | 40.0 ± 31.6 | 23.0 ± 16.0 | 6.0 ± 2.8 |" in report
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
