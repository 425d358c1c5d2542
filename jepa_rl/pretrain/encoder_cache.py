"""Pretrained encoders as cached artifacts: collect frames, pretrain, store ``encoder.pt``.

A train job with ``encoder=jepa`` (or ``ae``) asks for its encoder here: the first job of a sweep
collects the frames and pretrains (each once, under a lock); every later job, and every other PPO
seed with the same ``pretrain`` settings, loads the cached weights.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepa_rl.models.agent import Agent
from jepa_rl.models.feature_standardisation import FeatureNorm, feature_statistics
from jepa_rl.pretrain.frame_sets import cached_frames, later_rows, load_frames
from jepa_rl.pretrain.loop import pretrain
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.ranges import ConfigError
from jepa_rl.runtime.artifact_cache import cached_artifact, file_sha256, spec_key
from jepa_rl.runtime.json_files import write_json
from jepa_rl.runtime.tracking import tracker_session

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"
STATS_FILE = "statistics.pt"  # a feature_statistics artifact
DIAGNOSTICS_FILE = "diagnostics.json"  # diagnostics.pretrainer_diagnostics of the finished encoder
# Settings that came after encoders were first cached. At these defaults they stay out of an
# encoder's key (and its recorded settings), so that the encoders cached before them keep theirs.
LATER_DEFAULTS = {"horizon": 0, "pos_scale": 1.0, "vc_weight": 0.0}
# Largest bf16 error of frozen features, as a share of their spread across frames, that training accepts.
BF16_TOLERANCE = 0.05


@dataclass(frozen=True)
class EncoderSource:
    """Where a job's pretrained encoders come from: the cache, the game's frames and pretraining's settings."""

    cache_dir: Path
    env: dict[str, Any]  # the env group, plain values
    pretrain: PretrainSettings
    bf16: bool  # the resolved pretraining precision
    device: torch.device
    threads: int
    logger: dict[str, Any]  # tracker settings (the pretraining run gets its own group, name and tags)

    def frames(self) -> Path:
        """The cached clean frame set ``pretrain.frames`` describes (collected if absent)."""
        return cached_frames(self.cache_dir, self.env, self.pretrain.frames, threads=self.threads)

    def feature_statistics(
        self, encoder: torch.nn.Module, weights: Path | None, device: torch.device, measure_bf16: bool
    ) -> dict[str, Any]:
        """``feature_standardisation.feature_statistics`` of ``encoder`` on the pretraining frames. For weights
        read from a file (a cached encoder, or a user's), they are measured once, with the bf16 error whatever
        ``measure_bf16`` says (the frozen and fine-tuned agents of one encoder share them), and cached,
        keyed by the file's content."""
        frames_dir = self.frames()

        def measure(bf16: bool) -> dict[str, Any]:
            return feature_statistics(encoder, load_frames(frames_dir)["frames"], device, bf16)

        if weights is None:  # a random init: its statistics belong to this job alone
            return measure(measure_bf16)
        spec = {"weights_sha256": file_sha256(Path(weights)), "frames": frames_dir.name, "device": device.type}
        path = cached_artifact(
            self.cache_dir, "feature_statistics", spec, lambda tmp: torch.save(measure(True), tmp / STATS_FILE)
        )
        return torch.load(path / STATS_FILE, weights_only=True)

    def weights(
        self,
        net: dict[str, Any],
        objective: str | None,
        target: str,
        weights: str | None,
        log_dir: Path,
        horizon: int = 0,
    ) -> Path | None:
        """The weights an encoder starts from: ``weights``, else its pretrained ones, else None (scratch)."""
        if weights:
            return Path(weights)
        if objective:
            return self.encoder(net, objective, target, log_dir, horizon)
        return None

    def encoder(self, net: dict[str, Any], objective: str, target: str, log_dir: Path, horizon: int = 0) -> Path:
        """Path of the pretrained ``encoder.pt`` of ``net`` under ``objective``, ``target`` and ``horizon``
        (``encoder.*``), built if absent.

        The pretraining is logged to its own W&B run (group ``pretrain-<env>-<objective>``, files under ``log_dir``).
        """
        frames_dir = self.frames()
        settings = {k: v for k, v in dataclasses.asdict(self.pretrain).items() if k not in ("frames", "log_every")}
        # The precision it runs in, not the setting: `auto` is bf16 on one machine and float32 on another.
        settings["autocast"] = "bf16" if self.bf16 else "float32"
        settings["target"] = target  # among the settings, where it was before it became the encoder's
        settings = without_later_defaults({**settings, "horizon": horizon})
        net_key = without_later_defaults(net)
        spec = {"objective": objective, "net": net_key, "pretrain": settings, "frames": frames_dir.name}
        partial = self.cache_dir / "encoders" / f".{spec_key(spec)}.partial.pt"

        def build(tmp: Path) -> None:
            data = load_frames(frames_dir)
            later = successors(data, horizon)
            tracking = {
                **self.logger,
                "group": f"pretrain-{self.env['name']}-{objective}",
                "name": f"{objective}-pretrain-seed{self.pretrain.seed}",
                "tags": [f"env:{self.env['name']}", f"objective:{objective}", "pretrain"],
            }
            config = {
                "env": self.env,
                "encoder": {"net": net, "objective": objective, "target": target, "horizon": horizon},
                "pretrain": settings,
            }
            with tracker_session(**tracking, config=config, run_dir=log_dir, run_id=f"pretrain-{spec_key(spec)}") as t:
                # The partial checkpoint lives outside tmp: a killed build's progress survives it.
                state, rows, diagnostics = pretrain(
                    data["frames"],
                    net,
                    objective,
                    target,
                    self.pretrain,
                    self.device,
                    self.bf16,
                    log_fn=t.log,
                    checkpoint=partial,
                    later=later,
                )
                t.summary({**rows[-1], **{f"pretrain/{k}": v for k, v in diagnostics.items()}})
            torch.save(state, tmp / ENCODER_FILE)
            write_history(rows, tmp / "history.csv")
            write_json(diagnostics, tmp / DIAGNOSTICS_FILE)

        path = cached_artifact(self.cache_dir, "encoders", spec, build)
        partial.unlink(missing_ok=True)  # only once the finished encoder is in place
        return path / ENCODER_FILE


def without_later_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` less the ``LATER_DEFAULTS`` settings that are at their defaults."""
    return {k: v for k, v in values.items() if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}


def successors(data: dict[str, np.ndarray], horizon: int) -> np.ndarray | None:
    """``frame_sets.later_rows`` of a frame set's arrays (None for ``horizon=0``); a set in which no
    game lasts ``horizon`` kept frames is a config error, raised before any pretraining."""
    if not horizon:
        return None
    later = later_rows(data["episode"], data["step"], horizon)
    if not (later >= 0).any():
        raise ConfigError(
            f"encoder.horizon={horizon}: no game of the pretraining frames lasts {horizon} more kept frames; "
            "lower encoder.horizon or raise pretrain.frames.num_frames"
        )
    return later


def write_history(rows: list[dict[str, float]], path: Path) -> None:
    """The pretraining log rows as CSV."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows ``write_history`` wrote."""
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def standardise_features(
    agent: Agent, source: EncoderSource, frozen: bool, weights: Path | None
) -> dict[str, Any] | None:
    """Set the statistics of a standardising agent from the pretraining frames (cached with ``weights``);
    returns what was measured (None when the agent does not standardise). A frozen encoder whose bf16
    features differ from its float32 ones by more than ``BF16_TOLERANCE`` of their spread runs in float32."""
    if not isinstance(agent.norm, FeatureNorm):
        return None
    measure = frozen and agent.autocast == "bf16"
    stats = dict(source.feature_statistics(agent.encoder, weights, next(agent.parameters()).device, measure))
    agent.norm.set_statistics(stats.pop("mean"), stats.pop("std"))
    if measure and stats["bf16_error_over_spread"] > BF16_TOLERANCE:
        agent.autocast = "none"
    stats["encoder_precision"] = "bf16" if agent.autocast == "bf16" else "float32"
    log.info("features standardised on %d frames; the encoder runs in %s", stats["frames"], stats["encoder_precision"])
    return stats
