"""``launch.py`` jobs forked from one interpreter that has imported torch, Hydra and the emulator already.

Each end-to-end test starts several jobs, and a fresh interpreter spends seconds importing the same
modules before a job does anything: most of the suite's time on two cores. A multiprocessing forkserver
imports them once per test worker and forks each job from there. A job is still its own process, with
its own working directory, environment, standard streams and exit status, and it runs ``launch.py`` as
``__main__``; only the imports are shared. The forkserver has run no torch op when it forks, so no
thread pool is inherited. The stderr-contract tests and the joblib sweep start fresh interpreters
(``helpers.launch(..., fresh=True)``), as do the submitit launcher's workers.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
from pathlib import Path

# What every job imports before it does anything (launch.py, the job, the train stage, the emulator).
PRELOAD = ["torch", "torch._dynamo", "hydra", "omegaconf", "cv2", "gymnasium", "ale_py", "jepa_rl.job"]
PRELOAD += ["jepa_rl.config.command_line", "jepa_rl.stages.train", "jepa_rl.stages.pretrain"]

_context: multiprocessing.context.ForkServerContext | None = None


def context() -> multiprocessing.context.ForkServerContext:
    """This worker's forkserver (started, with ``PRELOAD`` imported, on first use)."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _run(launch_py: str, args: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str) -> None:
    """In the forked job: its directory, environment and streams, then ``launch.py ARGS`` as ``__main__``."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        with open(path, "ab") as f:
            os.dup2(f.fileno(), fd)
    sys.argv = [launch_py, *args]
    runpy.run_path(launch_py, run_name="__main__")  # SystemExit carries the exit status, as in a fresh process


class Job:
    """A forked job with the part of ``subprocess.Popen`` the tests use."""

    def __init__(self, process: multiprocessing.Process) -> None:
        self.process, self.pid = process, process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode  # -N when killed by signal N, as Popen's

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"launch.py (pid {self.pid})", timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)


def start(launch_py: Path, args: list[str], cwd: Path, env: dict[str, str], stdout: Path, stderr: Path) -> Job:
    """Fork ``launch.py ARGS`` in ``cwd`` with environment ``env``, its streams appended to the two files."""
    process = context().Process(target=_run, args=(str(launch_py), args, str(cwd), env, str(stdout), str(stderr)))
    process.start()
    return Job(process)
