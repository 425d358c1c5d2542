"""Observation encoders: ``[B, 4, 84, 84]`` uint8 frames -> ``[B, feature_dim]`` features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from jepa_rl.config.checks import require_positive
from jepa_rl.masks import apply_masks


def layer_init(layer: nn.Module, std: float = float(np.sqrt(2)), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights and constant bias, as in CleanRL's PPO."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def scale_pixels(obs: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 pixels -> [0, 1], cast straight to the autocast dtype when one is active.

    bf16 holds every integer 0-255 exactly; skipping the float32 intermediate saves a full
    pass over the batch (the README's implementation notes give its share of an update).
    ``memory_format`` is applied in the same pass.
    """
    device = obs.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
    return obs.to(dtype, memory_format=memory_format).mul_(1.0 / 255.0)


class NatureCNN(nn.Module):
    """The convolutions of the DQN Nature CNN (Mnih et al. 2015) as CleanRL's ppo_atari builds them.

    Its features are the flattened ``64 x 7 x 7`` maps; the trained ``3136 -> 512`` layer that ends
    CleanRL's network is the agent's trunk (``heads.PolicyHeads``), as it is for every encoder.
    """

    def __init__(self, *, in_channels: int) -> None:
        super().__init__()
        require_positive(in_channels=in_channels)
        self.feature_dim = 64 * 7 * 7
        self.net = nn.Sequential(
            layer_init(nn.Conv2d(in_channels, 32, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # oneDNN's float32 CPU convolutions are faster on channels-last input, its bf16 ones are not
        # (measured in the README's implementation notes).
        fp32_cpu = obs.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        return self.net(scale_pixels(obs, torch.channels_last if fp32_cpu else torch.contiguous_format))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``; shapes ``[B, N, D]``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        require_positive(width=dim, heads=heads, mlp_ratio=mlp_ratio)
        if dim % heads:
            raise ValueError(f"heads={heads} must divide the width {dim}; choose a divisor of {dim}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, H, N, D/H]
        x = x + self.proj(attn.transpose(1, 2).reshape(B, N, D))
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """ViT-Tiny for 84x84 frame stacks: 12x12 patches -> 7x7 tokens of width 192, 3 heads, 4 layers.

    ``tokens`` gives the patch tokens ``[B, 49, D]`` (what self-supervised objectives use);
    ``forward`` pools them into ``[B, D]`` RL features: the mean over patches, or a learned
    attention pooling (one trained query). There is no CLS token: an untrained CLS projection
    carries no information about the frame.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        image_size: int,
        patch_size: int,
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        pool: str,
    ) -> None:
        super().__init__()
        require_positive(in_channels=in_channels, image_size=image_size, patch_size=patch_size, depth=depth)
        if image_size % patch_size:
            divisors = ", ".join(str(d) for d in range(1, image_size + 1) if image_size % d == 0)
            raise ValueError(f"patch_size={patch_size} must divide image_size={image_size}; choose one of {divisors}")
        if pool not in ("mean", "attention"):
            raise ValueError(f"pool={pool} must be mean or attention")
        self.grid = image_size // patch_size
        self.feature_dim, self.pool = width, pool
        self.patch_embed = nn.Conv2d(in_channels, width, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        if pool == "attention":
            self.query = nn.Parameter(torch.zeros(1, 1, width))
            self.pool_attn = nn.MultiheadAttention(width, heads, batch_first=True)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def tokens(self, obs: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames ``[B, C, 84, 84]`` -> normalised patch tokens ``[B, N, D]``.

        ``keep`` (``[B, K]`` patch indices) encodes only those patches, as masked objectives need.
        """
        x = self.patch_embed(scale_pixels(obs)).flatten(2).transpose(1, 2) + self.pos_embed  # [B, N, D]
        if keep is not None:
            x = apply_masks(x, keep)  # [B, K, D]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.tokens(obs)
        if self.pool == "mean":
            return x.mean(1)
        pooled, _ = self.pool_attn(self.query.expand(len(x), -1, -1), x, x)
        return pooled.squeeze(1)
