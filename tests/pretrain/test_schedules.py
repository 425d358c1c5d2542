"""The pretraining schedules: pure functions of the step, so a resumed run continues them."""

import pytest

from jepa_rl.pretrain.schedules import ema_initial_share, ema_momentum, warmup_cosine


def test_ema_momentum_schedule():
    assert ema_momentum(0, 1000) == pytest.approx(0.996)
    assert ema_momentum(500, 1000) == pytest.approx(0.998)
    assert ema_momentum(1000, 1000) == pytest.approx(1.0)
    assert ema_momentum(5000, 1000) == pytest.approx(1.0)  # clamped past the end
    values = [ema_momentum(s, 100) for s in range(101)]
    assert values == sorted(values)


def test_warmup_cosine_schedule():
    lr = [warmup_cosine(s, total_steps=100, warmup_steps=10, peak=1e-3, start=1e-4, end=1e-6) for s in range(101)]
    assert lr[0] == pytest.approx(1e-4) and lr[10] == pytest.approx(1e-3) and lr[100] == pytest.approx(1e-6)
    assert lr[:11] == sorted(lr[:11]) and lr[10:] == sorted(lr[10:], reverse=True)
    assert lr[55] == pytest.approx(1e-6 + 0.5 * (1e-3 - 1e-6))


def test_the_initial_share_of_the_ema_target_is_the_product_of_its_momenta():
    assert ema_initial_share(0, 100, 0.9, 1.0) == 1.0
    assert ema_initial_share(3, 100, 0.9, 1.0) == pytest.approx(0.9 * 0.901 * 0.902)
    # The count: I-JEPA's 0.996 over the cpu preset's 780 steps keeps 21% of the init; 0.98 keeps 0.04%.
    assert ema_initial_share(780, 780, 0.996, 1.0) == pytest.approx(0.209, abs=1e-3)
    assert ema_initial_share(780, 780, 0.98, 1.0) < 0.001
