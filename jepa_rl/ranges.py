"""The range checks every schema and component shares: one line naming the value and what it must be."""

from __future__ import annotations


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def require_positive(**values: float) -> None:
    """Raise ``ValueError`` naming the first of ``values`` that is not positive (every component's check)."""
    for name, value in values.items():
        _require(value > 0, f"{name}={value} must be positive")


def _positive(owner: object, *names: str) -> None:
    require_positive(**{name: getattr(owner, name) for name in names})
