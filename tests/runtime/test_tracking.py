"""One tracker session per stage: a real (offline) W&B run, finished, and marked failed when the stage fails."""

import time

import pytest

from jepa_rl.runtime.tracking import tracker_session
from jepa_rl.runtime.wandb_history import records


@pytest.fixture(autouse=True)
def own_wandb_service():
    """W&B's service started here is stopped after the test (later tests' jobs must not attach to it)."""
    yield
    import wandb

    wandb.teardown()


def session(tmp_path, run_id: str):
    settings = dict(backend="wandb", project="jepa-rl-test", entity=None, mode="offline", group="g", name="n")
    return tracker_session(**settings, tags=[], config={}, run_dir=tmp_path, run_id=run_id)


def exit_codes(tmp_path, run_id: str, timeout: float = 30.0) -> list[int]:
    """The exit codes recorded in a run's offline file (W&B's service may write its last block just after
    ``finish`` returns: wait for it)."""
    deadline = time.monotonic() + timeout
    while True:
        paths = list(tmp_path.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
        codes = [r.exit.exit_code for p in paths for r in records(p) if r.HasField("exit")]
        if codes or time.monotonic() > deadline:
            return codes
        time.sleep(0.2)


def test_a_failing_stage_marks_its_run_failed(tmp_path):
    with session(tmp_path, "ok") as tracker:
        tracker.log({"x": 1.0}, step=1)
    assert exit_codes(tmp_path, "ok") == [0]
    with pytest.raises(RuntimeError, match="boom"), session(tmp_path, "bad") as tracker:
        tracker.log({"x": 1.0}, step=1)
        raise RuntimeError("boom")
    assert exit_codes(tmp_path, "bad") == [1]
    assert tracker.run is None  # finished once, not twice


def test_no_backend_is_a_tracker_that_records_nothing(tmp_path):
    with tracker_session(
        backend="none", project="p", entity=None, mode=None, group=None, name=None, tags=[], config={},
        run_dir=tmp_path, run_id="x",
    ) as tracker:  # fmt: skip
        tracker.log({"x": 1.0}, step=1)
    assert not (tmp_path / "wandb").exists()
