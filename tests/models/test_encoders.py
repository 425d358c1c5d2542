"""The encoder networks: ViT-Tiny token and feature shapes, position-aware features, geometry checks."""

import pytest
import torch
from helpers import cnn, vit


def frames(batch=3):
    return torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pool", ["mean", "attention"])
def test_vit_tiny_shapes(pool):
    encoder = vit(pool=pool)
    assert encoder.num_patches == 49
    assert encoder.tokens(frames()).shape == (3, 49, 192)
    assert encoder(frames()).shape == (3, 192)
    keep = torch.tensor([[0, 5, 48]] * 3)
    assert encoder.tokens(frames(), keep=keep).shape == (3, 3, 192)


def test_nature_cnn_shapes():
    encoder = cnn()
    assert encoder.feature_dim == 3136 and encoder(frames()).shape == (3, 3136)  # the trunk is the agent's


def test_vit_features_depend_on_where_things_are():
    """Mean pooling keeps position through the position embedding: moving a bright patch changes the features."""
    encoder = vit()
    a = torch.zeros(1, 4, 84, 84, dtype=torch.uint8)
    b = a.clone()
    a[..., :12, :12] = 255
    b[..., -12:, -12:] = 255
    assert not torch.allclose(encoder(a), encoder(b))


def test_vit_rejects_bad_geometry():
    with pytest.raises(ValueError, match="patch_size"):
        vit(patch_size=10)
    with pytest.raises(ValueError, match="pool"):
        vit(pool="cls")
    with pytest.raises(ValueError, match="heads=5"):
        vit(heads=5)  # does not divide the width 192


@pytest.mark.parametrize("kind", ["sincos", "learned"])
def test_pos_scale_scales_the_position_embedding(kind):
    torch.manual_seed(0)
    full = vit(pos_embed=kind).pos_embed
    torch.manual_seed(0)
    tenth = vit(pos_embed=kind, pos_scale=0.1).pos_embed
    torch.testing.assert_close(tenth, full * 0.1)


@pytest.mark.parametrize(("build", "setting"), [(vit, "depth"), (vit, "pos_scale"), (cnn, "in_channels")])
def test_sizes_must_be_positive(build, setting):
    with pytest.raises(ValueError, match=f"{setting}=0"):
        build(**{setting: 0})
