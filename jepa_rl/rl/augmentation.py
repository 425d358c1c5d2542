"""Data augmentation of the PPO update's observations, the cheap competitor of a robust encoder.

``random_shift`` is DrQ's (Kostrikov et al. 2020; RAD's translate, Laskin et al. 2020): each frame
stack is padded by ``pad`` pixels, repeating its border, and cropped back to its size at a random
offset, the same offset for the frames of one stack. It is applied to each minibatch of the
update (the rollout acts on the frames as they are), so the policy learns to ignore small shifts.
"""

from __future__ import annotations

import torch

AUGMENTATIONS = ("none", "shift")


def random_shift(obs: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` -> the same, each sample shifted by up to ``pad`` pixels per axis (border repeated).

    Offsets come from torch's global generator (seeded, and saved in checkpoints).
    """
    B, C, H, W = obs.shape
    shifts = torch.randint(-pad, pad + 1, (B, 2)).to(obs.device)
    rows = (torch.arange(H, device=obs.device) + shifts[:, :1]).clamp_(0, H - 1)  # [B, H]
    cols = (torch.arange(W, device=obs.device) + shifts[:, 1:]).clamp_(0, W - 1)  # [B, W]
    out = obs.gather(2, rows[:, None, :, None].expand(B, C, H, W))
    return out.gather(3, cols[:, None, None, :].expand(B, C, H, W))
