"""ImageNet-C corruption families (Hendrycks and Dietterich 2019) at severities 1-5, on RGB uint8 frames.

Each family follows the reference definition and severity table of the benchmark (as the
``imagecorruptions`` package ships them), rewritten on numpy and OpenCV so that every random draw
comes from the generator it is given: an environment's own stream, never a global one. The values
per severity (on frames in [0, 1] unless said otherwise):

================  ==================================  =============================================
family            parameter per severity 1..5          what it does
================  ==================================  =============================================
gaussian_noise    std .08 .12 .18 .26 .38              adds N(0, std) per pixel and channel
shot_noise        photons 60 25 12 5 3                 Poisson(x * photons) / photons
impulse_noise     amount .03 .06 .09 .17 .27           that share of values set to 0 or 1 (half each)
defocus_blur      disk radius 3 4 6 8 10 (px)          convolves with an anti-aliased disk
motion_blur       radius 10 15 15 15 20, sigma         one-sided Gaussian smear along a random angle
                  3 5 8 12 15 (px)                     in [-45, 45] degrees, drawn per frame
contrast          factor .4 .3 .2 .1 .05               (x - channel mean) * factor + channel mean
brightness        offset .1 .2 .3 .4 .5                adds it to HSV value, keeping hue and saturation
pixelate          scale .6 .5 .4 .3 .25                box downscale, nearest-neighbour upscale
jpeg_compression  quality 25 18 15 10 7                JPEG encode and decode
================  ==================================  =============================================

The tables were made for 224x224 photographs; applied here to the full 210x160 Atari frame, a blur
of a given radius covers a larger share of the screen. Results are rounded to uint8 (the reference
package truncates): on Breakout frames, every deterministic family is within one level of the
reference's output, and the random ones change frames by the same amounts
(``reference_checks/corruptions_vs_reference.py``; docs/results/undated-corruptions-vs-reference.md has the table).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

SEVERITIES = range(1, 6)

_GAUSSIAN = (0.08, 0.12, 0.18, 0.26, 0.38)
_PHOTONS = (60, 25, 12, 5, 3)
_IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)
_DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # disk radius, anti-alias sigma
_MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # radius, sigma
_CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
_PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
_JPEG_QUALITY = (25, 18, 15, 10, 7)


def _gaussian_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    return x + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(_GAUSSIAN[s - 1])


def _shot_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    photons = _PHOTONS[s - 1]
    return rng.poisson(x * photons).astype(np.float32) / np.float32(photons)


def _impulse_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(x.shape, dtype=np.float32) < _IMPULSE[s - 1]
    salt = rng.random(x.shape, dtype=np.float32) < 0.5
    return np.where(hit, salt.astype(x.dtype), x)


def disk_kernel(radius: int, alias_sigma: float) -> np.ndarray:
    """The reference's anti-aliased disk: a 17x17 (or larger) grid, normalised, then slightly blurred."""
    half = max(8, radius)
    coords = np.arange(-half, half + 1)
    disk = (coords[:, None] ** 2 + coords[None, :] ** 2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    size = 3 if radius <= 8 else 5
    return cv2.GaussianBlur(disk, (size, size), alias_sigma)


def _defocus_blur(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    return cv2.filter2D(x, -1, disk_kernel(*_DEFOCUS[s - 1]))


def motion_kernel(radius: int, sigma: float, angle: float) -> np.ndarray:
    """Correlation kernel of the reference's motion blur: a one-sided Gaussian over ``2 * radius + 1``
    steps along ``angle`` (degrees), each step a pixel offset rounded as the reference rounds it."""
    width = 2 * radius + 1
    weights = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    dy_unit, dx_unit = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    kernel = np.zeros((2 * width + 1, 2 * width + 1), dtype=np.float32)
    for i, w in enumerate(weights):
        # The reference shifts the image by (-ceil(i * unit - 0.5)): output(y, x) gathers input(y - dy, x - dx).
        dy, dx = -math.ceil(i * dy_unit - 0.5), -math.ceil(i * dx_unit - 0.5)
        kernel[width - dy, width - dx] += w
    return kernel


def _motion_blur(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    kernel = motion_kernel(*_MOTION[s - 1], angle=rng.uniform(-45, 45))
    return cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def _contrast(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    means = x.mean(axis=(0, 1), keepdims=True, dtype=np.float64).astype(np.float32)
    return (x - means) * _CONTRAST[s - 1] + means


def _brightness(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    # In HSV with V = max(R, G, B), raising V at fixed hue and saturation scales the three channels
    # by V' / V; a black pixel (V = 0, saturation 0) becomes the grey V'.
    value = x.max(axis=-1, keepdims=True)
    raised = np.clip(value + np.float32(_BRIGHTNESS[s - 1]), 0, 1)
    scale = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    return np.where(value > 0, x * scale, raised)


def _pixelate(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    # Pillow's box downscale and nearest upscale, as the reference: OpenCV's area and nearest
    # resizes place a non-integer scale's edges a pixel apart from Pillow's.
    frame = Image.fromarray(np.rint(x * 255).astype(np.uint8))
    w, h = frame.size
    scale = _PIXELATE[s - 1]
    small = frame.resize((int(w * scale), int(h * scale)), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST), dtype=np.float32) / 255


def _jpeg_compression(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    frame = np.rint(x * 255).astype(np.uint8)[..., ::-1]  # OpenCV encodes BGR
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY[s - 1]])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a frame")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


FAMILIES: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}


def parse_corruption(name: str) -> tuple[str, int] | None:
    """``(family, severity)`` of a suite name ``<family>_<severity>`` (``gaussian_noise_3``), else None.
    The severity is not range-checked here (``check`` does, naming the valid ones)."""
    family, _, severity = name.rpartition("_")
    return (family, int(severity)) if family in FAMILIES and severity.lstrip("-").isdigit() else None


def check(family: str, severity: int) -> None:
    """A known family at a severity in 1-5, or a ValueError naming the choices."""
    if family not in FAMILIES:
        raise ValueError(f"corruption={family} is not a corruption family; choose one of {', '.join(FAMILIES)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity={severity} is outside 1-5; choose a severity from 1 (mild) to 5 (strongest)")


def corrupt(frame: np.ndarray, family: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 frame ``[H, W, 3]`` corrupted by ``family`` at ``severity`` (1-5), drawing from ``rng``."""
    out = FAMILIES[family](frame.astype(np.float32) / 255, severity, rng)
    return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)
