"""What an agent trains on top of its encoder's features: a shared trunk, separate MLPs, or linear heads.

``trunk`` (default) is the Nature-CNN's last layer for every encoder: ``Linear(F, width) + ReLU``
shared by actor and critic, then CleanRL's linear heads. The end-to-end CNN is exactly CleanRL's
network with it, and a ViT agent differs from the CNN only in what comes before that layer.
``mlp`` gives actor and critic a hidden layer each (the seed study's encoder heads), ``linear``
puts both heads straight on the features. Trained parameters per kind are in docs/agents.md.
"""

from __future__ import annotations

import torch
from torch import nn

from jepa_rl.models.encoders import layer_init
from jepa_rl.ranges import require_positive

HEAD_KINDS = ("trunk", "mlp", "linear")


def hidden(in_features: int, width: int) -> nn.Sequential:
    """``Linear(in_features, width) + ReLU``, initialised as CleanRL's trunk."""
    return nn.Sequential(layer_init(nn.Linear(in_features, width)), nn.ReLU())


class PolicyHeads(nn.Module):
    """Features ``[B, F]`` -> (policy logits ``[B, A]``, values ``[B]``), built as ``kind`` says."""

    def __init__(self, *, kind: str, width: int, feature_dim: int, num_actions: int) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ValueError(f"kind={kind} is not a head; choose one of {', '.join(HEAD_KINDS)}")
        require_positive(width=width, feature_dim=feature_dim, num_actions=num_actions)
        self.kind, self.num_actions = kind, num_actions
        # Built in this order (trunk, actor, critic) the CNN agent draws its initial weights in
        # CleanRL's order: a seed gives the same network as before the trunk moved here.
        self.trunk = hidden(feature_dim, width) if kind == "trunk" else nn.Identity()
        head_in = width if kind == "trunk" else feature_dim
        if kind == "mlp":
            self.actor = nn.Sequential(hidden(feature_dim, width), layer_init(nn.Linear(width, num_actions), std=0.01))
            self.critic = nn.Sequential(hidden(feature_dim, width), layer_init(nn.Linear(width, 1), std=1.0))
        else:
            self.actor = layer_init(nn.Linear(head_in, num_actions), std=0.01)
            self.critic = layer_init(nn.Linear(head_in, 1), std=1.0)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.trunk(h)
        return self.actor(z), self.critic(z).squeeze(-1)

    def representation(self, h: torch.Tensor) -> torch.Tensor:
        """What the policy reads: the trunk's output (the features themselves without a trunk)."""
        return self.trunk(h)


def trained_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module`` that the optimiser updates."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
