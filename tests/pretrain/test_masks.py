import dataclasses

import pytest
import torch

from jepa_rl.models.transformer import apply_masks
from jepa_rl.pretrain.loop import mask_config
from jepa_rl.pretrain.masks import MaskConfig, sample_masks
from jepa_rl.pretrain.settings import MasksSettings


def default_masks(**changes) -> MaskConfig:
    """``pretrain.masks`` (``MasksSettings``'s I-JEPA values) on the 7x7 grid, ``changes`` replacing some."""
    return dataclasses.replace(mask_config(MasksSettings(), 7), **changes)


def draw(batch=64, seed=0, cfg=None):
    return sample_masks(batch, cfg or default_masks(), torch.Generator().manual_seed(seed))


def test_mask_shapes_counts_and_ranges():
    cfg = default_masks()
    context, targets = draw(cfg=cfg)
    assert context.dim() == 2 and context.shape[0] == 64 and context.shape[1] >= cfg.min_context
    assert targets.shape[:2] == (64, cfg.num_targets)
    h_w = targets.shape[2]
    assert 0.15 * 49 * 0.5 <= h_w <= 0.2 * 49 * 1.5  # block area near the configured scale
    for idx in (context, targets):
        assert idx.dtype == torch.long and idx.min() >= 0 and idx.max() < 49
    # Every target block is a rectangle: its patches span exactly rows x cols.
    rows, cols = targets // 7, targets % 7
    spans = (rows.amax(-1) - rows.amin(-1) + 1) * (cols.amax(-1) - cols.amin(-1) + 1)
    assert torch.all(spans == h_w)


def test_context_and_targets_are_disjoint_and_context_unique():
    context, targets = draw(batch=128, seed=3)
    for c, t in zip(context, targets, strict=True):
        assert len(set(c.tolist())) == len(c)
        assert not set(c.tolist()) & set(t.flatten().tolist())


def test_large_batches_with_the_tightest_blocks_redraw_only_the_samples_that_need_it():
    # 4x3 targets and a 6x6 context: about 1 sample in 130 keeps < 4 patches, so a batch of 1,024 almost
    # never has none; redrawing the whole batch used to fail 20 times in a row and stop pretraining.
    cfg = default_masks(target_scale=(0.2, 0.2), target_aspect=(1.5, 1.5), context_scale=(0.75, 0.75))
    assert cfg.block_shape(0.2, 1.5) == (4, 3) and cfg.block_shape(0.75, 1.0) == (6, 6)
    for seed in range(10):
        context, targets = draw(batch=1024, seed=seed, cfg=cfg)
        assert context.shape[1] >= cfg.min_context and targets.shape == (1024, 4, 12)
        assert not (context[:, :, None, None] == targets[:, None]).any()


def test_masks_are_deterministic_under_a_seed():
    a, b = draw(seed=7), draw(seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = draw(seed=8)
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))


def test_apply_masks_gathers_tokens():
    x = torch.arange(2 * 49 * 3, dtype=torch.float32).reshape(2, 49, 3)
    idx = torch.tensor([[0, 48], [5, 6]])
    out = apply_masks(x, idx)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[1, 0], x[1, 5]) and torch.equal(out[0, 1], x[0, 48])


@pytest.mark.parametrize(
    "kwargs",
    [{"context_scale": (0.02, 0.02)}, {"target_scale": (0.95, 0.99)}, {"num_targets": 0}, {"target_scale": (0.3, 0.2)}],
)
def test_configurations_without_context_are_rejected(kwargs):
    with pytest.raises(ValueError, match="masks"):
        default_masks(**kwargs)
