"""Progress without a terminal: a line with the count, rate and ETA on a schedule, and the phase's time."""

import logging

from jepa_rl.runtime.progress import Progress, duration


def test_durations_read_as_hours_minutes_or_seconds():
    assert [duration(s) for s in (0, 42.4, 185, 3725)] == ["0s", "42s", "3m05s", "1h02m"]


def test_without_a_terminal_a_phase_logs_its_rate_and_eta_then_its_time(caplog, monkeypatch):
    clock = iter(float(t) for t in (0, 10, 25, 30, 30, 31))  # start, two updates, the report, its rate, close
    monkeypatch.setattr("jepa_rl.runtime.progress.time.monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="jepa_rl.runtime.progress"):
        progress = Progress("train", 100, "steps", every=20)
        progress.update(10)  # t=10: not yet due
        progress.update(40, note="return 1.5")  # t=25: due
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "train: 50/100 steps (50%), 1.7 steps/s, ETA 30s  return 1.5"
    assert lines[1] == "train: 50 steps in 31s" and len(lines) == 2


def test_a_phase_asked_for_its_first_report_gives_its_eta_after_one_update(caplog, monkeypatch):
    clock = iter(float(t) for t in (0, 2, 2, 2, 4))  # start; the update, its report and rate; a later update
    monkeypatch.setattr("jepa_rl.runtime.progress.time.monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="jepa_rl.runtime.progress"):
        progress = Progress("pretrain jepa", 40, "steps", first=True)
        progress.update()
        progress.update()  # t=4: not due for 20 s
    assert [r.getMessage() for r in caplog.records] == ["pretrain jepa: 1/40 steps (2%), 0.5 steps/s, ETA 1m18s"]
