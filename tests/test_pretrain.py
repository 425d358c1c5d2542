"""JEPA and autoencoder pretraining on real frames: shapes, EMA, losses that fall, weight loading."""

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from omegaconf import OmegaConf

from jepa_rl.agent import build_encoder, load_encoder_weights
from jepa_rl.checkpoint import CheckpointError
from jepa_rl.encoders import ViTEncoder
from jepa_rl.envs import AtariPipeline
from jepa_rl.frames import collect
from jepa_rl.masks import sample_masks
from jepa_rl.pretrain import make_adamw, make_pretrainer, mask_config, patchify, pretrain, set_schedules, uses_bf16


@pytest.fixture(scope="module")
def frames():
    envs = AtariPipeline("breakout", 4, seed=0, record_ram=True, num_threads=1)
    data = collect(envs, num_frames=128, keep_every=2, seed=0)
    envs.close()
    return data["frames"]


def settings(**overrides):
    cfg = OmegaConf.to_container(compose_cfg(["encoder=jepa"]).pretrain, resolve=True)
    return {**cfg, **overrides}


def test_patchify_matches_the_vit_patch_order():
    vit = ViTEncoder()
    obs = torch.rand(2, 4, 84, 84)
    conv = vit.patch_embed(obs).flatten(2).transpose(1, 2)  # [B, 49, D]
    linear = patchify(obs, 12) @ vit.patch_embed.weight.flatten(1).T + vit.patch_embed.bias
    assert torch.allclose(conv, linear, atol=1e-5)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_loss_shapes_and_gradients(frames, objective):
    cfg = settings()
    model = make_pretrainer(compose_cfg(["encoder=jepa"]).encoder.net, objective, cfg)
    context_idx, target_idx = sample_masks(8, mask_config(cfg["masks"], 7), torch.Generator().manual_seed(0))
    loss, context = model.loss(torch.from_numpy(frames[:8]), context_idx, target_idx)
    assert loss.ndim == 0 and context.shape == (8, context_idx.shape[1], 192)
    loss.backward()
    assert model.encoder.patch_embed.weight.grad is not None and model.predictor.head.weight.grad is not None
    if objective == "jepa":  # the target encoder only moves by EMA
        assert all(p.grad is None and not p.requires_grad for p in model.target_encoder.parameters())


def test_ema_moves_the_target_towards_the_encoder():
    cfg = settings()
    model = make_pretrainer(compose_cfg(["encoder=jepa"]).encoder.net, "jepa", cfg)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.target_encoder.parameters()]
    model.update_target(0.9)
    for b, t, e in zip(before, model.target_encoder.parameters(), model.encoder.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * e, atol=1e-6)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_loss_falls_within_a_handful_of_steps(frames, objective):
    torch.set_num_threads(2)
    cfg = settings(epochs=3, batch_size=32, lr=1e-3, start_lr=1e-3, warmup=0.0, log_every=1, autocast="none")
    net = compose_cfg(["encoder=jepa"]).encoder.net
    state, rows = pretrain(frames, net, objective, cfg, torch.device("cpu"))
    losses = [r["pretrain/loss"] for r in rows]
    assert len(losses) == 3 * 4
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert rows[-1]["pretrain/feature_std"] > 1e-3  # not collapsed
    assert set(state) == set(ViTEncoder().state_dict())


def test_pretraining_is_seeded(frames):
    cfg = settings(epochs=1, batch_size=64, log_every=1, autocast="none")
    net = compose_cfg(["encoder=jepa"]).encoder.net
    a, _ = pretrain(frames, net, "jepa", cfg, torch.device("cpu"))
    b, _ = pretrain(frames, net, "jepa", cfg, torch.device("cpu"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weights_of_another_architecture_name_the_shapes(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save(ViTEncoder(width=96, heads=3).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"pos_embed is \[1, 49, 96\] in the file but \[1, 49, 192\]"):
        load_encoder_weights(ViTEncoder(), path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_encoder_weights(ViTEncoder(), path)


def test_loaded_weights_are_used_and_frozen(tmp_path):
    source = ViTEncoder()
    torch.save(source.state_dict(), tmp_path / "encoder.pt")
    encoder = build_encoder(compose_cfg(["encoder=jepa"]).encoder, tmp_path / "encoder.pt")
    for a, b in zip(source.state_dict().values(), encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in encoder.parameters())


def test_killed_pretraining_resumes_to_the_same_weights(frames, tmp_path):
    cfg = settings(epochs=2, batch_size=32, log_every=1, autocast="none")  # 8 steps
    net = compose_cfg(["encoder=jepa"]).encoder.net
    uninterrupted, rows = pretrain(frames, net, "jepa", cfg, torch.device("cpu"))

    def kill_at_step_6(row, step):
        if step == 6:
            raise KeyboardInterrupt

    partial = tmp_path / "partial.pt"
    with pytest.raises(KeyboardInterrupt):
        pretrain(
            frames, net, "jepa", cfg, torch.device("cpu"), log_fn=kill_at_step_6, checkpoint=partial, checkpoint_every=4
        )
    assert partial.exists()
    resumed, resumed_rows = pretrain(
        frames, net, "jepa", cfg, torch.device("cpu"), checkpoint=partial, checkpoint_every=4
    )
    assert [r["pretrain/step"] for r in resumed_rows] == list(range(1, 9))
    for k in uninterrupted:
        assert torch.allclose(uninterrupted[k], resumed[k], atol=1e-6), k
    assert [r["pretrain/loss"] for r in resumed_rows] == pytest.approx([r["pretrain/loss"] for r in rows], rel=1e-5)


def test_autocast_auto_is_bf16_only_on_a_cpu_that_computes_it(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert uses_bf16("auto", cpu) is native and not uses_bf16("auto", cuda)
    assert uses_bf16("bf16", cuda) and uses_bf16("bf16", cpu) and not uses_bf16("none", cpu)


def test_weight_decay_schedule_reaches_the_decayed_group_even_from_zero():
    """The decayed group is found by its tag, so a schedule starting at 0 still rises to its end value."""
    cfg = OmegaConf.to_container(compose_cfg([]).pretrain, resolve=True)
    cfg.update(weight_decay=0.0, final_weight_decay=0.4)
    model = make_pretrainer({"_target_": "jepa_rl.encoders.ViTEncoder", "depth": 1}, "jepa", cfg)
    optimizer = make_adamw(model)
    decays = []
    for step in (0, 50, 99):
        set_schedules(optimizer, cfg, step, total=100)
        decays.append([group["weight_decay"] for group in optimizer.param_groups])
    assert decays[0] == [0.0, 0.0] and decays[-1][0] == pytest.approx(0.4, rel=1e-3) and decays[-1][1] == 0.0
    assert 0 < decays[1][0] < 0.4
