import numpy as np
import pytest
from helpers import pipeline

from jepa_rl.envs.perturbations import VisualPerturbation


def frames(n=4, value=128):
    return np.full((n, 210, 160, 3), value, dtype=np.uint8)


def test_clean_is_identity():
    p = VisualPerturbation(name="clean")
    p.bind(range(4))
    p.new_episode(np.ones(4, bool))
    x = np.random.default_rng(0).integers(0, 256, (4, 210, 160, 3), dtype=np.uint8)
    assert np.array_equal(p(x), x)


@pytest.mark.parametrize("std", [10.0, 25.0])
def test_noise_std_matches_config_and_is_fresh_every_frame(std):
    p = VisualPerturbation(name="noise", noise_std=std)
    p.bind([0, 1])
    first, second = p(frames(2)), p(frames(2))
    delta = first.astype(np.float64) - 128
    assert abs(delta.mean()) < 0.1
    assert delta.std() == pytest.approx(std, rel=0.02)
    assert not np.array_equal(first, second)


def test_jitter_constant_within_an_episode_and_different_across_episodes():
    p = VisualPerturbation(name="color_jitter", hue=0.2, saturation=0.3, brightness=0.2)
    p.bind(range(3))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 210, 160, 3), dtype=np.uint8)
    p.new_episode(np.ones(3, bool))
    a, b = p(x), p(x)
    assert np.array_equal(a, b)  # same episode: same jitter
    assert not np.array_equal(a, x)
    assert len({round(float(v), 6) for v in p.hue_shift}) == 3
    p.new_episode(np.array([True, False, False]))  # env 0 starts a new game
    c = p(x)
    assert not np.array_equal(c[0], a[0])
    assert np.array_equal(c[1:], a[1:])


def test_jitter_parameters_stay_in_their_ranges():
    p = VisualPerturbation(name="hard", hue=0.4, saturation=0.5, brightness=0.4)
    p.bind(range(5000))
    p.new_episode(np.ones(5000, bool))
    assert np.abs(p.hue_shift).max() <= 0.4 and np.abs(p.hue_shift).max() > 0.39
    assert p.sat_scale.min() >= 0.5 and p.sat_scale.max() <= 1.5
    assert np.abs(p.value_offset).max() <= 0.4 * 255


def test_perturbations_are_seeded():
    def run(seed):
        p = VisualPerturbation(name="mild", hue=0.2, saturation=0.3, brightness=0.2, noise_std=10)
        p.bind([seed, seed + 100])
        p.new_episode(np.ones(2, bool))
        return p(frames(2, 90))

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_each_game_of_an_environment_gets_its_jitter_whatever_happens_elsewhere():
    """Jitter and noise draw from separate per-environment streams: game k of environment i has the
    same colours however many frames were perturbed before it and whenever other games ended."""
    settings = dict(name="mild", hue=0.2, saturation=0.3, brightness=0.2, noise_std=10)
    a, b = VisualPerturbation(**settings), VisualPerturbation(**settings)
    a.bind([7, 8]), b.bind([7, 8])
    a.new_episode(np.ones(2, bool)), b.new_episode(np.ones(2, bool))
    for _ in range(5):  # a's first games last longer
        a(frames(2))
    b(frames(2))
    b.new_episode(np.array([False, True]))  # b's environment 1 starts its second game first
    for p in (a, b):
        p.new_episode(np.array([True, False]))  # then both start environment 0's second game
    assert a.hue_shift[0] == b.hue_shift[0] and a.sat_scale[0] == b.sat_scale[0]
    assert a.value_offset[0] == b.value_offset[0]
    assert a.hue_shift[1] != b.hue_shift[1]  # b's environment 1 is in its second game, a's in its first


@pytest.mark.parametrize("key", ["hue", "saturation", "brightness", "noise_std"])
def test_negative_parameters_are_rejected(key):
    with pytest.raises(ValueError, match=key):
        VisualPerturbation(name="bad", **{key: -1.0})


def test_a_copy_has_the_same_settings_and_streams_of_its_own():
    """Each training env group perturbs with a copy: binding or drawing in one leaves the other alone."""
    p = VisualPerturbation(name="mild", hue=0.2, saturation=0.3, brightness=0.2, noise_std=10)
    p.bind([7, 8])
    p.new_episode(np.ones(2, bool))
    hue = p.hue_shift.copy()
    q = p.copy()
    assert q is not p and q.params() == p.params() and repr(q) == repr(p)
    q.bind([7, 8])
    q.new_episode(np.ones(2, bool))
    assert np.array_equal(q.hue_shift, hue)  # the same seeds give the same games' colours...
    q.bind([1, 2, 3])
    q.new_episode(np.ones(3, bool))
    assert np.array_equal(p.hue_shift, hue) and len(p.jitter_rngs) == 2  # ...and the original is untouched


def test_jitter_constant_over_a_real_episode():
    """In the real pipeline, a game's jitter does not change until that game ends."""
    p = VisualPerturbation(name="color_jitter", hue=0.2, saturation=0.3, brightness=0.2)
    envs = pipeline("breakout", 2, 0, perturbation=p, max_frames=400, num_threads=1)
    envs.reset()
    params = [(p.hue_shift.copy(), p.sat_scale.copy())]
    ends = 0
    for _ in range(150):
        _, _, term, trunc, _ = envs.step(np.ones(2, dtype=np.int32))
        done = term | trunc
        ends += done.sum()
        hue_now = p.hue_shift.copy()
        assert np.array_equal(hue_now[~done], params[-1][0][~done])
        if done.any():
            assert not np.array_equal(hue_now[done], params[-1][0][done])
        params.append((hue_now, p.sat_scale.copy()))
    envs.close()
    assert ends >= 2  # the 400-frame cap ended games, so re-sampling was exercised
