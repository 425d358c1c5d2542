"""The self-supervised objectives on real frames: patch order, loss shapes and gradients, the EMA target."""

import pytest
import torch
from helpers import compose_cfg, played_frames, vit

from jepa_rl.masks import sample_masks
from jepa_rl.objectives import make_pretrainer, patchify
from jepa_rl.pretraining import mask_config


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
    model = make_pretrainer(jepa_net, objective, jepa_settings.predictor)
    context_idx, target_idx = sample_masks(8, mask_config(jepa_settings.masks, 7), torch.Generator().manual_seed(0))
    loss, context = model.loss(torch.from_numpy(frames[:8]), context_idx, target_idx)
    assert loss.ndim == 0 and context.shape == (8, context_idx.shape[1], 192)
    loss.backward()
    assert model.encoder.patch_embed.weight.grad is not None and model.predictor.head.weight.grad is not None
    if objective == "jepa":  # the target encoder only moves by EMA
        assert all(p.grad is None and not p.requires_grad for p in model.target_encoder.parameters())
    assert model.pretrained_encoder() is (model.target_encoder if objective == "jepa" else model.encoder)


def test_ema_moves_the_target_towards_the_encoder(jepa_settings, jepa_net):
    model = make_pretrainer(jepa_net, "jepa", jepa_settings.predictor)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.target_encoder.parameters()]
    model.update_target(0.9)
    for b, t, e in zip(before, model.target_encoder.parameters(), model.encoder.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * e, atol=1e-6)


def test_an_unknown_objective_or_a_net_other_than_the_vit_is_refused(jepa_settings, jepa_net):
    with pytest.raises(ValueError, match="objective=mae"):
        make_pretrainer(jepa_net, "mae", jepa_settings.predictor)
    with pytest.raises(ValueError, match="NatureCNN"):
        make_pretrainer(compose_cfg(["encoder=cnn"]).encoder.net, "jepa", jepa_settings.predictor)
