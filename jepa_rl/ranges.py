"""The range checks every schema and component shares: one line naming the value and what it must be."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


def require(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok``."""
    if not ok:
        raise ValueError(message)


def require_positive(**values: float) -> None:
    """Raise ``ValueError`` naming the first of ``values`` that is not positive (every component's check)."""
    for name, value in values.items():
        require(value > 0, f"{name}={value} must be positive")


def require_positive_fields(owner: object, *names: str) -> None:
    """``require_positive`` of the attributes ``names`` of ``owner`` (a settings dataclass)."""
    require_positive(**{name: getattr(owner, name) for name in names})
