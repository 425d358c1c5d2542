import pytest
import torch

from jepa_rl.agent import Agent
from jepa_rl.encoders import NatureCNN, ViTEncoder


def frames(batch=3):
    return torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pool", ["mean", "attention"])
def test_vit_tiny_shapes(pool):
    vit = ViTEncoder(pool=pool)
    assert vit.num_patches == 49
    assert vit.tokens(frames()).shape == (3, 49, 192)
    assert vit(frames()).shape == (3, 192)
    keep = torch.tensor([[0, 5, 48]] * 3)
    assert vit.tokens(frames(), keep=keep).shape == (3, 3, 192)


def test_vit_features_depend_on_where_things_are():
    """Mean pooling keeps position through the position embedding: moving a bright patch changes the features."""
    vit = ViTEncoder()
    a = torch.zeros(1, 4, 84, 84, dtype=torch.uint8)
    b = a.clone()
    a[..., :12, :12] = 255
    b[..., -12:, -12:] = 255
    assert not torch.allclose(vit(a), vit(b))


@pytest.mark.parametrize("encoder", [NatureCNN(), ViTEncoder()])
def test_agent_runs_under_bf16_autocast(encoder):
    agent = Agent(encoder, num_actions=4, autocast="bf16")
    action, logprob, value = agent.act(frames())
    assert action.shape == logprob.shape == value.shape == (3,)
    assert logprob.dtype == value.dtype == torch.float32
    lp, ent, v = agent.evaluate_actions(frames(), action)
    (lp.mean() + v.mean() + ent.mean()).backward()
    assert all(p.grad is not None for p in agent.parameters())


@pytest.mark.parametrize("encoder", [NatureCNN(), ViTEncoder()])
def test_acting_region_changes_speed_not_results(encoder):
    """A rollout inside ``acting`` (weights cast once) acts exactly as calls with their own autocast
    region, and the heads stay float32: the update recomputes log-probs with the same numbers."""
    agent = Agent(encoder, num_actions=4, autocast="bf16")
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


def test_vit_rejects_bad_geometry():
    with pytest.raises(ValueError, match="patch_size"):
        ViTEncoder(patch_size=10)
    with pytest.raises(ValueError, match="pool"):
        ViTEncoder(pool="cls")


def test_ppo_autocast_auto_is_bf16_only_where_the_cpu_computes_it(monkeypatch):
    from omegaconf import OmegaConf

    from jepa_rl.agent import build_agent

    cfg = OmegaConf.create({"freeze": False, "net": {"_target_": "jepa_rl.encoders.NatureCNN"}})
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    for native, precision in ((True, "bf16"), (False, "none")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        assert build_agent(cfg, 4, "auto", torch.device("cpu")).autocast == precision
    assert build_agent(cfg, 4, "bf16", torch.device("cpu")).autocast == "bf16"


def test_frozen_encoder_is_not_trained():
    from omegaconf import OmegaConf

    from jepa_rl.agent import build_agent, make_optimizer
    from jepa_rl.ppo import PPO, Rollout

    cfg = OmegaConf.create({"freeze": True, "net": {"_target_": "jepa_rl.encoders.ViTEncoder", "depth": 1}})
    agent = build_agent(cfg, num_actions=4, autocast="none", device=torch.device("cpu"))
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    ppo = PPO(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1, total_timesteps=16)
    T, N = 8, 2
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 4, (T, N))
    zeros = torch.zeros(T, N)
    buf = Rollout(obs, actions, zeros - 1.4, zeros, zeros, zeros)
    ppo._update(agent, make_optimizer(agent, 1e-3), buf, torch.randn(T, N), zeros + 1)
    after = agent.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(before["actor.weight"], after["actor.weight"])


def test_cached_features_give_the_same_update_as_recomputing_them():
    """With a frozen encoder PPO stores features instead of frames; the update must not change."""
    import copy

    from jepa_rl.agent import make_optimizer
    from jepa_rl.ppo import PPO, Rollout

    encoder = NatureCNN().requires_grad_(False)
    agent = Agent(encoder, num_actions=4)
    twin = copy.deepcopy(agent)
    T, N = 8, 2
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        feats = agent.features(obs.flatten(0, 1)).reshape(T, N, -1)
    actions, logprobs, zeros = torch.randint(0, 4, (T, N)), torch.full((T, N), -1.4), torch.zeros(T, N)
    advantages, returns = torch.randn(T, N), torch.ones(T, N)
    ppo = PPO(num_envs=N, num_steps=T, num_minibatches=2, update_epochs=2, total_timesteps=T * N)
    torch.manual_seed(0)
    ppo._update(
        agent, make_optimizer(agent, 1e-3), Rollout(obs, actions, logprobs, zeros, zeros, zeros), advantages, returns
    )
    torch.manual_seed(0)
    buf = Rollout(feats, actions, logprobs, zeros, zeros, zeros)
    ppo._update(twin, make_optimizer(twin, 1e-3), buf, advantages, returns, features=True)
    for (name, a), b in zip(agent.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
