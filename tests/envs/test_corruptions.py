"""ImageNet-C corruption families: the reference's definitions, seeded per environment, in the pipeline."""

import math

import cv2
import numpy as np
import pytest
from helpers import pipeline
from PIL import Image

from jepa_rl.envs.corruptions import FAMILIES, SEVERITIES, check, corrupt, disk_kernel, motion_kernel, parse_corruption
from jepa_rl.envs.perturbations import VisualPerturbation, suite_config


@pytest.fixture(scope="module")
def frame():
    """A real Breakout frame at full resolution, RGB."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make("ALE/Breakout-v5")
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        obs, *_ = env.step(1)
    env.close()
    return obs


def distances(frame, family, measure):
    """``measure`` of the change ``family`` makes to ``frame`` at severities 1..5 (one generator seed for all:
    motion blur draws the same angle at each)."""
    changes = []
    for severity in SEVERITIES:
        out = corrupt(frame, family, severity, np.random.default_rng(0))
        assert out.shape == frame.shape and out.dtype == np.uint8
        changes.append(measure(out.astype(float) - frame))
    return np.array(changes)


def mean_abs(d):
    return np.abs(d).mean()


def rms(d):
    return np.sqrt((d**2).mean())


MONOTONE_ON_A_REAL_FRAME = [f for f in FAMILIES if f not in ("pixelate", "jpeg_compression")]


@pytest.mark.parametrize("family", MONOTONE_ON_A_REAL_FRAME)
def test_every_family_changes_a_real_frame_strictly_more_at_each_severity(frame, family):
    changes = distances(frame, family, mean_abs)
    assert changes[0] > 0 and np.all(np.diff(changes) > 0), changes


def test_pixelate_and_jpeg_lose_more_of_a_real_frame_where_their_steps_can_show_it(frame):
    """On Breakout's flat-coloured frame the two are not monotone in the mean change (measured:
    pixelate 0.6, 3.1, 3.8, 4.5, 3.0 levels; JPEG 3.3, 4.9, 4.8, 4.3, 4.5).

    Pixelate's error is where its box grid meets the frame's few edges: at the 1/4 scale (severity 5)
    the 160-px width becomes 4-px boxes whose edges fall on the walls' (x = 8 and 152), while the 0.3
    scale's 3.3-px boxes straddle them (measured: the walls give 39% of severity 4's change, 11% of
    severity 5's). JPEG at qualities 18 and 15 brings the black background back 2 levels lighter (57%
    of the pixels), at 25, 10 and 7 it brings it back black (63-73% unchanged). What holds: JPEG's
    squared error, which the large errors at edges dominate, rises strictly; pixelate's mildest
    severity is its mildest; and on a textured frame, with no grid to fit, both lose strictly more at
    each severity."""
    assert np.all(np.diff(distances(frame, "jpeg_compression", rms)) > 0)
    pixelated = distances(frame, "pixelate", mean_abs)
    assert 0 < pixelated[0] < pixelated[1:].min()
    smooth = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (210, 160, 3), dtype=np.uint8), (0, 0), 2)
    for family in ("pixelate", "jpeg_compression"):
        assert np.all(np.diff(distances(smooth, family, mean_abs)) > 0), family


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_corruption_draws_only_from_the_generator_it_is_given(frame, family):
    np.random.seed(1)
    a = corrupt(frame, family, 3, np.random.default_rng(7))
    np.random.seed(2)
    assert np.array_equal(a, corrupt(frame, family, 3, np.random.default_rng(7)))


def test_contrast_and_blurs_keep_a_flat_frame_flat():
    flat = np.full((210, 160, 3), 90, dtype=np.uint8)
    for family in ("contrast", "motion_blur"):
        assert np.array_equal(corrupt(flat, family, 5, np.random.default_rng(0)), flat)
    assert np.array_equal(corrupt(flat, "defocus_blur", 3, np.random.default_rng(0)), flat)
    # As in the reference, the disks that fill their grid (radius 8 and 10) sum to 1.01 once anti-aliased.
    assert disk_kernel(6, 0.5).sum() == pytest.approx(1, abs=1e-5)
    assert disk_kernel(10, 0.5).sum() == pytest.approx(1.011, abs=1e-3)


def test_motion_blur_smears_along_its_angle():
    kernel = motion_kernel(10, 3, angle=0.0)  # horizontal: one row of weights, decaying to one side
    rows = np.flatnonzero(kernel.sum(1))
    assert len(rows) == 1 and kernel.sum() == pytest.approx(1, abs=1e-6)
    weights = kernel[rows[0]][kernel[rows[0]] > 0]
    assert len(weights) == 21 and np.all(np.diff(weights) <= 0)  # from the pixel itself outwards
    diagonal = motion_kernel(10, 3, angle=45.0)
    ys, xs = np.nonzero(diagonal)
    assert math.isclose(abs(np.corrcoef(ys, xs)[0, 1]), 1.0, rel_tol=1e-6)


def test_a_corruption_in_the_perturbation_is_seeded_per_environment():
    frames = np.random.default_rng(0).integers(0, 256, (3, 210, 160, 3), dtype=np.uint8)
    p = VisualPerturbation(name="shot_noise_3", corruption="shot_noise", severity=3)
    p.bind([5, 6, 5])
    out = p(frames[[0, 0, 0]])
    assert np.array_equal(out[0], out[2]) and not np.array_equal(out[0], out[1])
    assert not p.is_identity and p.params()["corruption"] == "shot_noise"


def test_a_suite_names_a_corruption_family_at_a_severity():
    named = {"clean": {"name": "clean"}}
    assert suite_config(named, "clean") == {"name": "clean"}
    node = suite_config(named, "motion_blur_2")
    assert node["corruption"] == "motion_blur" and node["severity"] == 2
    with pytest.raises(ValueError, match="unknown perturbation 'fog_3'"):
        suite_config(named, "fog_3")
    with pytest.raises(ValueError, match="severity=6 is outside 1-5"):
        VisualPerturbation(name="x", corruption="pixelate", severity=6)
    with pytest.raises(ValueError, match="corruption=snow is not a corruption family"):
        VisualPerturbation(name="x", corruption="snow", severity=2)


def test_a_suite_name_parses_to_its_family_and_severity_even_out_of_range():
    """A negative or too-large severity still parses, so that ``check`` names the valid ones; anything but a
    family and a whole number is not a corruption."""
    assert parse_corruption("gaussian_noise_3") == ("gaussian_noise", 3)
    assert parse_corruption("gaussian_noise_-1") == ("gaussian_noise", -1)
    assert parse_corruption("jpeg_compression_12") == ("jpeg_compression", 12)
    malformed = ["gaussian_noise", "gaussian_noise_", "gaussian_noise_1-", "gaussian_noise_ 1", "gaussian_noise_X3"]
    for name in [*malformed, "fog_3", "noise"]:
        assert parse_corruption(name) is None, name
    with pytest.raises(ValueError, match="severity=-1 is outside 1-5"):
        check(*parse_corruption("gaussian_noise_-1"))
    with pytest.raises(ValueError) as refused:
        check("snow", 2)
    assert str(refused.value) == f"corruption=snow is not a corruption family; choose one of {', '.join(FAMILIES)}"


def test_the_pipeline_corrupts_what_the_agent_sees_and_nothing_of_the_game():
    """Same seed and actions: other observations, the same rewards, lives and ends of games."""
    runs = []
    for perturbation in (
        VisualPerturbation(name="clean"),
        VisualPerturbation(name="motion_blur_5", corruption="motion_blur", severity=5),
    ):
        envs = pipeline("breakout", 2, 3, perturbation=perturbation, max_frames=400, num_threads=1)
        obs, _ = envs.reset()
        seen, events = [obs], []
        for _ in range(120):
            obs, reward, term, trunc, info = envs.step(np.ones(2, dtype=np.int32))
            seen.append(obs)
            events.append((reward.tolist(), term.tolist(), trunc.tolist(), info["lives"].tolist()))
        envs.close()
        runs.append((np.stack(seen), events))
    (clean, clean_events), (blurred, blurred_events) = runs
    assert clean_events == blurred_events
    assert np.abs(clean.astype(int) - blurred).mean() > 1


# The severity tables of ImageNet-C (Hendrycks and Dietterich 2019, as the ``imagecorruptions`` package
# ships them), severity 1..5. Each test below measures a family's effect at every severity against them.
GAUSSIAN_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # disk radius, anti-alias sigma
# Radius, sigma. The smear spans 2 * radius + 1 steps: at severities 1 and 2 the steps a change of radius
# adds or cuts weigh under 1e-6 of the kernel (exp(-17**2 / (2 * 3**2)) = 1e-7), and no output level moves.
MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
PIXELATE_SIZE = ((96, 126), (80, 105), (64, 84), (48, 63), (40, 52))  # 160x210 scaled by .6 .5 .4 .3 .25
JPEG_QUALITY = (25, 18, 15, 10, 7)


def at_severity(table):
    return pytest.mark.parametrize(("severity", "value"), list(enumerate(table, 1)))


def grey(level, size=600):
    """A flat grey frame, large enough (1.08M values) that a noise's moments are measured to 0.1%."""
    return np.full((size, size, 3), level, dtype=np.uint8)


@pytest.fixture(scope="module")
def texture():
    """Random RGB values: detail at every scale, so a change of a filter's parameters shows in its output."""
    return np.random.default_rng(0).integers(0, 256, (210, 160, 3), dtype=np.uint8)


def moments(p):
    """Mean and standard deviation (in levels) of a distribution ``p`` over the 256 uint8 levels."""
    levels = np.arange(len(p))
    mean = (p * levels).sum()
    return mean, math.sqrt((p * (levels - mean) ** 2).sum())


@at_severity(GAUSSIAN_STD)
def test_gaussian_noise_has_the_tables_standard_deviation(severity, value):
    """On mid-grey, out = round(clip(x + N(0, std)) * 255): the expected level distribution is the normal's
    mass between level edges (the clipped tails piled on 0 and 255), whose spread the measured one matches."""
    x = 128 / 255
    edges = np.r_[-np.inf, (np.arange(1, 256) - 0.5) / 255, np.inf]
    cdf = 0.5 * (1 + np.vectorize(math.erf)((edges - x) / value / math.sqrt(2)))
    _, expected = moments(np.diff(cdf))
    measured = corrupt(grey(128), "gaussian_noise", severity, np.random.default_rng(0)).std()
    assert measured == pytest.approx(expected, rel=0.005)  # sampling error of the std: 0.07%


@at_severity(PHOTONS)
def test_shot_noise_has_variance_x_over_the_tables_photons(severity, value):
    """Poisson(x * photons) / photons has mean x and variance x / photons; with the rounding to levels
    and the clip at 1 (0.06% of draws at 3 photons, on this dark grey), the expected spread is the exact sum
    over counts."""
    x = 32 / 255
    counts = np.arange(400)
    pmf = np.exp(counts * math.log(x * value) - x * value - np.vectorize(math.lgamma)(counts + 1.0))
    levels = np.rint(np.minimum(counts / value, 1) * 255).astype(int)
    mean, std = moments(np.bincount(levels, weights=pmf, minlength=256))
    assert std == pytest.approx(255 * math.sqrt(x / value), rel=0.01)  # the clip and rounding change it little
    out = corrupt(grey(32), "shot_noise", severity, np.random.default_rng(0))
    assert out.std() == pytest.approx(std, rel=0.005) and out.mean() == pytest.approx(mean, abs=0.5)


@at_severity(IMPULSE_AMOUNT)
def test_impulse_noise_sets_the_tables_share_of_values_to_black_or_white(severity, value):
    out = corrupt(grey(128), "impulse_noise", severity, np.random.default_rng(0))
    hit = out != 128
    assert set(np.unique(out[hit])) == {0, 255}
    assert hit.mean() == pytest.approx(value, abs=0.0025)  # sampling error below 0.0005
    assert (out == 255).sum() / hit.sum() == pytest.approx(0.5, abs=0.02)  # salt and pepper, half each


@at_severity(CONTRAST)
def test_contrast_scales_deviations_from_the_channel_mean_by_the_tables_factor(texture, severity, value):
    x = texture / 255
    means = x.mean(axis=(0, 1))
    expected = ((x - means) * value + means) * 255
    out = corrupt(texture, "contrast", severity, np.random.default_rng(0))
    assert np.abs(out - expected).max() <= 0.5 + 1e-3  # the rounding to a level, nothing more


@at_severity(BRIGHTNESS)
def test_brightness_raises_the_hsv_value_by_the_tables_offset_at_fixed_hue_and_saturation(severity, value):
    x = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    x[:5] = 0  # black pixels become grey
    hsv = cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
    hsv[..., 2] = np.clip(hsv[..., 2] + value, 0, 1)
    expected = np.rint(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255)
    assert np.abs(corrupt(x, "brightness", severity, np.random.default_rng(0)) - expected).max() <= 1


@at_severity(DEFOCUS)
def test_defocus_blur_convolves_with_the_disk_of_the_tables_radius(texture, severity, value):
    blurred = cv2.filter2D(texture.astype(np.float32) / 255, -1, disk_kernel(*value))
    expected = np.rint(np.clip(blurred, 0, 1) * 255)
    assert np.array_equal(corrupt(texture, "defocus_blur", severity, np.random.default_rng(0)), expected)


@at_severity(MOTION)
def test_motion_blur_smears_with_the_tables_radius_and_sigma(texture, severity, value):
    angle = np.random.default_rng(3).uniform(-45, 45)  # the one draw the corruption makes from its generator
    kernel = motion_kernel(*value, angle=angle)
    smeared = cv2.filter2D(texture.astype(np.float32) / 255, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    expected = np.rint(np.clip(smeared, 0, 1) * 255)
    assert np.array_equal(corrupt(texture, "motion_blur", severity, np.random.default_rng(3)), expected)


@at_severity(PIXELATE_SIZE)
def test_pixelate_is_pillows_box_downscale_to_the_tables_scale(texture, severity, value):
    small = Image.fromarray(texture).resize(value, Image.Resampling.BOX)
    expected = np.asarray(small.resize((160, 210), Image.Resampling.NEAREST))
    assert np.array_equal(corrupt(texture, "pixelate", severity, np.random.default_rng(0)), expected)


@at_severity(JPEG_QUALITY)
def test_jpeg_compression_is_opencvs_codec_at_the_tables_quality(texture, severity, value):
    ok, data = cv2.imencode(".jpg", texture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, value])  # OpenCV's BGR
    expected = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    assert ok and np.array_equal(corrupt(texture, "jpeg_compression", severity, np.random.default_rng(0)), expected)


# The kernels and the noise streams, pinned independently of the module: the blur tests above build their
# expected frames with ``disk_kernel`` and ``motion_kernel`` themselves, so they cannot tell a wrong kernel
# from a right one, and the noise tests above measure statistics, which a sign flip or another stream keeps.


@at_severity(DEFOCUS)
def test_disk_kernel_is_the_references_anti_aliased_disk(severity, value):
    """The reference's ``disk``, written out as it ships: a 17x17 grid (radius <= 8, 3x3 anti-alias blur) or
    a (2 * radius + 1)-square one (radius > 8, 5x5 blur), the aliased disk normalised in float32, then
    Gaussian-blurred with the table's sigma."""
    radius, sigma = value
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        grid, ksize = np.arange(-radius, radius + 1), (5, 5)
    xs, ys = np.meshgrid(grid, grid)
    aliased = np.array(xs**2 + ys**2 <= radius**2, dtype=np.float32)
    aliased /= np.sum(aliased)
    expected = cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=sigma)
    kernel = disk_kernel(radius, sigma)
    assert kernel.dtype == np.float32 and kernel.shape == (len(grid), len(grid))
    assert np.array_equal(kernel, expected)


def test_disk_kernel_grid_is_17_wide_up_to_radius_8_and_grows_with_the_radius_beyond():
    assert disk_kernel(3, 0.1).shape == disk_kernel(8, 0.5).shape == (17, 17)
    assert disk_kernel(9, 0.5).shape == (19, 19) and disk_kernel(10, 0.5).shape == (21, 21)


@at_severity(MOTION)
def test_motion_kernel_at_angle_0_is_the_one_sided_gaussian_along_the_centre_row(severity, value):
    """A ``(4 * radius + 3)``-square grid centred on ``2 * radius + 1``; at angle 0 step i (of 2 * radius + 1)
    lands i pixels right of the centre with weight exp(-i**2 / (2 sigma**2)), normalised: the centre weighs
    most, and nothing lies off the centre row."""
    radius, sigma = value
    kernel = motion_kernel(radius, sigma, angle=0.0)
    centre, steps = 2 * radius + 1, 2 * radius + 1
    assert kernel.dtype == np.float32 and kernel.shape == (4 * radius + 3, 4 * radius + 3)
    g = np.exp(-(np.arange(steps) ** 2) / (2 * sigma**2))
    expected = np.zeros_like(kernel)
    expected[centre, centre : centre + steps] = g / g.sum()
    assert np.array_equal(kernel, expected)
    assert np.unravel_index(kernel.argmax(), kernel.shape) == (centre, centre)


@at_severity(MOTION)
def test_motion_kernel_at_45_degrees_smears_into_one_quadrant_and_keeps_all_its_weight(severity, value):
    """Step i's offset is -ceil(i * unit - 0.5), so at +45 degrees every cell is at or below and right of the
    centre (at -45, at or above and right). Neighbouring steps round to the same cell (steps 1 and 2 both to
    (1, 1)): their weights add, and the kernel still sums to 1."""
    radius, sigma = value
    centre = 2 * radius + 1
    for angle, rows_below in ((45.0, True), (-45.0, False)):
        kernel = motion_kernel(radius, sigma, angle=angle)
        assert kernel.dtype == np.float32 and kernel[centre, centre] > 0
        ys, xs = np.nonzero(kernel)
        assert np.all(xs >= centre) and np.all(ys >= centre if rows_below else ys <= centre), angle
        assert len(ys) < 2 * radius + 1  # fewer cells than steps: some steps share a cell
        assert kernel.sum() == pytest.approx(1, abs=1e-6), angle


@at_severity(GAUSSIAN_STD)
def test_gaussian_noise_adds_the_generators_float32_normals_scaled_by_the_tables_std(texture, severity, value):
    """The exact stream: one float32 standard-normal draw per value, times std, added to x in [0, 1] (float32),
    clipped and rounded to a level."""
    x = texture.astype(np.float32) / np.float32(255)
    noise = np.random.default_rng(0).standard_normal(texture.shape, dtype=np.float32) * np.float32(value)
    expected = np.rint(np.clip(x + noise, 0, 1) * np.float32(255)).astype(np.uint8)
    assert np.array_equal(corrupt(texture, "gaussian_noise", severity, np.random.default_rng(0)), expected)


@at_severity(IMPULSE_AMOUNT)
def test_impulse_noise_draws_a_hit_mask_then_a_salt_mask_in_float32(texture, severity, value):
    """The exact stream: a float32 uniform per value, under the amount = hit; then another, under 0.5 = salt
    (white), else pepper (black); values not hit unchanged."""
    rng = np.random.default_rng(0)
    hit = rng.random(texture.shape, dtype=np.float32) < value
    salt = rng.random(texture.shape, dtype=np.float32) < 0.5
    expected = np.where(hit, np.where(salt, 255, 0), texture).astype(np.uint8)
    assert np.array_equal(corrupt(texture, "impulse_noise", severity, np.random.default_rng(0)), expected)


class Draws:
    """Stands in for a generator: ``random`` hands out the given float32 arrays in turn."""

    def __init__(self, *arrays):
        self.arrays = list(arrays)

    def random(self, size, dtype):
        assert dtype == np.float32
        out = self.arrays.pop(0)
        assert out.shape == tuple(size)
        return out


def test_impulse_noise_thresholds_are_strict():
    """A draw exactly at the amount is not hit, one exactly at 0.5 is pepper: both comparisons are ``<``
    (a float32 uniform lands on 0.5 once in 2**24 draws, so a seeded stream cannot show it)."""
    amount = np.float32(IMPULSE_AMOUNT[0])
    below = np.nextafter(amount, np.float32(0))
    hit_draws = np.array([[[below, below, amount]]], dtype=np.float32)
    salt_draws = np.array([[[0.5, np.nextafter(np.float32(0.5), np.float32(0)), 0.5]]], dtype=np.float32)
    frame = np.full((1, 1, 3), 128, dtype=np.uint8)
    out = corrupt(frame, "impulse_noise", 1, Draws(hit_draws, salt_draws))
    assert out.tolist() == [[[0, 255, 128]]]


@at_severity(CONTRAST)
def test_contrast_is_exact_float32_arithmetic_around_a_float64_accumulated_mean(texture, severity, value):
    """The channel means are summed in float64 (a float32 running sum over 33,600 values drifts) and rounded to
    float32; the rest is float32: the family's output, before any rounding to levels, is bit for bit this."""
    x = texture.astype(np.float32) / np.float32(255)
    sums = [math.fsum(x[..., c].astype(np.float64).ravel()) for c in range(3)]
    means = np.float32(np.array(sums) / (x.shape[0] * x.shape[1]))
    expected = (x - means) * np.float32(value) + means
    out = FAMILIES["contrast"](x, severity, np.random.default_rng(0))
    assert out.dtype == np.float32 and np.array_equal(out, expected)
    rounded = np.rint(np.clip(expected, 0, 1) * np.float32(255)).astype(np.uint8)
    assert np.array_equal(corrupt(texture, "contrast", severity, np.random.default_rng(0)), rounded)
