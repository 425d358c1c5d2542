"""The trunk and heads every encoder gets: shapes, trained-parameter counts, CleanRL's CNN unchanged, bad kinds."""

import pytest
import torch
from helpers import cnn, new_agent, vit

from jepa_rl.models.encoders import layer_init
from jepa_rl.models.heads import PolicyHeads, trained_parameters


def heads(kind, width=512, feature_dim=192, num_actions=4):
    return PolicyHeads(kind=kind, width=width, feature_dim=feature_dim, num_actions=num_actions)


@pytest.mark.parametrize(
    ("kind", "width", "count"),
    [
        ("trunk", 512, 192 * 512 + 512 + 512 * 4 + 4 + 512 + 1),  # 101,381: the CNN's last layer, then CleanRL's
        ("mlp", 256, 2 * (192 * 256 + 256) + 256 * 4 + 4 + 256 + 1),  # the seed study's heads: 100,102
        ("linear", 512, 192 * 4 + 4 + 192 + 1),  # 965: straight on the features
    ],
)
def test_each_kind_has_the_documented_trained_parameters(kind, width, count):
    h = heads(kind, width)
    logits, value = h(torch.randn(5, 192))
    assert logits.shape == (5, 4) and value.shape == (5,)
    assert trained_parameters(h) == count


def test_the_cnn_agent_is_cleanrls_network_with_the_trunk_as_its_last_layer():
    """Same seed, same initial weights as CleanRL's Sequential (convolutions, 3136->512, heads), drawn in its order."""
    torch.manual_seed(0)
    agent = new_agent(cnn())
    torch.manual_seed(0)
    reference = [cnn(), layer_init(torch.nn.Linear(3136, 512))]
    reference += [layer_init(torch.nn.Linear(512, 4), std=0.01), layer_init(torch.nn.Linear(512, 1), std=1.0)]
    assert torch.equal(agent.heads.trunk[0].weight, reference[1].weight)
    assert torch.equal(agent.heads.actor.weight, reference[2].weight)
    assert torch.equal(agent.heads.critic.weight, reference[3].weight)
    assert trained_parameters(agent) == 1_686_693  # CleanRL ppo_atari's network on a 4-action game


def test_a_vit_agent_differs_from_the_cnn_only_before_the_trunk():
    agent = new_agent(vit())
    assert agent.heads.trunk[0].in_features == 192 and agent.heads.trunk[0].out_features == 512
    assert agent.representation(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 512)


def test_a_bad_kind_or_width_is_named():
    with pytest.raises(ValueError, match="kind=cls is not a head; choose one of trunk, mlp, linear"):
        heads("cls")
    with pytest.raises(ValueError, match="width=0 must be positive"):
        heads("trunk", width=0)
