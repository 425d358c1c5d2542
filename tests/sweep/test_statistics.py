"""Pure statistics of a sweep: rliable's numbers, seeded bootstraps."""

import os
import subprocess
import sys

import numpy as np
import pytest

from jepa_rl.sweep.statistics import improvement_probability, interval_estimates


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


BOOTSTRAP_SCRIPT = """
import json, numpy as np
from jepa_rl.sweep.statistics import interval_estimates, probability_of_improvement
x = np.array([[10.0, 5, 2], [20, 10, 4], [30, 30, 6], [40, 20, 8], [100, 50, 10]])
print(json.dumps([interval_estimates({"c": x}, 300, 0)["c"], probability_of_improvement(x, x[::-1] * 0.9, 300, 0)]))
"""


@pytest.mark.slow
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
