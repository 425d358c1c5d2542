"""Pretrained encoders through launch.py: pretraining runs once per config and is reused from the cache;
jepa / ae agents train frozen and fine-tuned from it; stage=pretrain runs alone."""

import json

import pytest
from helpers import TINY, TINY_PRETRAIN, launch

pytestmark = pytest.mark.slow

FINE_TUNE = ["encoder.freeze=false", "encoder.lr_scale=0.1"]


# The autoencoder here; JEPA agents train from one cached encoder in tests/sweep/test_callback.py's grid.
@pytest.mark.parametrize("objective", ["ae"])
def test_pretrained_agents_train_frozen_and_fine_tuned_from_one_cached_encoder(tmp_path, objective):
    common = [*TINY, *TINY_PRETRAIN, f"encoder={objective}", "encoder.net.depth=1", "logger=none"]
    # Games capped at 500 agent steps: a fine-tuned ViT acts at a few steps a second on a CPU.
    common += ["eval.suite=[clean,hard]", "env.max_frames=2000"]
    frozen = launch([*common, "hydra.run.dir=frozen"], tmp_path)
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    assert "building frames" in frozen.stdout and "building encoders" in frozen.stdout
    # One update and one game: a fine-tuned ViT trains at a tenth of a frozen one's speed on a CPU.
    tuned = launch(
        [*common, *FINE_TUNE, "ppo.total_timesteps=256", "eval.suite=[clean]", "hydra.run.dir=tuned"], tmp_path
    )
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    assert "building" not in tuned.stdout and "reusing cached encoders" in tuned.stdout  # the cache is reused
    a = json.loads((tmp_path / "frozen" / "results.json").read_text())
    b = json.loads((tmp_path / "tuned" / "results.json").read_text())
    assert (
        a["encoder"] == b["encoder"] == objective
        and list(a["eval"]) == ["clean", "hard"]
        and list(b["eval"]) == ["clean"]
    )
    assert a["encoder_weights"] == b["encoder_weights"] and a["encoder_weights"].endswith("encoder.pt")
    assert len(list((tmp_path / "cache" / "encoders").glob("*/encoder.pt"))) == 1
    # The standardisation of the cached encoder, measured on the 64 pretraining frames, is cached with it.
    assert a["feature_statistics"]["frames"] == b["feature_statistics"]["frames"] == 64
    assert list((tmp_path / "cache" / "feature_statistics").glob("*/statistics.pt"))


def test_pretrain_stage_rebuilds_a_corrupt_cached_encoder(tmp_path):
    args = [*TINY_PRETRAIN, "stage=pretrain", "encoder=ae", "encoder.net.depth=1", "logger=wandb", "threads=1"]
    args.append("hydra.run.dir=pre")
    first = launch(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((tmp_path / "pre" / "pretrain.json").read_text())
    assert summary["objective"] == "ae" and summary["target"] == "residual" and len(summary["history"]) == 2
    logged = {"pretrain/loss", "pretrain/lr", "pretrain/ema_momentum", "pretrain/ema_initial_share"}
    assert logged | {"pretrain/feature_std"} <= set(summary["history"][0])
    diagnostics = {"model_loss", "oracle_loss", "content_share", "effective_rank", "weight_distance"}
    assert set(summary["diagnostics"]) == diagnostics
    assert "the kept encoder will still be" in first.stdout  # 2 steps at ema_start 0.996
    assert list((tmp_path / "pre" / "wandb").glob("offline-run-*"))  # logged to its own W&B run
    weights = tmp_path / summary["encoder_weights"]
    weights.write_bytes(weights.read_bytes()[:100])  # truncated behind the cache's back
    again = launch([*args, "logger=none"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is corrupt" in again.stdout and "building encoders" in again.stdout
    assert "building frames" not in again.stdout
    tokens = launch([*args, "logger=none", "encoder.target=tokens", "hydra.run.dir=tokens"], tmp_path)
    assert tokens.returncode == 0, tokens.stderr[-3000:]
    assert "building encoders" in tokens.stdout  # the target is part of the cached encoder's key
    later = launch([*args, "logger=none", "encoder.horizon=2", "hydra.run.dir=later"], tmp_path)
    assert later.returncode == 0, later.stderr[-3000:]
    assert "building encoders" in later.stdout  # and so is the horizon
    assert json.loads((tmp_path / "later" / "pretrain.json").read_text())["horizon"] == 2
    # The default position scale and vc_weight keep the keys of the encoders cached before them.
    spec = json.loads((weights.parent / "spec.json").read_text())
    assert "pos_scale" not in spec["net"] and "vc_weight" not in spec["pretrain"]
    scaled = launch([*args, "logger=none", "encoder.net.pos_scale=0.5", "hydra.run.dir=scaled"], tmp_path)
    assert scaled.returncode == 0, scaled.stderr[-3000:]
    assert "building encoders" in scaled.stdout  # another position scale is another encoder
