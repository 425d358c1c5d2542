"""Actor-critic agent: an encoder followed by linear policy and value heads."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.distributions import Categorical

from jepa_rl.encoders import layer_init


class Agent(nn.Module):
    """Encoder -> (policy logits, value). The encoder may run under bf16 autocast; heads stay fp32."""

    def __init__(self, encoder: nn.Module, num_actions: int, autocast: str = "none") -> None:
        super().__init__()
        if autocast not in ("none", "bf16"):
            raise ValueError(f"autocast={autocast!r}; choose 'none' or 'bf16'")
        self.encoder = encoder
        self.actor = layer_init(nn.Linear(encoder.feature_dim, num_actions), std=0.01)
        self.critic = layer_init(nn.Linear(encoder.feature_dim, 1), std=1.0)
        self.autocast = autocast

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, 4, 84, 84]`` uint8 -> ``[B, F]`` float32 features."""
        ctx = (
            torch.autocast(obs.device.type, dtype=torch.bfloat16)
            if self.autocast == "bf16"
            else contextlib.nullcontext()
        )
        with ctx:
            return self.encoder(obs).float()

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values ``[B]``."""
        return self.critic(self.features(obs)).squeeze(-1)

    def act(self, obs: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or argmax) actions; returns ``(actions, log_probs, values)``, each ``[B]``."""
        h = self.features(obs)
        logits = self.actor(h)
        dist = Categorical(logits=logits)
        action = logits.argmax(-1) if greedy else dist.sample()
        return action, dist.log_prob(action), self.critic(h).squeeze(-1)

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities, entropies and values of given actions, each ``[B]``."""
        h = self.features(obs)
        dist = Categorical(logits=self.actor(h))
        return dist.log_prob(actions), dist.entropy(), self.critic(h).squeeze(-1)

    def param_groups(self, lr: float, encoder_lr_scale: float = 1.0) -> list[dict]:
        """Optimizer parameter groups: the encoder at ``lr * encoder_lr_scale``, heads at ``lr``."""
        enc = [p for p in self.encoder.parameters() if p.requires_grad]
        heads = list(self.actor.parameters()) + list(self.critic.parameters())
        groups = [{"params": heads, "lr": lr, "base_lr": lr}]
        if enc:
            groups.append({"params": enc, "lr": lr * encoder_lr_scale, "base_lr": lr * encoder_lr_scale})
        return groups
