"""Checkpoint, then let the job be requeued, when the cluster warns that it will stop the job.

SLURM warns a job before a timeout or a preemption with a signal: submitit asks for ``SIGUSR2``
(``--signal=USR2@<signal_delay_s>``) and installs a handler that requeues the job and exits;
a preemption also sends ``SIGTERM``. A training loop cannot write a consistent checkpoint from
inside a signal handler (the signal lands mid-update), so while a loop runs under
:func:`deferred`, the handler only records the signal; the loop checks :func:`pending` at its
next step boundary, writes its checkpoint, and calls :func:`hand_over`, which passes the signal
to whoever handled it before: submitit's handler (requeue, then ``SystemExit``), or the default
action (here an exit with status 128 + signal, so ``finally`` blocks still run). Outside a
deferred loop (collecting frames, evaluating) a signal goes straight to the previous handler:
that work restarts after the requeue. Handlers are chained, never replaced.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)

_previous: dict[int, Any] = {}  # signal -> the handler installed before ours
_pending: int | None = None
_deferring = False


def _handle(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _deferring:
        log.warning("received %s: checkpointing at the end of this step", signal.Signals(signum).name)
        _pending = signum
    else:
        log.warning("received %s: stopping (this stage restarts when the job does)", signal.Signals(signum).name)
        _call_previous(signum, frame)


def _call_previous(signum: int, frame: FrameType | None) -> None:
    previous = _previous.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # submitit: checkpoint the submission, requeue, SystemExit
    elif previous == signal.SIG_DFL:
        raise SystemExit(128 + signum)  # what the default action reports, after finally blocks run
    # SIG_IGN: the signal was ignored before us; keep going


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Install the handlers for the duration of a job (a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _pending
    _pending = None
    for sig in SIGNALS:
        _previous[sig] = signal.signal(sig, _handle)
    try:
        yield
    finally:
        for sig, handler in _previous.items():
            signal.signal(sig, handler)
        _previous.clear()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within this block a signal waits for the loop's next :func:`pending` check."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        if _pending is not None:  # arrived after the loop's last check
            hand_over()


def pending() -> bool:
    """True when a signal arrived: the loop should checkpoint now, then call :func:`hand_over`."""
    return _pending is not None


def hand_over() -> None:
    """Pass the recorded signal to the previous handler (which may requeue and exit)."""
    global _pending
    signum, _pending = _pending, None
    if signum is not None:
        log.warning("checkpoint written; handing %s over", signal.Signals(signum).name)
        _call_previous(signum, None)
