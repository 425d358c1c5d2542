"""Visual perturbations applied to full-resolution RGB frames, before grayscale.

One parameterised transform covers the study's five conditions:

==============  =====  ==========  ==========  =========
name            hue    saturation  brightness  noise_std
==============  =====  ==========  ==========  =========
clean           0      0           0           0
color_jitter    0.2    0.3         0.2         0
noise           0      0           0           10
mild            0.2    0.3         0.2         10
hard            0.4    0.5         0.4         25
==============  =====  ==========  ==========  =========

Colour jitter (sampled once per episode, per environment), in OpenCV's HSV space:

- ``hue``: shift of the hue circle by a fraction drawn from ``U(-hue, hue)``;
- ``saturation``: saturation multiplied by a factor from ``U(1 - s, 1 + s)``;
- ``brightness``: value channel offset by ``U(-b, b) * 255`` (the study's additive
  brightness, not torchvision's multiplicative one).

Gaussian noise is drawn independently for every pixel and channel of every frame,
with ``noise_std`` in 0-255 intensity units, then rounded and clipped to uint8. It is drawn by
inverse transform from 16-bit uniform integers (a table of the normal's 65,536 quantiles, times
``noise_std``, rounded): the same rounded values a float draw gives, tails past 4.3 standard
deviations aside, at a fortieth of the cost (noise was most of an evaluation step's time).

Note that the agent sees the frame after grayscale conversion and the 84x84 area
resize, which average several noisy values: the noise the network sees is weaker
than ``noise_std`` (about a third of it at full Atari resolution).

A corruption family of ``corruptions`` (ImageNet-C's) at a severity 1-5 is applied last, to the
jittered and noisy frame (``corruption=gaussian_noise severity=3``; in a suite, by the name
``gaussian_noise_3``).

Every environment has three random streams of its own, seeded from its emulator seed: one for
the jitter (three draws per game), one for the noise and one for the corruption. Game ``k`` of environment ``i`` thus
gets the same jitter whatever the agent does, so two agents evaluated with the same seeds meet
the same colours (the noise, drawn per frame, depends on how long their games last).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from statistics import NormalDist
from typing import Any

import cv2
import numpy as np

from jepa_rl.envs import corruptions, game_shifts
from jepa_rl.envs.game_shifts import GameShift


@cache
def noise_table(std: float) -> np.ndarray:
    """``rint(std * z)`` for the 65,536 quantiles ``z`` of the standard normal at ``(k + 0.5) / 65536``: int16
    noise by table lookup on uniform uint16 draws."""
    quantiles = np.array([NormalDist().inv_cdf((k + 0.5) / 65536) for k in range(65536)])
    return np.rint(quantiles * std).astype(np.int16)


def jitter_tables(hue_shift: np.float32, sat_scale: np.float32, value_offset: np.float32) -> list[np.ndarray]:
    """Per HSV channel, the jittered value of each uint8 input (OpenCV's hue in [0, 180)): the float32 shift,
    scale and offset, rounded and clipped, computed once for the 256 inputs rather than for every pixel."""
    levels = np.arange(256, dtype=np.float32)
    hue = np.mod(levels + hue_shift * 180.0, 180.0)
    tables = (np.clip(np.rint(t), 0, high) for t, high in ((hue, 179), (levels * sat_scale, 255)))
    return [*tables, np.clip(np.rint(levels + value_offset), 0, 255)]


class VisualPerturbation:
    """Per-episode colour jitter plus per-frame Gaussian noise on RGB uint8 frames.

    Example:
        >>> p = VisualPerturbation(name="noise", noise_std=10.0)
        >>> p.bind(seeds=[11, 12])
        >>> frames = np.zeros((2, 210, 160, 3), dtype=np.uint8)
        >>> p.new_episode(np.array([True, True]))
        >>> p(frames).shape
        (2, 210, 160, 3)
    """

    def __init__(
        self,
        name: str = "clean",
        hue: float = 0.0,
        saturation: float = 0.0,
        brightness: float = 0.0,
        noise_std: float = 0.0,
        corruption: str | None = None,
        severity: int = 0,
        recolour: str | None = None,
        mode: int | None = None,
        difficulty: int | None = None,
    ) -> None:
        for key, value, high in (
            ("hue", hue, 0.5),
            ("saturation", saturation, 1.0),
            ("brightness", brightness, 1.0),
            ("noise_std", noise_std, 255.0),
        ):
            if not 0.0 <= float(value) <= high:
                raise ValueError(
                    f"perturbation {name!r}: {key}={value} is out of range; set {key} to a value in [0, {high:g}]"
                )
        if corruption is not None:
            try:
                corruptions.check(corruption, severity)
            except ValueError as e:
                raise ValueError(f"perturbation {name!r}: {e}") from None
        self.name = name
        self.hue, self.saturation, self.brightness = float(hue), float(saturation), float(brightness)
        self.noise_std = float(noise_std)
        self.corruption, self.severity = corruption, int(severity) if corruption else 0
        self.game_shift = GameShift(recolour, mode, difficulty)  # the emulator's part: checked with the game
        self.bind(seeds=[0])

    @property
    def has_jitter(self) -> bool:
        return self.hue > 0 or self.saturation > 0 or self.brightness > 0

    @property
    def is_identity(self) -> bool:
        return self.is_pixel_identity and not self.game_shift.active

    @property
    def is_pixel_identity(self) -> bool:
        """Nothing is done to the emulator's frames (a game shift may still change the game)."""
        return not self.has_jitter and self.noise_std == 0 and self.corruption is None

    def bind(self, seeds: Sequence[int]) -> None:
        """One environment per seed: size the per-game parameters and seed each one's two streams."""
        self.jitter_rngs = [np.random.default_rng([int(seed), 1]) for seed in seeds]
        self.noise_rngs = [np.random.default_rng([int(seed), 2]) for seed in seeds]
        self.corruption_rngs = [np.random.default_rng([int(seed), 3]) for seed in seeds]
        self.hue_shift = np.zeros(len(seeds), dtype=np.float32)  # fraction of the hue circle
        self.sat_scale = np.ones(len(seeds), dtype=np.float32)
        self.value_offset = np.zeros(len(seeds), dtype=np.float32)  # 0-255 units

    def new_episode(self, mask: np.ndarray) -> None:
        """Draw fresh jitter parameters for the environments where ``mask`` is True."""
        if not self.has_jitter:
            return
        for i in np.flatnonzero(mask):
            hue, sat, value = self.jitter_rngs[i].uniform(-1.0, 1.0, 3)
            self.hue_shift[i] = hue * self.hue
            self.sat_scale[i] = 1 + sat * self.saturation
            self.value_offset[i] = value * self.brightness * 255

    def __call__(self, frames: np.ndarray, envs: Sequence[int] | None = None) -> np.ndarray:
        """Perturb a batch of RGB frames ``[N, H, W, 3]`` uint8 (returns a new array or ``frames``): those of
        the bound environments ``envs`` (default: all of them, in order), each with its own parameters and streams."""
        if self.is_pixel_identity:
            return frames
        envs = range(len(frames)) if envs is None else [int(i) for i in envs]
        if self.has_jitter:
            frames = self._jitter(frames, envs)
        if self.noise_std > 0:
            table, noisy = noise_table(self.noise_std), frames.astype(np.int16)
            for i, out in zip(envs, noisy, strict=True):
                out += table[self.noise_rngs[i].integers(0, 65536, out.shape, dtype=np.uint16)]
            frames = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
        if self.corruption is not None:
            family, severity, rngs = self.corruption, self.severity, self.corruption_rngs
            pairs = zip(envs, frames, strict=True)
            frames = np.stack([corruptions.corrupt(f, family, severity, rngs[i]) for i, f in pairs])
        return frames

    def _jitter(self, frames: np.ndarray, envs: Sequence[int]) -> np.ndarray:
        # OpenCV's uint8 HSV (hue in [0, 180), saturation and value in [0, 255]), converted as one image (the
        # conversion is per pixel); each environment's shift, scale and offset applied by table lookup.
        n, height, width, _ = frames.shape
        hsv = cv2.cvtColor(np.ascontiguousarray(frames).reshape(n * height, width, 3), cv2.COLOR_RGB2HSV)
        hsv = hsv.reshape(frames.shape)
        for row, i in enumerate(envs):
            tables = jitter_tables(self.hue_shift[i], self.sat_scale[i], self.value_offset[i])
            cv2.LUT(hsv[row], np.stack(tables, -1).astype(np.uint8)[:, None], dst=hsv[row])
        rgb = cv2.cvtColor(hsv.reshape(n * height, width, 3), cv2.COLOR_HSV2RGB)
        return rgb.reshape(frames.shape)

    def copy(self) -> VisualPerturbation:
        """The same settings, unbound (a pipeline binds its own environments' streams)."""
        return VisualPerturbation(**self.params())

    def params(self) -> dict[str, float | str]:
        """The settings that define this perturbation (cache keys use them)."""
        return {
            "name": self.name,
            "hue": self.hue,
            "saturation": self.saturation,
            "brightness": self.brightness,
            "noise_std": self.noise_std,
            "corruption": self.corruption,
            "severity": self.severity,
            **{k: v for k, v in vars(self.game_shift).items() if v is not None},
        }

    def __repr__(self) -> str:
        return "VisualPerturbation(" + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"


def suite_config(perturbations: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The config of the perturbation ``name`` of a suite: an entry of ``perturbations`` (the named
    ones); ``<family>_<severity>``, a corruption family of ``corruptions.FAMILIES`` at a severity
    on the clean frame (``gaussian_noise_3``); or a shift of the game itself (``game_shifts``):
    ``recolour_<name>`` (``recolour_paddle_red``), ``mode_<n>``, ``difficulty_<n>``."""
    if name in perturbations:
        return perturbations[name]
    node = {"_target_": f"{__name__}.VisualPerturbation", "name": name}
    corruption = corruptions.parse_corruption(name)
    if corruption:
        return {**node, "corruption": corruption[0], "severity": corruption[1]}
    shift = game_shifts.parse_shift(name)
    if shift:
        return {**node, **shift}
    raise ValueError(
        f"unknown perturbation '{name}'; choose from {', '.join(perturbations)}, a corruption "
        f"<family>_<severity 1-5> of {', '.join(corruptions.FAMILIES)} (e.g. gaussian_noise_3), "
        "recolour_<name>, mode_<n> or difficulty_<n>"
    )
