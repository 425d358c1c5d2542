"""The ``auto`` and derived values of a job, resolved once right after validation and passed down.

Stages receive a ``Resolved``, never re-derive these from the config: the device, the threads of
this job (``threads``, else submitit's ``cpus_per_task``, else the CPUs shared among joblib's
``n_jobs``), the precision PPO and pretraining run in, the training env groups, the rollout batch and
where the observation pipeline does its frame work.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from jepa_rl.config import ConfigError
from jepa_rl.config.fingerprint import plain
from jepa_rl.models.precision import precision
from jepa_rl.pretrain.encoder_cache import EncoderSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    """What ``auto`` and the derived settings mean for this job on this machine."""

    device: torch.device
    threads: int  # torch and emulator threads of this job
    ppo_precision: str  # the agent's encoder precision: bf16 | none
    pretrain_precision: str  # pretraining's: bf16 | none
    env_groups: int  # training env groups (see ``env_groups``)
    rollout_batch: int  # ppo.num_envs * ppo.num_steps
    frames_device: str | None  # the torch device of the pipeline's frame work; None: the host's OpenCV path

    def env(self, env_cfg: Any) -> dict[str, Any]:
        """The ``env`` settings every pipeline of this job is built from, with this job's ``frames_device``
        (training, evaluation and frame collection then share one implementation)."""
        env = dict(plain(env_cfg))
        return {**env, "frames_device": self.frames_device} if self.frames_device else env


def pick_device(requested: str) -> torch.device:
    """``auto`` means CUDA when available, else the CPU; a device torch does not know is a ``ConfigError``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as e:
        raise ConfigError(f"device={requested} is not a device; use auto, cpu or cuda") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={requested}, but torch sees no CUDA GPU here; use device=auto or cpu")
    return device


def cpu_count() -> int:
    """The CPUs this process may run on (SLURM's allocation, not the node's count)."""
    return len(os.sched_getaffinity(0))


def job_threads(requested: int, launcher: Mapping[str, Any]) -> int:
    """``requested`` if > 0, else the launcher's ``cpus_per_task`` (submitit), else the CPUs shared
    evenly among joblib's ``n_jobs`` parallel jobs (all of them for a single job)."""
    if requested > 0:
        return requested
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    n = launcher.get("n_jobs") or 1
    parallel = cpu_count() if n <= 0 else int(n)
    return max(1, cpu_count() // max(1, parallel))


def env_groups(setting: Any, encoder: str, num_envs: int, threads: int) -> int:
    """``env_groups``: a divisor of ``num_envs``, or ``auto`` = 2 for the CNN with 2 or more threads, else 1.

    The CNN's forward pass costs less than emulating a step, so one group's emulators can run on one
    core while the policy acts for the other group on another. A ViT's forward pass needs every core,
    and a one-thread job has no second core to overlap onto.
    """
    if setting == "auto":
        return 2 if encoder == "cnn" and num_envs % 2 == 0 and threads >= 2 else 1
    if not (isinstance(setting, int) and not isinstance(setting, bool) and setting > 0 and num_envs % setting == 0):
        raise ConfigError(
            f"env_groups={setting} must be auto or a positive number that divides ppo.num_envs={num_envs}"
        )
    return setting


def frames_device(setting: str, device: torch.device) -> str | None:
    """``pipeline``: ``auto`` is torch ops on a GPU and OpenCV on the host otherwise (the faster of the two
    on each, see docs/pipeline.md); ``torch`` runs them on the job's device, even a CPU."""
    if setting not in ("auto", "opencv", "torch"):
        raise ConfigError(f"pipeline={setting} is not a pipeline; choose auto, opencv or torch")
    if setting == "torch" or (setting == "auto" and device.type == "cuda"):
        return str(device)
    return None


def resolve(cfg: DictConfig, launcher: Mapping[str, Any]) -> Resolved:
    """Every ``auto`` and derived value of the job ``cfg``, launched by ``launcher`` (Hydra's launcher config)."""
    device = pick_device(cfg.device)
    threads = job_threads(cfg.threads, launcher)
    precisions = {}
    for key, auto_on_gpu in (("ppo", True), ("pretrain", False)):
        try:
            precisions[key] = precision(cfg[key].autocast, device, auto_on_gpu)
        except ValueError as e:
            raise ConfigError(f"{key}.{e}") from e
    return Resolved(
        device=device,
        threads=threads,
        ppo_precision=precisions["ppo"],
        pretrain_precision=precisions["pretrain"],
        env_groups=env_groups(cfg.env_groups, cfg.encoder.name, cfg.ppo.num_envs, threads),
        rollout_batch=cfg.ppo.num_envs * cfg.ppo.num_steps,
        frames_device=frames_device(cfg.pipeline, device),
    )


def encoder_source(cfg: DictConfig, res: Resolved) -> EncoderSource:
    """The ``EncoderSource`` of a job (the train, pretrain and probe stages share it)."""
    return EncoderSource(
        cache_dir=Path(cfg.cache_dir),
        env=res.env(cfg.env),
        pretrain=OmegaConf.to_object(cfg.pretrain),
        bf16=res.pretrain_precision == "bf16",
        device=res.device,
        threads=res.threads,
        logger=dataclasses.asdict(OmegaConf.to_object(cfg.logger)),
    )
