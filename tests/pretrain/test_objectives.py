"""The self-supervised objectives on real frames: patch order, loss shapes and gradients, the EMA target."""

from dataclasses import replace

import pytest
import torch
from helpers import cnn, compose_cfg, played_frames, vit

from jepa_rl.pretrain.loop import mask_config
from jepa_rl.pretrain.masks import sample_masks
from jepa_rl.pretrain.objectives import (
    STANDARDISE_FLOOR,
    WHITEN_FLOOR,
    make_pretrainer,
    patchify,
    standardised_targets,
    variance_covariance,
    whitened,
)


@pytest.fixture(scope="module")
def frames():
    return played_frames(16)


def test_patchify_matches_the_vit_patch_order():
    encoder = vit()
    obs = torch.rand(2, 4, 84, 84)
    conv = encoder.patch_embed(obs).flatten(2).transpose(1, 2)  # [B, 49, D]
    linear = patchify(obs, 12) @ encoder.patch_embed.weight.flatten(1).T + encoder.patch_embed.bias
    assert torch.allclose(conv, linear, atol=1e-5)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_loss_shapes_and_gradients(frames, jepa_settings, jepa_net, objective):
    model = make_pretrainer(jepa_net, objective, "tokens", jepa_settings)
    context_idx, target_idx = sample_masks(8, mask_config(jepa_settings.masks, 7), torch.Generator().manual_seed(0))
    loss, context = model.loss(torch.from_numpy(frames[:8]), context_idx, target_idx)
    assert loss.ndim == 0 and context.shape == (8, context_idx.shape[1], 192)
    loss.backward()
    assert model.encoder.patch_embed.weight.grad is not None and model.predictor.head.weight.grad is not None
    # Both objectives keep an EMA target encoder (it only moves by EMA), and RL gets it.
    assert all(p.grad is None and not p.requires_grad for p in model.target_encoder.parameters())
    assert model.pretrained_encoder() is model.target_encoder


def test_ema_moves_the_target_towards_the_encoder(jepa_settings, jepa_net):
    model = make_pretrainer(jepa_net, "jepa", "tokens", jepa_settings)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.target_encoder.parameters()]
    model.update_target(0.9)
    for b, t, e in zip(before, model.target_encoder.parameters(), model.encoder.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * e, atol=1e-6)


def test_an_unknown_objective_or_target_is_refused(jepa_settings, jepa_net):
    with pytest.raises(ValueError, match="objective=mae"):
        make_pretrainer(jepa_net, "mae", "tokens", jepa_settings)
    with pytest.raises(ValueError, match="target=pixels"):
        make_pretrainer(jepa_net, "jepa", "pixels", jepa_settings)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_the_nature_cnn_is_pretrained_on_the_cells_of_its_last_map(frames, jepa_settings, objective):
    """The same masks on the 7x7 conv3 map; the context sees only its patches' pixels."""
    model = make_pretrainer(compose_cfg([]).encoders.cnn.net, objective, "tokens", jepa_settings)
    context_idx, target_idx = sample_masks(8, mask_config(jepa_settings.masks, 7), torch.Generator().manual_seed(0))
    loss, context = model.loss(torch.from_numpy(frames[:8]), context_idx, target_idx)
    assert loss.ndim == 0 and context.shape == (8, context_idx.shape[1], 64)
    loss.backward()
    assert model.encoder.net[0].weight.grad is not None and model.target_encoder.net[0].weight.grad is None


def test_the_cnn_context_sees_nothing_of_the_patches_it_does_not_keep():
    encoder, obs = cnn(), torch.from_numpy(played_frames(2))
    keep = torch.tensor([[0, 1, 2, 7, 8, 9], [40, 41, 46, 47, 48, 39]])
    changed = obs.clone()
    changed[..., 36:, :36] = 255 - changed[..., 36:, :36]  # patches (3..6, 0..2): none of them kept
    changed[1, ..., :24, :] = 0  # sample 1 keeps nothing in rows 0-1
    assert torch.equal(encoder.tokens(obs, keep), encoder.tokens(changed, keep))
    assert encoder.tokens(obs).shape == (2, 49, 64)
    assert torch.allclose(encoder.tokens(obs).transpose(1, 2).flatten(1), encoder(obs), atol=1e-6)


def test_a_conv3_cells_receptive_field_is_the_36_pixel_square_its_value_depends_on():
    """The gradient of cell (r, c) of the conv3 map is non-zero inside [8r, 8r + 36) x [8c, 8c + 36) only, and
    reaches its every edge: the computed field is the cell's, neither smaller nor larger."""
    torch.manual_seed(0)
    encoder = cnn()
    assert encoder.receptive_field() == (36, 8)
    for cell in (0, 24, 48, 13):
        obs = torch.rand(1, 4, 84, 84, requires_grad=True)
        maps = encoder.net[:-1](obs * 255)  # tokens' scaling is 1/255: the same dependence
        maps[0, :, cell // 7, cell % 7].sum().backward()
        depends = obs.grad[0].abs().sum(0) > 0  # [84, 84]
        field = encoder.receptive_fields(torch.tensor([[cell]]), 84)[0]
        rows, cols = depends.any(1).nonzero()[:, 0], depends.any(0).nonzero()[:, 0]
        assert not (depends & ~field).any()
        r, c = cell // 7 * 8, cell % 7 * 8
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (r, r + 35, c, c + 35)
        assert field[r : r + 36, c : c + 36].all() and int(field.sum()) == 36 * 36  # that square, nothing more


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_the_cnn_context_never_sees_a_pixel_its_targets_are_computed_from(frames, jepa_settings, objective):
    """Changing every pixel inside the target cells' receptive fields leaves the context tokens, and so the
    predictions, as they were: the context cannot copy what the targets see. Without hiding them, the kept
    cells' 12x12 patches overlap those fields and the context changes."""
    model = make_pretrainer(compose_cfg([]).encoders.cnn.net, objective, "tokens", jepa_settings)
    context_idx, target_idx = sample_masks(8, mask_config(jepa_settings.masks, 7), torch.Generator().manual_seed(1))
    obs = torch.from_numpy(frames[:8])
    fields = model.encoder.receptive_fields(target_idx.flatten(1), 84)[:, None]  # [B, 1, 84, 84]
    changed = torch.where(fields, 255 - obs, obs)
    with torch.no_grad():
        pred, context = model.predict(obs, context_idx, target_idx)
        pred_changed, context_changed = model.predict(changed, context_idx, target_idx)
        leaky, leaky_changed = (model.encoder.tokens(o, keep=context_idx) for o in (obs, changed))
    assert torch.equal(context, context_changed) and torch.equal(pred, pred_changed)
    assert not torch.equal(leaky, leaky_changed)


def test_autoencoder_targets_are_each_patch_standardised_unless_raw_is_asked(frames, jepa_settings, jepa_net):
    obs = torch.from_numpy(frames[:8])
    normalised = make_pretrainer(jepa_net, "ae", "tokens", jepa_settings).targets(obs)  # [8, 49, 576]
    varied = normalised.std(-1) > 0.5  # patches that are not one flat colour
    assert varied.any() and torch.allclose(normalised.mean(-1)[varied], torch.zeros(()), atol=1e-4)
    assert torch.allclose(normalised.std(-1, unbiased=False)[varied], torch.ones(()), atol=1e-2)
    raw = make_pretrainer(jepa_net, "ae", "tokens", replace(jepa_settings, norm_pix=False)).targets(obs)
    assert torch.equal(raw, patchify(obs.float() / 255, 12))


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_residual_targets_hold_no_position_mean(frames, jepa_settings, jepa_net, objective):
    model = make_pretrainer(jepa_net, objective, "residual", jepa_settings)
    targets = model.targets(torch.from_numpy(frames[:16]))
    assert torch.allclose(targets.mean(0), torch.zeros(()), atol=1e-4)  # each position's mean removed
    assert targets.square().mean().item() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_standardised_targets_give_every_varying_feature_unit_scale(frames, jepa_settings, jepa_net, objective):
    model = make_pretrainer(jepa_net, objective, "tokens", jepa_settings)
    obs = torch.from_numpy(frames[:16])
    raw = model.targets(obs).var(0, unbiased=False)
    model.target = "standardised"
    out = model.targets(obs)
    var = out.var(0, unbiased=False)
    assert torch.allclose(out.mean(0), torch.zeros(()), atol=1e-3)
    assert var.max() <= 1 + 1e-4 and var[raw >= raw.mean()].min() > 0.98  # each at its own scale, at most 1


def test_standardising_scales_each_position_and_feature_by_its_own_spread_above_a_floor():
    gen = torch.Generator().manual_seed(0)
    signal = torch.randn(4096, 3, 1, generator=gen)
    # three positions of one feature: the paddle row's wide swings, the ball's narrow ones, a static wall
    targets = signal * torch.tensor([10.0, 1.0, 1e-2]).reshape(1, 3, 1)
    raw = targets.var(0, unbiased=False).flatten()
    expected = raw / (raw + STANDARDISE_FLOOR * raw.mean())
    assert torch.allclose(standardised_targets(targets).var(0, unbiased=False).flatten(), expected, rtol=1e-3)
    assert expected[1] > 0.7 and expected[2] < 0.01  # residual's one RMS: 0.03 and 3e-6


def test_whitening_gives_each_direction_of_the_content_its_own_scale_above_a_floor():
    gen = torch.Generator().manual_seed(0)
    rotation = torch.linalg.qr(torch.randn(4, 4, generator=gen))[0]
    spread = torch.tensor([10.0, 3.0, 1.0, 1e-2])  # a dominant direction, two weaker ones, one near-null
    layout = 5 * torch.randn(1, 3, 4, generator=gen)  # each position's own mean
    targets = (torch.randn(2048, 3, 4, generator=gen) * spread) @ rotation + layout
    out = whitened(targets)
    assert torch.allclose(out.mean(0), torch.zeros(()), atol=1e-5)
    flat = out.flatten(0, 1)
    variances = torch.linalg.eigvalsh(flat.T @ flat / len(flat)).flip(0)
    raw = spread.square() * (1 + 1 / 2048)  # the samples' spread, closely
    expected = raw / (raw + WHITEN_FLOOR * raw.mean())
    assert torch.allclose(variances, expected, rtol=0.1)  # 0.97, 0.77, 0.27 and 4e-5: the weak ones lifted
    assert torch.allclose(flat.T @ flat / len(flat), (rotation.T * expected) @ rotation, atol=0.05)


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_whitened_targets_are_whitened_frames(frames, jepa_settings, jepa_net, objective):
    model = make_pretrainer(jepa_net, objective, "tokens", jepa_settings)
    obs = torch.from_numpy(frames[:16])
    raw = model.targets(obs)
    model.target = "whitened"
    assert torch.allclose(model.targets(obs), whitened(raw), atol=1e-5)


def test_the_variance_covariance_terms_vanish_only_for_varied_decorrelated_features():
    gen = torch.Generator().manual_seed(0)
    varied = 2 * torch.randn(4096, 8, generator=gen)  # std 2 in every dimension, nearly uncorrelated
    assert variance_covariance(varied) < 0.01
    assert variance_covariance(0.1 * varied).item() == pytest.approx(0.8, abs=0.01)  # the std hinge alone
    one_direction = varied[:, :1].expand(-1, 8)  # collapsed: every dimension the same
    assert variance_covariance(one_direction).item() == pytest.approx(56 * 16 / 8 / 25, rel=0.1)


def test_vc_weight_adds_the_terms_of_the_pooled_context_to_the_loss(frames, jepa_settings, jepa_net):
    obs = torch.from_numpy(frames[:8])
    masks = sample_masks(8, mask_config(jepa_settings.masks, 7), torch.Generator().manual_seed(0))
    losses = []
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        losses.append(
            make_pretrainer(jepa_net, "jepa", "residual", replace(jepa_settings, vc_weight=weight)).loss(obs, *masks)
        )
    (plain, context), (weighted, _) = losses
    assert torch.allclose(weighted, plain + 0.5 * variance_covariance(context.mean(1)))
