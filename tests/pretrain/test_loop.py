"""The pretraining loop on real frames: losses that fall, seeded and resumable runs, the schedules, the precision."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import played_frames, vit
from omegaconf import OmegaConf

from jepa_rl.models.precision import precision
from jepa_rl.pretrain.loop import make_adamw, pretrain, set_schedules
from jepa_rl.pretrain.objectives import make_pretrainer
from jepa_rl.pretrain.schedules import ema_initial_share

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frames():
    return played_frames(128)


@pytest.fixture(scope="module")
def one_block_net(jepa_net):
    """The configured ViT with one block: what the loop does (seeds, resumes) does not depend on depth."""
    return OmegaConf.merge(jepa_net, {"depth": 1})


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_loss_falls_within_a_handful_of_steps(frames, jepa_settings, one_block_net, objective):
    cfg = replace(jepa_settings, epochs=3, batch_size=32, lr=1e-3, start_lr=1e-3, warmup=0.0, log_every=1)
    state, rows, diagnostics = pretrain(frames, one_block_net, objective, "tokens", cfg, CPU, bf16=False)
    losses = [r["pretrain/loss"] for r in rows]
    assert len(losses) == 3 * 4
    # Normalised pixels (MAE's norm_pix_loss) start near 1 and fall more slowly than JEPA's features.
    assert np.mean(losses[-3:]) < {"jepa": 0.7, "ae": 0.9}[objective] * np.mean(losses[:3]), losses
    assert diagnostics["model_loss"] > 0 and diagnostics["oracle_loss"] > 0 and 0 < diagnostics["content_share"] < 1
    assert rows[-1]["pretrain/feature_std"] > 1e-3  # not collapsed
    for row in rows:  # the running product of the momenta, as the schedule gives it
        expected = ema_initial_share(int(row["pretrain/step"]), 12, cfg.ema_start, cfg.ema_end)
        assert row["pretrain/ema_initial_share"] == pytest.approx(expected, rel=1e-9)
    assert set(state) == set(vit(depth=1).state_dict())


def test_the_variance_covariance_terms_spread_the_pooled_features(frames, jepa_settings, one_block_net):
    cfg = replace(jepa_settings, epochs=3, batch_size=32, lr=1e-3, start_lr=1e-3, warmup=0.0, log_every=1)
    _, plain, _ = pretrain(frames, one_block_net, "jepa", "residual", cfg, CPU, bf16=False)
    _, spread, _ = pretrain(frames, one_block_net, "jepa", "residual", replace(cfg, vc_weight=1.0), CPU, bf16=False)
    terms = [r["pretrain/variance_covariance"] for r in spread]
    assert "pretrain/variance_covariance" not in plain[-1] and np.mean(terms[-3:]) < terms[0]
    assert spread[-1]["pretrain/feature_std"] > 2 * plain[-1]["pretrain/feature_std"]


def test_a_temporal_target_trains_on_the_frames_that_have_a_later_one(frames, jepa_settings, one_block_net):
    cfg = replace(jepa_settings, epochs=2, batch_size=16, log_every=1)
    later = np.full(len(frames), -1)
    later[:40] = np.arange(1, 41)  # 40 frames have a later one: 2 full batches an epoch
    state, rows, _ = pretrain(frames, one_block_net, "jepa", "tokens", cfg, CPU, bf16=False, later=later)
    assert [r["pretrain/step"] for r in rows] == [1, 2, 3, 4]
    same, _, _ = pretrain(frames, one_block_net, "jepa", "tokens", cfg, CPU, bf16=False, later=np.arange(len(frames)))
    plain, _, _ = pretrain(frames, one_block_net, "jepa", "tokens", cfg, CPU, bf16=False)
    assert not all(torch.equal(state[k], plain[k]) for k in state)
    assert all(torch.equal(same[k], plain[k]) for k in same)  # each frame its own later one: as without


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_pretraining_is_seeded(frames, jepa_settings, one_block_net, objective):
    """The same seed gives the same encoder; another seed another (each PPO seed's own encoder in a sweep)."""
    cfg = replace(jepa_settings, epochs=1, batch_size=32, log_every=1)
    a, _, _ = pretrain(frames, one_block_net, objective, "tokens", cfg, CPU, bf16=False)
    b, _, _ = pretrain(frames, one_block_net, objective, "tokens", cfg, CPU, bf16=False)
    other, _, _ = pretrain(frames, one_block_net, objective, "tokens", replace(cfg, seed=cfg.seed + 1), CPU, False)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["patch_embed.weight"], other["patch_embed.weight"])


def test_killed_pretraining_resumes_to_the_same_weights(frames, jepa_settings, one_block_net, tmp_path):
    cfg = replace(jepa_settings, epochs=1, batch_size=16, log_every=1)  # 8 steps
    uninterrupted, rows, _ = pretrain(frames, one_block_net, "jepa", "tokens", cfg, CPU, bf16=False)

    def kill_at_step_6(row, step):
        if step == 6:
            raise KeyboardInterrupt

    partial = tmp_path / "partial.pt"
    with pytest.raises(KeyboardInterrupt):
        pretrain(
            frames,
            one_block_net,
            "jepa",
            "tokens",
            cfg,
            CPU,
            bf16=False,
            log_fn=kill_at_step_6,
            checkpoint=partial,
            checkpoint_every=4,
        )
    assert partial.exists()
    resumed, resumed_rows, _ = pretrain(
        frames, one_block_net, "jepa", "tokens", cfg, CPU, bf16=False, checkpoint=partial, checkpoint_every=4
    )
    assert [r["pretrain/step"] for r in resumed_rows] == list(range(1, 9))
    for k in uninterrupted:
        assert torch.allclose(uninterrupted[k], resumed[k], atol=1e-6), k
    assert [r["pretrain/loss"] for r in resumed_rows] == pytest.approx([r["pretrain/loss"] for r in rows], rel=1e-5)


def test_autocast_auto_is_bf16_only_on_a_cpu_that_computes_it(monkeypatch):
    """Pretraining's precision: ``auto`` is bf16 on a CPU that computes it natively, never on a GPU."""

    def uses_bf16(autocast: str, device: torch.device) -> bool:
        return precision(autocast, device, auto_on_gpu=False) == "bf16"

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert uses_bf16("auto", cpu) is native and not uses_bf16("auto", cuda)
    assert uses_bf16("bf16", cuda) and uses_bf16("bf16", cpu) and not uses_bf16("none", cpu)
    with pytest.raises(ValueError, match="autocast=float16"):
        precision("float16", cpu, auto_on_gpu=False)


def test_weight_decay_schedule_reaches_the_decayed_group_even_from_zero(jepa_settings, one_block_net):
    """The decayed group is found by its tag, so a schedule starting at 0 still rises to its end value."""
    cfg = replace(jepa_settings, weight_decay=0.0, final_weight_decay=0.4)
    model = make_pretrainer(one_block_net, "jepa", "tokens", cfg)
    optimizer = make_adamw(model)
    decays = []
    for step in (0, 50, 99):
        set_schedules(optimizer, cfg, step, total=100)
        decays.append([group["weight_decay"] for group in optimizer.param_groups])
    assert decays[0] == [0.0, 0.0] and decays[-1][0] == pytest.approx(0.4, rel=1e-3) and decays[-1][1] == 0.0
    assert 0 < decays[1][0] < 0.4
