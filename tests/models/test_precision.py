"""The one precision function of PPO and pretraining."""

import pytest
import torch

from jepa_rl.models.precision import native_bf16, precision


def test_one_precision_function_for_ppo_and_pretraining():
    cpu = torch.device("cpu")
    native = "bf16" if native_bf16(cpu) else "none"
    assert precision("auto", cpu) == precision("auto", cpu, auto_on_gpu=False) == native
    assert precision("none", cpu) == "none"
    assert precision("bf16", cpu) == "bf16"  # asked for: given (with a warning where it is emulated)
    with pytest.raises(ValueError, match="autocast=fp16 must be auto, none or bf16"):
        precision("fp16", cpu)
