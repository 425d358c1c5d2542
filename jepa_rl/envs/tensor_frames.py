"""The observation pipeline's frame work as batched torch ops, for a pipeline whose frames live on a GPU.

``pipeline.AtariPipeline`` turns each emulator RGB frame into the agent's observation: perturbation, grayscale,
84x84 area resize, frame stack. Its OpenCV path does this on the host, frame by frame in the main thread.
This module does the same work on whole batches of frames on a torch device, reproducing OpenCV's
arithmetic so that both paths give the same observations (tested: at most one gray level apart):

- grayscale: OpenCV's fixed-point BT.601 weights (``(4899 R + 9617 G + 1868 B + 2**13) >> 14``);
- ``INTER_AREA`` from 210x160 to 84x84: a fixed linear map, applied as two small matrix products whose
  entries are the area each source pixel shares with each output pixel (``area_weights``);
- colour jitter: OpenCV's 8-bit RGB -> HSV (its fixed-point division tables), the same shift, scale
  and offset as ``perturbations.VisualPerturbation``, and OpenCV's HSV -> RGB;
- Gaussian noise: drawn on the device from a generator per environment, seeded from the environment's
  seed, so its statistics match the OpenCV path's but not its values;
- corruption families (``corruptions``) stay on the host: a perturbation with one runs there whole,
  and only grayscale, resize and stack run on the device.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from jepa_rl.envs.perturbations import VisualPerturbation

FRAME_SIZE = 84
HSV_SHIFT = 12  # OpenCV's fixed-point precision for 8-bit HSV
SECTORS = ((0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2))  # (r, g, b) taken from (v, p, q, t)


def area_weights(src: int, dst: int) -> np.ndarray:
    """``[dst, src]`` weights of an area resize along one axis: each output pixel averages the source
    interval ``[i * src / dst, (i + 1) * src / dst)``, each source pixel weighted by the length it shares
    with that interval (OpenCV's ``INTER_AREA`` when shrinking)."""
    scale = src / dst
    edges = np.arange(dst + 1) * scale
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(src)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0, None)
    return overlap / scale


@cache
def resize_matrices(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The row map ``[84, height]`` and the transposed column map ``[width, 84]`` of the area resize, in
    float32 as OpenCV computes it (float64 would round more of the exact halves the other way than
    OpenCV does; docs/pipeline.md has the count). TF32 matmuls, off by default in torch, must stay off."""
    rows = torch.from_numpy(area_weights(height, FRAME_SIZE)).float().to(device)
    cols = torch.from_numpy(area_weights(width, FRAME_SIZE).T).float().contiguous().to(device)
    return rows, cols


def to_gray(frames: torch.Tensor) -> torch.Tensor:
    """RGB uint8 ``[..., 3]`` -> gray uint8 ``[...]``, with OpenCV's integer weights and rounding."""
    x = frames.to(torch.int32)
    return ((x[..., 0] * 9798 + x[..., 1] * 19235 + x[..., 2] * 3735 + (1 << 14)) >> 15).to(torch.uint8)


def to_gray84(frames: torch.Tensor) -> torch.Tensor:
    """RGB uint8 ``[N, H, W, 3]`` -> gray ``[N, 84, 84]`` uint8: grayscale, then the area resize."""
    rows, cols = resize_matrices(frames.shape[1], frames.shape[2], frames.device)
    resized = rows @ to_gray(frames).float() @ cols  # [84, H] @ [N, H, W] @ [W, 84]
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def _fixed_point(numerator: int, denominators: torch.Tensor) -> torch.Tensor:
    """``round(numerator / d)`` for each ``d`` (0 where ``d`` is 0): OpenCV's HSV division tables."""
    d = denominators.double()
    table = torch.where(d > 0, torch.round(numerator / d.clamp(min=1)), torch.zeros_like(d))
    return table.to(torch.int64)


def rgb_to_hsv(frames: torch.Tensor) -> torch.Tensor:
    """RGB uint8 ``[..., 3]`` -> OpenCV's 8-bit HSV (hue in [0, 180), saturation and value in [0, 255]), int64."""
    x = frames.to(torch.int64)
    r, g, b = x.unbind(-1)
    v, vmin = x.max(-1).values, x.min(-1).values
    diff = v - vmin
    half = 1 << (HSV_SHIFT - 1)
    s = (diff * _fixed_point(255 << HSV_SHIFT, v) + half) >> HSV_SHIFT
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _fixed_point(180 << HSV_SHIFT, 6 * diff) + half) >> HSV_SHIFT
    h = torch.where(h < 0, h + 180, h)
    return torch.stack((h, s, v), -1)


@cache
def sector_table(device: torch.device) -> torch.Tensor:
    """``SECTORS`` on ``device``, made once (not a host-to-device copy per frame batch)."""
    return torch.tensor(SECTORS, device=device)


def _one_minus(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - a * b`` rounded once to float32, as OpenCV's build computes it (a fused multiply-add)."""
    return (1 - a.double() * b.double()).float()


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """OpenCV's 8-bit HSV ``[..., 3]`` -> RGB uint8, with the float32 arithmetic of OpenCV's vectorised
    path: fused ``1 - s * f`` terms and truncation to uint8 (tested equal on every 8-bit HSV value)."""
    h, s, v = hsv.float().unbind(-1)
    h, s, v = h * (6.0 / 180.0), s * (1.0 / 255.0), v * (1.0 / 255.0)
    sector = h.trunc()
    f = h - sector
    table = torch.stack((v, v * (1 - s), v * _one_minus(s, f), v * _one_minus(s, 1 - f)), -1)
    index = sector_table(hsv.device)[sector.long() % 6]
    return (table.gather(-1, index) * 255).trunc_().clamp_(0, 255).to(torch.uint8)


def jitter(
    frames: torch.Tensor, hue_shift: torch.Tensor, sat_scale: torch.Tensor, value_offset: torch.Tensor
) -> torch.Tensor:
    """``VisualPerturbation``'s colour jitter on RGB uint8 ``[N, H, W, 3]``, environment ``i`` shifted by
    ``hue_shift[i]`` (fraction of the circle), its saturation scaled by ``sat_scale[i]`` and its value
    offset by ``value_offset[i]`` (0-255 units), in OpenCV's 8-bit HSV as the host path does it."""
    h, s, v = rgb_to_hsv(frames).float().unbind(-1)
    h = torch.remainder(h + (hue_shift * 180.0)[:, None, None], 180.0)
    s = s * sat_scale[:, None, None]
    v = v + value_offset[:, None, None]
    hsv = torch.stack((h.round().clamp(0, 179), s.round().clamp(0, 255), v.round().clamp(0, 255)), -1)
    return hsv_to_rgb(hsv)


class TensorFrames:
    """The frame stack of a pipeline's ``N`` environments on ``device``, fed with the emulator's RGB frames.

    The perturbation's per-game jitter is drawn on the host from the same streams as the OpenCV path
    (the same colours for the same seeds); its noise is drawn on the device, from a generator per
    environment. A perturbation with a corruption family is applied on the host, whole.
    """

    def __init__(
        self, perturbation: VisualPerturbation, seeds: np.ndarray, frame_stack: int, device: str | torch.device
    ) -> None:
        self.perturbation, self.device = perturbation, torch.device(device)
        self.stack = torch.zeros((len(seeds), frame_stack, FRAME_SIZE, FRAME_SIZE), dtype=torch.uint8, device=device)
        self.generators = []
        for seed in seeds:  # environment i's noise stream, like the host's default_rng([seed, 2])
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(np.random.SeedSequence([int(seed), 2]).generate_state(1)[0]))
            self.generators.append(generator)

    def perturb(self, frames: np.ndarray) -> torch.Tensor:
        """The perturbed RGB frames ``[N, H, W, 3]`` on the device."""
        p = self.perturbation
        if p.corruption is not None:
            return torch.from_numpy(p(frames)).to(self.device)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        if p.has_jitter:
            params = (torch.from_numpy(a).to(self.device) for a in (p.hue_shift, p.sat_scale, p.value_offset))
            x = jitter(x, *params)
        if p.noise_std > 0:
            shape = x.shape[1:]
            noise = torch.stack([torch.randn(shape, generator=g, device=self.device) for g in self.generators])
            x = (x.float() + noise * p.noise_std).round_().clamp_(0, 255).to(torch.uint8)
        return x

    def push(self, frames: np.ndarray, fresh: np.ndarray, watched: np.ndarray | None = None) -> None:
        """Perturb, gray, resize and push ``frames``; environments in ``fresh`` start a game (new jitter,
        a stack repeating the first frame). The stack is a new tensor each step: observations handed
        out earlier stay as they were. ``watched`` is not used: on a device, every environment's frame work
        is one batched op, and skipping some would cost a gather."""
        self.perturbation.new_episode(fresh)
        gray = to_gray84(self.perturb(frames))[:, None]
        pushed = torch.cat((self.stack[:, 1:], gray), 1)
        restart = torch.from_numpy(np.asarray(fresh)).to(self.device)[:, None, None, None]
        self.stack = torch.where(restart, gray.expand_as(pushed), pushed)

    def observation(self) -> torch.Tensor:
        return self.stack
