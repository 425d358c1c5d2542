"""Actor-critic agent: an encoder followed by linear policy and value heads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from jepa_rl.checkpoint import CheckpointError, load_checkpoint
from jepa_rl.config.resolve import precision
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

    def precision(self, device_type: str) -> contextlib.AbstractContextManager:
        """The encoder's autocast region (bf16), or no context when ``autocast='none'``."""
        if self.autocast == "bf16":
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def acting(self, device_type: str) -> Iterator[None]:
        """No gradients and one autocast region for a span of acting steps (a rollout, an evaluation).

        Inside one region autocast casts each weight to bf16 once and reuses the copy; a region per
        call recasts every weight at every step (a measurable share of a batch-8 forward: see the README).
        ``no_grad``, not ``inference_mode``, which turns that cache off. Weights must not change inside.
        """
        with torch.no_grad(), self.precision(device_type):
            yield

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, 4, 84, 84]`` uint8 -> ``[B, F]`` float32 features."""
        with self.precision(obs.device.type):
            return self.encoder(obs).float()

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy log-probabilities ``[B, A]`` and values ``[B]``, in float32 even inside ``acting``."""
        with torch.autocast(h.device.type, enabled=False):
            return torch.log_softmax(self.actor(h), dim=-1), self.critic(h).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values ``[B]``."""
        return self._heads(self.features(obs))[1]

    @property
    def encoder_frozen(self) -> bool:
        """True when no encoder weight is trained: features can then be computed once and reused."""
        return not any(p.requires_grad for p in self.encoder.parameters())

    def act(self, obs: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or argmax) actions; returns ``(actions, log_probs, values)``, each ``[B]``."""
        return self.act_from_features(self.features(obs), greedy)

    def act_from_features(
        self, h: torch.Tensor, greedy: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``act`` on precomputed features ``[B, F]``; actions are sampled from ``generator`` (default: torch's)."""
        logp, value = self._heads(h)
        # Gumbel-max (logp - log Exp(1)) is an exact categorical sample, minus torch.distributions' overhead.
        noise = 0.0 if greedy else torch.empty_like(logp).exponential_(generator=generator).log()
        action = (logp - noise).argmax(-1)
        return action, logp.gather(-1, action[:, None]).squeeze(-1), value

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities, entropies and values of given actions, each ``[B]``."""
        return self.evaluate_features(self.features(obs), actions)

    def evaluate_features(
        self, h: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``evaluate_actions`` on precomputed features ``[B, F]``."""
        logp, value = self._heads(h)
        entropy = -(logp.exp() * logp).sum(-1)
        return logp.gather(-1, actions[:, None]).squeeze(-1), entropy, value

    def param_groups(self, lr: float, encoder_lr_scale: float = 1.0) -> list[dict]:
        """Optimizer parameter groups: the encoder at ``lr * encoder_lr_scale``, heads at ``lr``."""
        if encoder_lr_scale < 0:
            raise ValueError(f"lr_scale={encoder_lr_scale} must be >= 0")
        enc = [p for p in self.encoder.parameters() if p.requires_grad]
        heads = list(self.actor.parameters()) + list(self.critic.parameters())
        groups = [{"params": heads, "lr": lr, "base_lr": lr}]
        if enc:
            groups.append({"params": enc, "lr": lr * encoder_lr_scale, "base_lr": lr * encoder_lr_scale})
        return groups


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load an encoder ``state_dict`` file into ``encoder``; a mismatch names the differing shapes."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"encoder weights {path} do not exist; pass the path of an encoder.pt") from e
    except Exception as e:  # truncated zip, unpickling error...
        raise CheckpointError(f"encoder weights {path} are corrupt ({type(e).__name__}); rebuild or delete them") from e
    own = encoder.state_dict()
    problems = [f"{k} missing from the file" for k in own if k not in state]
    problems += [f"{k} not in the encoder" for k in state if k not in own]
    problems += [
        f"{k} is {list(state[k].shape)} in the file but {list(v.shape)} in encoder.net"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if problems:
        raise CheckpointError(
            f"encoder weights {path} do not match the configured architecture: {'; '.join(problems[:4])}"
            f"{' ...' if len(problems) > 4 else ''}; use the encoder.net settings they were trained with"
        )
    encoder.load_state_dict(state)


def build_encoder(net: Mapping[str, Any], freeze: bool, weights: str | Path | None = None) -> nn.Module:
    """Instantiate ``encoder.net``, load ``weights`` when given, freeze it when ``freeze``."""
    if freeze and net.get("pool") == "attention":
        raise ValueError(
            "freeze=true with net.pool=attention: attention pooling is a trained layer, which a frozen encoder "
            "cannot train; use net.pool=mean or freeze=false"
        )
    encoder = instantiate(net)
    if weights is not None:
        load_encoder_weights(encoder, weights)
    if freeze:
        encoder.requires_grad_(False)
    return encoder


def build_agent(
    net: Mapping[str, Any],
    freeze: bool,
    num_actions: int,
    autocast: str,
    device: torch.device,
    weights: str | Path | None = None,
) -> Agent:
    """The encoder ``net`` (pretrained ``weights`` if given, frozen if ``freeze``) in an ``Agent``; ``autocast``
    is the resolved precision (``bf16`` or ``none``)."""
    return Agent(build_encoder(net, freeze, weights), num_actions, autocast=autocast).to(device)


def agent_from_checkpoint(path: str | Path, device: torch.device) -> Agent:
    """The trained agent stored in a PPO ``checkpoint.pt`` (its architecture comes from the checkpoint)."""
    state = load_checkpoint(Path(path))
    cfg = state["config"]
    num_actions = state["agent"]["actor.weight"].shape[0]
    agent = Agent(instantiate(cfg["encoder"]["net"]), num_actions, autocast=precision(cfg["ppo"]["autocast"], device))
    agent.load_state_dict(state["agent"])
    return agent.to(device)


def make_optimizer(agent: Agent, learning_rate: float, encoder_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """Adam as CleanRL sets it (eps 1e-5); the fused kernel is several times cheaper per step on CPU."""
    return torch.optim.Adam(agent.param_groups(learning_rate, encoder_lr_scale), eps=1e-5, fused=True)
