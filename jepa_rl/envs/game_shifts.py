"""Shifts the game itself can make, through the emulator: recolourings and ALE's modes and difficulties.

A **recolouring** writes colour bytes of the game's RAM before every emulator frame, as HackAtari
does (the game rewrites them each frame, so one write per agent step would change nothing
visible). Only the named objects change colour: the game's state, rewards and lives stay those of
the same actions in the original game (tested). A **mode** or **difficulty** is one of the game's
own variants (ALE's "flavours", Machado et al. 2018): another game, as the same agent meets it.

Breakout's colour bytes (from HackAtari): RAM[62] colours the paddle and the ball, RAM[64..69] the
brick rows from bottom to top; the palette values used are 12 (white), 48 (red), 113 (blue),
200 (green). Qbert's RAM[2] colours the sides of the pyramid's cubes (not their tops, whose colour
is the game's progress). It was found by writing each RAM byte before every frame and keeping the
bytes that turn one colour of the screen into one other colour and change nothing else in the RAM,
the rewards or the ends of games; Pong has no such byte (its colours do not come from the RAM).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

WHITE, RED, BLUE, GREEN = 12, 48, 113, 200
_BRICKS = range(64, 70)

RECOLOURINGS: dict[str, dict[str, dict[int, int]]] = {
    "breakout": {
        "paddle_red": {62: RED},
        "paddle_blue": {62: BLUE},
        "paddle_green": {62: GREEN},
        "bricks_red": dict.fromkeys(_BRICKS, RED),
        "bricks_blue": dict.fromkeys(_BRICKS, BLUE),
        "bricks_white": dict.fromkeys(_BRICKS, WHITE),
    },
    "qbert": {
        "sides_red": {2: RED},
        "sides_blue": {2: BLUE},
        "sides_green": {2: GREEN},
    },
}


@dataclass(frozen=True)
class GameShift:
    """What a condition changes in the emulator (all None: nothing)."""

    recolour: str | None = None  # a name of RECOLOURINGS[game]
    mode: int | None = None  # one of the game's modes (ALE's default when None)
    difficulty: int | None = None  # one of the game's difficulties

    @property
    def active(self) -> bool:
        return self.recolour is not None or self.mode is not None or self.difficulty is not None

    @property
    def changes_the_game(self) -> bool:
        """A mode or difficulty: another game, where a random policy scores otherwise."""
        return self.mode is not None or self.difficulty is not None

    def ram_writes(self, game: str) -> dict[int, int]:
        """RAM address -> value, written before every frame."""
        return RECOLOURINGS[game][self.recolour] if self.recolour else {}


def parse_shift(name: str) -> dict[str, str | int] | None:
    """The ``GameShift`` field of a suite name: ``recolour_<name>``, ``mode_<n>`` or ``difficulty_<n>``, else None."""
    kind, _, value = name.partition("_")
    if kind == "recolour" and value:
        return {"recolour": value}
    if kind in ("mode", "difficulty") and value.lstrip("-").isdigit():
        return {kind: int(value)}
    return None


@functools.cache
def variants(game: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The game's ``(modes, difficulties)``, as its ROM declares them to the ALE."""
    from ale_py import ALEInterface, LoggerMode
    from ale_py.roms import get_rom_path

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ale.loadROM(get_rom_path(game))
    return tuple(int(m) for m in ale.getAvailableModes()), tuple(int(d) for d in ale.getAvailableDifficulties())


def check(game: str, shift: GameShift) -> None:
    """A recolouring the game has, and a mode and difficulty it has; a ValueError lists the valid ones."""
    if shift.recolour is not None:
        names = RECOLOURINGS.get(game, {})
        if not names:
            games = ", ".join(RECOLOURINGS)
            raise ValueError(f"recolour={shift.recolour}: {game} has no recolourings (games with some: {games})")
        if shift.recolour not in names:
            raise ValueError(
                f"recolour={shift.recolour} is not a recolouring of {game}; choose one of {', '.join(names)}"
            )
    modes, difficulties = variants(game) if shift.changes_the_game else ((), ())
    if shift.mode is not None and shift.mode not in modes:
        raise ValueError(f"mode={shift.mode} is not a mode of {game}; choose one of {', '.join(map(str, modes))}")
    if shift.difficulty is not None and shift.difficulty not in difficulties:
        valid = ", ".join(map(str, difficulties))
        raise ValueError(f"difficulty={shift.difficulty} is not a difficulty of {game}; choose one of {valid}")
