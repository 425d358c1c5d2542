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


def test_vit_rejects_bad_geometry():
    with pytest.raises(ValueError, match="patch_size"):
        ViTEncoder(patch_size=10)
    with pytest.raises(ValueError, match="pool"):
        ViTEncoder(pool="cls")


def test_frozen_encoder_is_not_trained():
    from omegaconf import OmegaConf

    from jepa_rl.agent import build_agent, make_optimizer
    from jepa_rl.ppo import PPO

    cfg = OmegaConf.create({"freeze": True, "net": {"_target_": "jepa_rl.encoders.ViTEncoder", "depth": 1}})
    agent = build_agent(cfg, num_actions=4, autocast="none", device=torch.device("cpu"))
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    ppo = PPO(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1, total_timesteps=16)
    T, N = 8, 2
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 4, (T, N))
    zeros = torch.zeros(T, N)
    ppo._update(agent, make_optimizer(agent, 1e-3), obs, actions, zeros - 1.4, zeros, torch.randn(T, N), zeros + 1)
    after = agent.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(before["actor.weight"], after["actor.weight"])


def test_cached_features_give_the_same_update_as_recomputing_them():
    """With a frozen encoder PPO stores features instead of frames; the update must not change."""
    import copy

    from jepa_rl.agent import make_optimizer
    from jepa_rl.ppo import PPO

    encoder = NatureCNN().requires_grad_(False)
    agent = Agent(encoder, num_actions=4)
    twin = copy.deepcopy(agent)
    T, N = 8, 2
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        feats = agent.features(obs.flatten(0, 1)).reshape(T, N, -1)
    args = (
        torch.randint(0, 4, (T, N)),
        torch.full((T, N), -1.4),
        torch.zeros(T, N),
        torch.randn(T, N),
        torch.ones(T, N),
    )
    ppo = PPO(num_envs=N, num_steps=T, num_minibatches=2, update_epochs=2, total_timesteps=T * N)
    torch.manual_seed(0)
    ppo._update(agent, make_optimizer(agent, 1e-3), obs, *args)
    torch.manual_seed(0)
    ppo._update(twin, make_optimizer(twin, 1e-3), feats, *args, features=True)
    for (name, a), b in zip(agent.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
