"""Progress of a long phase of a job: a bar on a terminal, else a log line with its rate and ETA.

Every loop that can run for minutes (training, pretraining, frame collection, evaluation games, random
play, the invariance pass) reports through ``Progress``, so that a job in a batch system (SLURM, nohup,
CI), whose stderr is a file, is never silent for more than ``EVERY`` seconds.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)

EVERY = 20.0  # seconds between log lines without a terminal: under the 30 s a reader waits before worrying


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """``done`` of ``total`` ``unit`` of the phase ``label``; ``update`` adds to it, ``note`` sets its extra text."""

    def __init__(
        self, label: str, total: int, unit: str, initial: int = 0, every: float = EVERY, first: bool = False
    ) -> None:
        """``first``: log after the first update too, so that the phase's expected duration is known at once."""
        self.label, self.total, self.unit, self.every, self.first = label, total, unit, every, first
        self.done = self.initial = initial
        self.extra = ""
        self.started = self.reported = time.monotonic()
        terminal = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, unit=unit, desc=label, disable=not terminal, dynamic_ncols=True)

    def update(self, n: int = 1, note: str | None = None) -> None:
        """Count ``n`` more; on a schedule, log where the phase stands."""
        self.done += n
        self.bar.update(n)
        if note is not None:
            self.note(note)
        if self.bar.disable and (self.first or time.monotonic() - self.reported >= self.every):
            self.first, self.reported = False, time.monotonic()
            log.info("%s", self.line())

    def note(self, text: str) -> None:
        """Extra text shown with the count (a score, a loss)."""
        self.extra = text
        self.bar.set_postfix_str(text, refresh=False)

    def line(self) -> str:
        """``label: done/total unit (pct), rate, ETA``, and the note."""
        elapsed = time.monotonic() - self.started
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = duration(left / rate) if rate > 0 else "unknown"
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        extra = f"  {self.extra}" if self.extra else ""
        return f"{self.label}: {self.done}/{self.total} {self.unit}{share}, {rate:.1f} {self.unit}/s, ETA {eta}{extra}"

    def close(self) -> None:
        """End the bar; log the phase's total time."""
        self.bar.close()
        log.info("%s: %d %s in %s", self.label, self.done, self.unit, duration(time.monotonic() - self.started))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
