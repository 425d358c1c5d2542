"""Observation encoders: ``[B, 4, 84, 84]`` uint8 frames -> ``[B, feature_dim]`` features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from jepa_rl.models.transformer import TransformerBlock, apply_masks, init_like_ijepa, position_embedding
from jepa_rl.ranges import require_positive


def layer_init(layer: nn.Module, std: float = float(np.sqrt(2)), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights and constant bias, as in CleanRL's PPO."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def scale_pixels(obs: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 pixels -> [0, 1], cast straight to the autocast dtype when one is active.

    bf16 holds every integer 0-255 exactly; skipping the float32 intermediate saves a full
    pass over the batch (docs/performance.md's implementation notes give its share of an update).
    ``memory_format`` is applied in the same pass.
    """
    device = obs.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
    return obs.to(dtype, memory_format=memory_format).mul_(1.0 / 255.0)


class NatureCNN(nn.Module):
    """The convolutions of the DQN Nature CNN (Mnih et al. 2015) as CleanRL's ppo_atari builds them.

    Its features are the flattened ``64 x 7 x 7`` maps; the trained ``3136 -> 512`` layer that ends
    CleanRL's network is the agent's trunk (``heads.PolicyHeads``), as it is for every encoder.
    ``tokens`` gives the 49 cells of the last map ``[B, 49, 64]``, for the masked objectives: they mask
    the same 7x7 grid as the ViT's, as the pixels of its 12x12 patches.
    """

    grid = 7  # the conv3 map (84 -> 20 -> 9 -> 7), and the masks' grid
    patch_size = 12  # the pixels a mask cell stands for (84 / 7)
    token_dim = 64  # channels of a cell
    pos_embed_kind = "sincos"  # of its JEPA predictor (the convolutions have no position embedding)

    def __init__(self, *, in_channels: int) -> None:
        super().__init__()
        require_positive(in_channels=in_channels)
        self.in_channels, self.feature_dim = in_channels, 64 * 7 * 7
        self.net = nn.Sequential(
            layer_init(nn.Conv2d(in_channels, 32, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # oneDNN's float32 CPU convolutions are faster on channels-last input, its bf16 ones are not
        # (measured in docs/performance.md's implementation notes).
        fp32_cpu = obs.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        return self.net(scale_pixels(obs, torch.channels_last if fp32_cpu else torch.contiguous_format))

    def receptive_field(self) -> tuple[int, int]:
        """``(size, stride)`` in pixels of a conv3 cell's receptive field: cell ``(r, c)`` depends on the
        pixels ``[r * stride, r * stride + size)`` x ``[c * stride, c * stride + size)`` (36 and 8)."""
        size, stride = 1, 1
        for conv in (m for m in self.net if isinstance(m, nn.Conv2d)):
            size += (conv.kernel_size[0] - 1) * stride
            stride *= conv.stride[0]
        return size, stride

    def receptive_fields(self, cells: torch.Tensor, side: int) -> torch.Tensor:
        """``[B, side, side]``: the pixels inside the receptive field of any of ``cells`` (``[B, M]`` indices)."""
        size, stride = self.receptive_field()
        pixels = torch.arange(side, device=cells.device)
        start_rows, start_cols = (cells // self.grid) * stride, (cells % self.grid) * stride  # [B, M]
        rows = (pixels >= start_rows[..., None]) & (pixels < start_rows[..., None] + size)  # [B, M, side]
        cols = (pixels >= start_cols[..., None]) & (pixels < start_cols[..., None] + size)
        return (rows[..., :, None] & cols[..., None, :]).any(1)

    def tokens(
        self, obs: torch.Tensor, keep: torch.Tensor | None = None, hide: torch.Tensor | None = None
    ) -> torch.Tensor:
        """uint8 frames ``[B, C, 84, 84]`` -> the conv3 cells ``[B, 49, 64]`` (row-major).

        ``keep`` (``[B, K]`` cell indices): the network sees only the pixels of those cells' 12x12
        patches (the rest are black) and returns only those cells ``[B, K, 64]``. ``hide`` (``[B, M]``
        cell indices, the targets): every pixel inside those cells' receptive fields is black too. A
        cell's receptive field (36x36 pixels) is far wider than its 12x12 patch, so without it the
        kept cells would see pixels the hidden cells are computed from.
        """
        if keep is not None:
            seen = torch.zeros(len(obs), self.num_patches, dtype=torch.bool, device=obs.device).scatter_(1, keep, True)
            seen = seen.reshape(-1, self.grid, self.grid).repeat_interleave(self.patch_size, 1)
            seen = seen.repeat_interleave(self.patch_size, 2)
            if hide is not None:
                seen = seen & ~self.receptive_fields(hide, obs.shape[-1])
            obs = obs * seen[:, None]
        maps = self.net[:-1](scale_pixels(obs))  # [B, 64, 7, 7]
        cells = maps.flatten(2).transpose(1, 2)
        return cells if keep is None else apply_masks(cells, keep)


class ViTEncoder(nn.Module):
    """ViT-Tiny for 84x84 frame stacks: 12x12 patches -> 7x7 tokens of width 192, 3 heads, 4 layers.

    Fixed 2-D sin-cos position embeddings (``pos_embed=learned``: trained ones), times ``pos_scale``,
    and I-JEPA's initialisation (``transformer.init_like_ijepa``). I-JEPA's standardised images put
    content and position on similar scales at the first block; frames scaled to [0, 1] with
    trunc-normal(0.02) patch weights give content a variance far below the sin-cos positions';
    ``pos_scale`` < 1 narrows the gap (docs/pretraining.md: what that does to pretraining).

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
        pos_embed: str,
        pos_scale: float,
    ) -> None:
        super().__init__()
        require_positive(
            in_channels=in_channels, image_size=image_size, patch_size=patch_size, depth=depth, pos_scale=pos_scale
        )
        if image_size % patch_size:
            divisors = ", ".join(str(d) for d in range(1, image_size + 1) if image_size % d == 0)
            raise ValueError(f"patch_size={patch_size} must divide image_size={image_size}; choose one of {divisors}")
        if pool not in ("mean", "attention"):
            raise ValueError(f"pool={pool} must be mean or attention")
        self.grid, self.patch_size, self.in_channels = image_size // patch_size, patch_size, in_channels
        self.feature_dim = self.token_dim = width
        self.pool, self.pos_embed_kind = pool, pos_embed
        self.patch_embed = nn.Conv2d(in_channels, width, patch_size, stride=patch_size)
        position_embedding(self, pos_embed, self.grid, width, pos_scale)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        if pool == "attention":
            self.query = nn.Parameter(torch.zeros(1, 1, width))
            self.pool_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        init_like_ijepa(self, self.blocks)

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


NETS = {"NatureCNN": NatureCNN, "ViTEncoder": ViTEncoder}  # encoder.net's _target_ names one (add yours here)


def make_net(net: Mapping[str, Any]) -> NatureCNN | ViTEncoder:
    """The network ``encoder.net`` describes: the class its ``_target_`` names, by the last part of the
    path (a checkpoint from before the packages moved names it by its old path), built from its other keys."""
    target = str(net.get("_target_", ""))
    kind = target.rsplit(".", 1)[-1]
    if kind not in NETS:
        raise ValueError(f"_target_={target} is not an encoder network; use one of {', '.join(NETS)}")
    return NETS[kind](**{k: v for k, v in net.items() if k != "_target_"})
