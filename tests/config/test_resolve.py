"""The values resolved once per job: threads, precision, env groups, device."""

import pytest
import torch

from jepa_rl.config import ConfigError
from jepa_rl.config.resolve import cpu_count, env_groups, job_threads, pick_device


def test_threads_come_from_the_setting_then_the_launcher():
    assert job_threads(3, {"cpus_per_task": 8}) == 3
    assert job_threads(0, {"cpus_per_task": 8}) == 8  # submitit
    assert job_threads(0, {"n_jobs": 2}) == max(1, cpu_count() // 2)  # joblib shares the CPUs
    assert job_threads(0, {"n_jobs": -1}) == 1  # one worker per CPU
    assert job_threads(0, {}) == cpu_count()


def test_env_groups_auto_is_two_only_for_the_cnn_with_two_threads():
    assert env_groups("auto", "cnn", 8, threads=2) == 2
    assert env_groups("auto", "cnn", 8, threads=1) == 1
    assert env_groups("auto", "jepa", 8, threads=16) == 1
    assert env_groups("auto", "cnn", 3, threads=2) == 1  # an odd count cannot split evenly
    assert env_groups(4, "jepa", 8, threads=1) == 4
    for bad in (3, 0, -2, "two"):
        with pytest.raises(ConfigError, match=f"env_groups={bad} must be auto or a positive number"):
            env_groups(bad, "cnn", 8, threads=2)


def test_devices():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device=tpu is not a device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no CUDA GPU here"):
            pick_device("cuda")
