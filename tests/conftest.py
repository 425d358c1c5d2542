"""Fixtures shared by every test tier (the helpers themselves are in ``helpers.py``)."""

from __future__ import annotations

import pytest
from helpers import TINY


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)
