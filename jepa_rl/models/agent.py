"""Actor-critic agent: an encoder, fixed feature standardisation when it is frozen or pretrained, a trunk and heads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jepa_rl.models.encoders import make_net
from jepa_rl.models.feature_standardisation import FeatureNorm
from jepa_rl.models.heads import PolicyHeads
from jepa_rl.models.precision import precision
from jepa_rl.runtime.checkpoint import CheckpointError, load_checkpoint, load_weights_only


class Agent(nn.Module):
    """Encoder -> [standardisation] -> heads (trunk, policy logits, value).

    The encoder may run under bf16 autocast; the standardisation and the heads stay float32.
    ``standardise`` puts a ``FeatureNorm`` after the encoder, whose statistics the caller sets.
    """

    def __init__(
        self, encoder: nn.Module, heads: PolicyHeads, autocast: str = "none", standardise: bool = False
    ) -> None:
        super().__init__()
        if autocast not in ("none", "bf16"):
            raise ValueError(f"autocast={autocast!r}; choose 'none' or 'bf16'")
        self.encoder = encoder
        self.norm = FeatureNorm(encoder.feature_dim) if standardise else nn.Identity()
        self.heads = heads
        self.autocast = autocast

    @property
    def num_actions(self) -> int:
        return self.heads.num_actions

    def precision(self, device_type: str) -> contextlib.AbstractContextManager:
        """The encoder's autocast region (bf16), or no context when ``autocast='none'``."""
        if self.autocast == "bf16":
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def acting(self, device_type: str) -> Iterator[None]:
        """No gradients and one autocast region for a span of acting steps (a rollout, an evaluation).

        Inside one region autocast casts each weight to bf16 once and reuses the copy; a region per
        call recasts every weight at every step (a measurable share of a batch-8 forward: see docs/performance.md).
        ``no_grad``, not ``inference_mode``, which turns that cache off. Weights must not change inside.
        """
        with torch.no_grad(), self.precision(device_type):
            yield

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, 4, 84, 84]`` uint8 -> ``[B, F]`` float32 features (standardised when the agent does)."""
        with self.precision(obs.device.type):
            h = self.encoder(obs).float()
        with torch.autocast(obs.device.type, enabled=False):
            return self.norm(h)

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy log-probabilities ``[B, A]`` and values ``[B]``, in float32 even inside ``acting``."""
        with torch.autocast(h.device.type, enabled=False):
            logits, value = self.heads(h)
            return torch.log_softmax(logits, dim=-1), value

    def representation(self, obs: torch.Tensor) -> torch.Tensor:
        """What the policy reads: the trunk's output on ``obs`` (probes of a trained agent use it)."""
        h = self.features(obs)
        with torch.autocast(obs.device.type, enabled=False):
            return self.heads.representation(h)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Policy logits ``[B, A]`` of float frames, differentiable in them (saliency maps); float32 throughout."""
        return self.heads(self.norm(self.encoder(obs).float()))[0]

    def log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """Policy log-probabilities ``[B, A]`` (float32)."""
        return self._heads(self.features(obs))[0]

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
        action = choose(logp, greedy, generator)
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
        """Optimizer parameter groups: the encoder at ``lr * encoder_lr_scale``, trunk and heads at ``lr``."""
        if encoder_lr_scale < 0:
            raise ValueError(f"lr_scale={encoder_lr_scale} must be >= 0")
        enc = [p for p in self.encoder.parameters() if p.requires_grad]
        heads = list(self.heads.parameters())
        groups = [{"params": heads, "lr": lr, "base_lr": lr}]
        if enc:
            groups.append({"params": enc, "lr": lr * encoder_lr_scale, "base_lr": lr * encoder_lr_scale})
        return groups


def choose(logp: torch.Tensor, greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Actions ``[B]`` from log-probabilities ``[B, A]``: the argmax, or a sample from ``generator``.

    Gumbel-max (logp - log Exp(1)) is an exact categorical sample, minus torch.distributions' overhead.
    """
    noise = 0.0 if greedy else torch.empty_like(logp).exponential_(generator=generator).log()
    return (logp - noise).argmax(-1)


class PolicyRepresentation(nn.Module):
    """A trained agent seen as an encoder: frames -> what its policy reads (``Agent.representation``)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self.agent = agent

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.agent.representation(obs)


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load an encoder ``state_dict`` file into ``encoder``; a mismatch names the differing shapes."""
    try:
        state = load_weights_only(path)
    except FileNotFoundError as e:
        raise CheckpointError(f"encoder weights {path} do not exist; pass the path of an encoder.pt") from e
    except Exception as e:  # truncated zip, unpickling error...
        raise CheckpointError(f"encoder weights {path} are corrupt ({type(e).__name__}); rebuild or delete them") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"encoder weights {path} are not a state_dict of tensors; pass the path of an encoder.pt")
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
    encoder = make_net(net)
    if weights is not None:
        load_encoder_weights(encoder, weights)
    if freeze:
        encoder.requires_grad_(False)
    return encoder


def build_agent(
    net: Mapping[str, Any],
    freeze: bool,
    head: Mapping[str, Any],
    num_actions: int,
    autocast: str,
    device: torch.device,
    weights: str | Path | None = None,
) -> Agent:
    """The encoder ``net`` (pretrained ``weights`` if given, frozen if ``freeze``) and ``head`` (kind, width)
    in an ``Agent``; ``autocast`` is the resolved precision (``bf16`` or ``none``). A frozen or pretrained
    encoder's features are standardised: set the statistics with ``agent.norm.set_statistics``."""
    encoder = build_encoder(net, freeze, weights)
    heads = PolicyHeads(**head, feature_dim=encoder.feature_dim, num_actions=num_actions)
    return Agent(encoder, heads, autocast=autocast, standardise=standardises_features(freeze, weights)).to(device)


def standardises_features(freeze: bool, weights: str | Path | None) -> bool:
    """Whether an agent standardises its features: when its encoder is frozen or starts from weights
    trained elsewhere (features it did not learn with the policy)."""
    return freeze or weights is not None


def agent_from_checkpoint(path: str | Path, device: torch.device) -> Agent:
    """The trained agent stored in a PPO ``checkpoint.pt`` (its architecture comes from the checkpoint)."""
    state = load_checkpoint(Path(path))
    cfg = state["config"]
    if "head" not in cfg or "num_actions" not in state:
        raise CheckpointError(f"{path} was written before agents had a head config; train it again")
    standardise = "norm.mean" in state["agent"]
    # The job may have kept a frozen encoder in float32 (see feature_norm.feature_statistics).
    autocast = "none" if state.get("agent_autocast") == "none" else precision(cfg["ppo"]["autocast"], device)
    with torch.device("meta"):  # no initial weights drawn (the CNN's orthogonal init costs ~1 s): they are loaded
        encoder = make_net(cfg["encoder"]["net"])
        heads = PolicyHeads(**cfg["head"], feature_dim=encoder.feature_dim, num_actions=state["num_actions"])
        agent = Agent(encoder, heads, autocast=autocast, standardise=standardise)
    agent.load_state_dict(state["agent"], assign=True)
    return agent.to(device)


def make_optimizer(agent: Agent, learning_rate: float, encoder_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """Adam as CleanRL sets it (eps 1e-5); the fused kernel is several times cheaper per step on CPU."""
    return torch.optim.Adam(agent.param_groups(learning_rate, encoder_lr_scale), eps=1e-5, fused=True)


class BlindEncoder(ValueError):
    """The encoder's features do not vary over the frames: the agent it feeds could not see."""


def require_sight(encoder: nn.Module, frames: torch.Tensor, what: str) -> float:
    """The largest spread (std over ``frames``) of any of ``encoder``'s features; raises ``BlindEncoder`` when
    none varies (dead or constant weights), naming ``what`` encoder it is."""
    with torch.no_grad():
        features = encoder(frames).float()
    spread = float(features.std(dim=0).max())
    if not spread > 1e-6 * (1 + float(features.abs().max())):
        raise BlindEncoder(
            f"{what} gives the same features for every frame (largest spread over {len(frames)} frames of random "
            f"play: {spread:.1e}): an agent on it could not see; check its weights, or train it end to end"
        )
    return spread
