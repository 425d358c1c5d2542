"""The robustness ratio of results.json: defined only where a ratio of raw scores means something."""

import pytest

from jepa_rl.evaluate import robustness_ratio


def scores(**means):
    return {name: {"mean": mean, "std": 0.0, "returns": [mean]} for name, mean in means.items()}


def test_robustness_ratio_is_the_mean_share_of_the_clean_score_kept():
    assert robustness_ratio(scores(clean=40.0, noise=30.0, hard=10.0)) == pytest.approx((0.75 + 0.25) / 2)
    assert robustness_ratio(scores(noise=30.0, clean=40.0)) == pytest.approx(0.75)  # found by name, not position


@pytest.mark.parametrize(
    "means",
    [
        dict(clean=-20.0, noise=-21.0),  # Pong: as a raw ratio, 1.05 would call the worse agent more robust
        dict(clean=0.0, noise=3.0),
        dict(clean=5.0),  # nothing to compare with
        dict(noise=5.0),  # no clean reference
    ],
)
def test_robustness_ratio_is_undefined_without_a_positive_clean_score(means):
    assert robustness_ratio(scores(**means)) is None
