"""Fixtures shared by every test tier (the helpers themselves are in ``helpers.py``)."""

from __future__ import annotations

import sys

# The test install skips byte-compiling (pip --no-compile: most of its time goes to compiling modules no
# test imports). Each module a test imports is compiled once, here, even where PYTHONDONTWRITEBYTECODE
# is set, so that the suite's dozens of processes do not each compile torch again.
sys.dont_write_bytecode = False

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import TINY, compose_cfg, pretrain_settings  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process tests run small problems, one test per core (pytest-xdist): a second torch thread only adds
    synchronisation, which on a busy machine costs more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture(scope="module")
def jepa_settings():
    """The configured ``pretrain`` group (``PretrainSettings``) of encoder=jepa."""
    return pretrain_settings(["encoder=jepa"])


@pytest.fixture(scope="module")
def jepa_net():
    """``encoder.net`` of encoder=jepa (the ViT-Tiny)."""
    return compose_cfg(["encoder=jepa"]).encoder.net
