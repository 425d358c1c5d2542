"""The sweep's figures: learning curves, drops from clean."""

import numpy as np
import pandas as pd
import pytest
from helpers import fake_cell

from jepa_rl.sweep.aggregate import aggregate
from jepa_rl.sweep.cells import collect_cells
from jepa_rl.sweep.plots import curve_rows, drop_from_clean


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
