"""The actor-critic agent: bf16 autocast with float32 heads, the acting region, frozen and pretrained
encoders (``build_encoder`` / ``build_agent`` / ``load_encoder_weights``) and the optimizer's groups."""

import copy

import pytest
import torch
from helpers import CORRUPTIONS, HEAD, cnn, compose_cfg, corrupt, new_agent, ppo, vit
from omegaconf import OmegaConf

from jepa_rl.models.agent import (
    BlindEncoder,
    build_agent,
    build_encoder,
    load_encoder_weights,
    make_optimizer,
    require_sight,
)
from jepa_rl.models.precision import precision
from jepa_rl.rl.ppo import Rollout
from jepa_rl.runtime.checkpoint import CheckpointError

CPU = torch.device("cpu")


def frames(batch=3):
    return torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def net(encoder: str, *overrides: str) -> dict:
    """``encoder.net`` of ``encoder=<encoder>`` (with ``overrides``), as a plain dict."""
    return OmegaConf.to_container(compose_cfg([f"encoder={encoder}", *overrides]).encoder.net, resolve=True)


@pytest.mark.parametrize("build", [cnn, vit])
def test_agent_runs_under_bf16_autocast(build):
    agent = new_agent(build(), autocast="bf16")
    action, logprob, value = agent.act(frames())
    assert action.shape == logprob.shape == value.shape == (3,)
    assert logprob.dtype == value.dtype == torch.float32
    lp, ent, v = agent.evaluate_actions(frames(), action)
    (lp.mean() + v.mean() + ent.mean()).backward()
    assert all(p.grad is not None for p in agent.parameters())


@pytest.mark.parametrize("build", [cnn, vit])
def test_acting_region_changes_speed_not_results(build):
    """A rollout inside ``acting`` (weights cast once) acts exactly as calls with their own autocast
    region, and the heads stay float32: the update recomputes log-probs with the same numbers."""
    agent = new_agent(build(), autocast="bf16")
    obs = [frames(8) + i for i in range(3)]  # a changing input, as in a rollout
    torch.manual_seed(0)
    with torch.inference_mode():
        alone = [agent.act(x) for x in obs]
    torch.manual_seed(0)
    with agent.acting("cpu"):
        region = [agent.act(x) for x in obs]
        assert region[0][1].dtype == region[0][2].dtype == torch.float32
    for a, b in zip(alone, region, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    lp, _, v = agent.evaluate_actions(obs[-1], region[-1][0])
    assert torch.equal(lp.detach(), region[-1][1]) and torch.equal(v.detach(), region[-1][2])


def test_ppo_autocast_auto_is_bf16_only_where_the_cpu_computes_it(monkeypatch):
    cnn_net = net("cnn")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    for native, expected in ((True, "bf16"), (False, "none")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        assert build_agent(cnn_net, False, HEAD, 4, precision("auto", CPU), CPU).autocast == expected
    assert build_agent(cnn_net, False, HEAD, 4, precision("bf16", CPU), CPU).autocast == "bf16"
    with pytest.raises(ValueError, match="autocast"):  # the agent takes the resolved precision only
        build_agent(cnn_net, False, HEAD, 4, "auto", CPU)
    with pytest.raises(ValueError, match="autocast=fp16"):
        precision("fp16", CPU)


def test_frozen_encoder_is_not_trained():
    agent = build_agent(net("vit", "encoder.net.depth=1"), True, HEAD, num_actions=4, autocast="none", device=CPU)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    learner = ppo(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1, total_timesteps=16)
    T, N = 8, 2
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 4, (T, N))
    zeros = torch.zeros(T, N)
    buf = Rollout(obs, actions, zeros - 1.4, zeros, zeros, zeros)
    learner._update(agent, make_optimizer(agent, 1e-3), buf, torch.randn(T, N), zeros + 1)
    after = agent.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(before["heads.actor.weight"], after["heads.actor.weight"])


def test_a_frozen_encoder_cannot_pool_with_attention():
    """Attention pooling is a trained layer: frozen, it would stay at its random init."""
    with pytest.raises(ValueError, match="pool=attention"):
        build_encoder(net("vit", "encoder.net.pool=attention"), freeze=True)
    assert build_encoder(net("vit", "encoder.net.pool=attention", "encoder.net.depth=1"), freeze=False).pool == (
        "attention"
    )


def test_cached_features_give_the_same_update_as_recomputing_them():
    """With a frozen encoder PPO stores features instead of frames; the update must not change."""
    encoder = cnn().requires_grad_(False)
    agent = new_agent(encoder)
    twin = copy.deepcopy(agent)
    T, N = 8, 2
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        feats = agent.features(obs.flatten(0, 1)).reshape(T, N, -1)
    actions, logprobs, zeros = torch.randint(0, 4, (T, N)), torch.full((T, N), -1.4), torch.zeros(T, N)
    advantages, returns = torch.randn(T, N), torch.ones(T, N)
    learner = ppo(num_envs=N, num_steps=T, num_minibatches=2, update_epochs=2, total_timesteps=T * N)
    torch.manual_seed(0)
    learner._update(
        agent, make_optimizer(agent, 1e-3), Rollout(obs, actions, logprobs, zeros, zeros, zeros), advantages, returns
    )
    torch.manual_seed(0)
    buf = Rollout(feats, actions, logprobs, zeros, zeros, zeros)
    learner._update(twin, make_optimizer(twin, 1e-3), buf, advantages, returns, features=True)
    for (name, a), b in zip(agent.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_the_encoder_learns_at_its_scaled_rate_and_a_negative_scale_is_refused():
    agent = new_agent(cnn())
    heads, encoder = make_optimizer(agent, 1e-3, encoder_lr_scale=0.1).param_groups
    assert heads["lr"] == 1e-3 and encoder["lr"] == pytest.approx(1e-4) and encoder["base_lr"] == pytest.approx(1e-4)
    assert len(encoder["params"]) == len(list(agent.encoder.parameters()))
    frozen = new_agent(cnn().requires_grad_(False))
    assert len(make_optimizer(frozen, 1e-3).param_groups) == 1  # nothing of the encoder to train
    with pytest.raises(ValueError, match="lr_scale=-0.1"):
        agent.param_groups(1e-3, -0.1)
    with pytest.raises(ValueError, match="lr_scale=-1"):
        make_optimizer(agent, 1e-3, encoder_lr_scale=-1)


# --- pretrained weights ---------------------------------------------------------------------------


def test_weights_of_another_architecture_name_the_shapes(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save(vit(width=96, heads=3).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"pos_embed is \[1, 49, 96\] in the file but \[1, 49, 192\]"):
        load_encoder_weights(vit(), path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_encoder_weights(vit(), path)


def test_loaded_weights_are_used_and_frozen(tmp_path):
    source = vit()
    torch.save(source.state_dict(), tmp_path / "encoder.pt")
    jepa = compose_cfg(["encoder=jepa"]).encoder
    encoder = build_encoder(jepa.net, jepa.freeze, tmp_path / "encoder.pt")
    for a, b in zip(source.state_dict().values(), encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in encoder.parameters())


@pytest.mark.parametrize("kind", [*CORRUPTIONS, "another_program_s_tensors"])
def test_corrupt_encoder_weights_are_refused_in_one_line(tmp_path, kind):
    """A file the user passed (``encoder.weights``) is refused, never repaired: the line names it."""
    path = tmp_path / "encoder.pt"
    torch.save(cnn().state_dict(), path)
    if kind == "another_program_s_tensors":
        torch.save([torch.ones(3)], path)
    else:
        corrupt(path, kind)
    with pytest.raises(CheckpointError, match=f"encoder weights {path} are (corrupt|not a state_dict)") as refused:
        load_encoder_weights(cnn(), path)
    assert "\n" not in str(refused.value)


def test_an_encoder_sees_when_some_feature_varies_over_the_frames():
    frames = torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8)
    torch.manual_seed(0)
    alive = cnn()
    assert require_sight(alive, frames, "encoder=cnn") > 0
    dead = cnn()
    with torch.no_grad():
        for p in dead.parameters():
            p.zero_()
    with pytest.raises(BlindEncoder, match="encoder=cnn gives the same features for every frame"):
        require_sight(dead, frames, "encoder=cnn")
    same = frames[:1].expand(8, -1, -1, -1)  # one frame eight times: nothing to tell apart
    with pytest.raises(BlindEncoder):
        require_sight(alive, same, "encoder=cnn")
