"""The precision the networks compute in: bf16 where the hardware has it, float32 elsewhere."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def native_bf16(device: torch.device) -> bool:
    """True where ``device`` computes bf16 convolutions and matmuls in hardware: a CUDA GPU with bf16
    support, or a CPU with AVX512-BF16 or AMX. Elsewhere oneDNN emulates bf16 (docs/performance.md has the cost)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own probes
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def precision(autocast: str, device: torch.device, auto_on_gpu: bool = True) -> str:
    """An ``autocast`` setting on ``device`` -> ``bf16`` or ``none``.

    ``auto`` is bf16 where ``device`` computes it natively; on a GPU only when ``auto_on_gpu``
    (pretraining's small ViT is launch-bound there, and bf16 adds a cast kernel per weight use).
    """
    if autocast not in ("auto", "none", "bf16"):
        raise ValueError(f"autocast={autocast} must be auto, none or bf16")
    if autocast == "auto":
        return "bf16" if native_bf16(device) and (auto_on_gpu or device.type == "cpu") else "none"
    if autocast == "bf16" and device.type == "cpu" and not native_bf16(device):
        log.warning("autocast=bf16 on a CPU without AVX512-BF16 or AMX is emulated and many times slower; use auto")
    return autocast
