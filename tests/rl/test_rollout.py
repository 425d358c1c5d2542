"""Generalised advantage estimation: a pure function of the rollout, checked against hand computation."""

import pytest
import torch

from jepa_rl.rl.rollout import gae


def test_gae_matches_hand_computed_example():
    # gamma 0.9, lambda 0.8; the transition at t=1 ends its episode.
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    last_value = torch.tensor([0.6])
    adv, ret = gae(rewards, values, dones, last_value, gamma=0.9, gae_lambda=0.8)
    # t=2: 2 + 0.9*0.6 - 0.3 = 2.24
    # t=1: terminal, so 0 - 0.4 = -0.4 (nothing flows back from t=2)
    # t=0: delta 1 + 0.9*0.4 - 0.5 = 0.86, plus 0.9*0.8*(-0.4) = 0.572
    assert adv.squeeze(1).tolist() == pytest.approx([0.572, -0.4, 2.24])
    assert ret.squeeze(1).tolist() == pytest.approx([1.072, 0.0, 2.54])


def test_gae_lambda_one_is_discounted_return_minus_value():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    values = torch.zeros(3, 2)
    dones = torch.zeros(3, 2)
    adv, _ = gae(rewards, values, dones, torch.tensor([10.0, 0.0]), gamma=0.5, gae_lambda=1.0)
    assert adv[:, 0].tolist() == pytest.approx([1 + 0.5 + 0.25 + 0.125 * 10, 1 + 0.5 + 0.25 * 10, 1 + 0.5 * 10])
    assert adv[:, 1].tolist() == pytest.approx([0.5, 1.0, 0.0])
