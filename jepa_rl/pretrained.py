"""Pretrained encoders as cached artifacts: collect frames, pretrain, store ``encoder.pt``; and ``stage=pretrain``.

A train job with ``encoder=jepa`` (or ``ae``) asks for its encoder here: the first job of a sweep
collects the frames and pretrains (each once, under a lock); every later job, and every other PPO
seed with the same ``pretrain`` settings, loads the cached weights.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from jepa_rl.cache import cached_artifact, spec_key
from jepa_rl.frames import cached_frames, load_frames
from jepa_rl.pretrain import pretrain, uses_bf16
from jepa_rl.tracking import start_tracker
from jepa_rl.utils import write_json

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"


def plain(node: Any) -> Any:
    """A config node as plain resolved containers (JSON-able, hashable into cache keys)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def pretrain_frames(cfg: DictConfig, threads: int) -> Path:
    """The cached clean frame set ``pretrain.frames`` describes (collected if absent)."""
    return cached_frames(Path(cfg.cache_dir), plain(cfg.env), plain(cfg.pretrain.frames), threads=threads)


def pretrained_encoder(
    cfg: DictConfig, encoder_cfg: DictConfig, device: torch.device, threads: int, log_dir: Path
) -> Path:
    """Path of the pretrained ``encoder.pt`` for ``encoder_cfg`` (an encoder with an ``objective``).

    Frames and weights come from the cache; whatever is missing is built here, and the pretraining
    is logged to its own W&B run (group ``pretrain-<env>-<objective>``, files under ``log_dir``).
    """
    frames_dir = pretrain_frames(cfg, threads)
    settings = {k: v for k, v in plain(cfg.pretrain).items() if k not in ("frames", "log_every")}
    # The precision it will run in, not the setting: `auto` is bf16 on one machine and float32 on another.
    settings["autocast"] = "bf16" if uses_bf16(cfg.pretrain.autocast, device) else "float32"
    spec = {
        "objective": encoder_cfg.objective,
        "net": plain(encoder_cfg.net),
        "pretrain": settings,
        "frames": frames_dir.name,
    }

    partial = Path(cfg.cache_dir) / "encoders" / f".{spec_key(spec)}.partial.pt"

    def build(tmp: Path) -> None:
        frames = load_frames(frames_dir)["frames"]
        tracker = start_tracker(
            **{
                **plain(cfg.logger),
                "group": f"pretrain-{cfg.env.name}-{encoder_cfg.objective}",
                "name": f"{encoder_cfg.objective}-pretrain-seed{cfg.pretrain.seed}",
                "tags": [f"env:{cfg.env.name}", f"objective:{encoder_cfg.objective}", "pretrain"],
            },
            config={"env": plain(cfg.env), "encoder": plain(encoder_cfg), "pretrain": plain(cfg.pretrain)},
            run_dir=log_dir,
            run_id=f"pretrain-{spec_key(spec)}",
        )
        try:
            state, rows = pretrain(
                frames,
                encoder_cfg.net,
                encoder_cfg.objective,
                plain(cfg.pretrain),
                device,
                log_fn=tracker.log,
                checkpoint=partial,  # outside tmp: a killed build's progress survives it
            )
            tracker.summary(rows[-1])
        except BaseException:
            tracker.finish(exit_code=1)
            raise
        tracker.finish()
        torch.save(state, tmp / ENCODER_FILE)
        with open(tmp / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    path = cached_artifact(Path(cfg.cache_dir), "encoders", spec, build)
    partial.unlink(missing_ok=True)  # only once the finished encoder is in place
    return path / ENCODER_FILE


def encoder_weights(
    cfg: DictConfig, encoder_cfg: DictConfig, device: torch.device, threads: int, log_dir: Path
) -> Path | None:
    """The weights an encoder starts from: ``encoder.weights``, else its pretrained ones, else None (scratch)."""
    if encoder_cfg.weights:
        return Path(encoder_cfg.weights)
    if encoder_cfg.objective:
        return pretrained_encoder(cfg, encoder_cfg, device, threads, log_dir)
    return None


def pretrain_stage(cfg: DictConfig, out: Path, device: torch.device, threads: int) -> dict[str, Any]:
    """``stage=pretrain``: make sure ``encoder``'s frames and weights are in the cache; write ``pretrain.json``."""
    weights = pretrained_encoder(cfg, cfg.encoder, device, threads, out)
    with open(weights.parent / "history.csv") as f:
        history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    summary = {
        "objective": cfg.encoder.objective,
        "encoder_weights": str(weights),
        "frames": str(pretrain_frames(cfg, threads)),
        "history": history,
    }
    write_json(summary, out / "pretrain.json")
    log.info("pretrained %s encoder: %s", cfg.encoder.objective, weights)
    return summary
