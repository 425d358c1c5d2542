"""CUDA paths, skipped without a GPU: the same numbers as on the CPU, and whole runs on the GPU through launch.py.

CI has no GPU; run these on a machine with one (``python -m pytest tests/test_cuda.py``).
"""

import json

import numpy as np
import pytest
import torch
from helpers import HEAD, TINY, TINY_PRETRAIN, compose_cfg, launch, pipeline, pretrain_settings

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.models.agent import build_agent
from jepa_rl.pretrain.loop import make_adamw, mask_config, train_step
from jepa_rl.pretrain.objectives import make_pretrainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
# bf16 keeps 8 bits of mantissa: measured against float32 on the CPU, its relative error here is ~3e-3
# (values) and ~1e-2 (gradients); the bounds leave room for other kernels, not for a wrong result.
TOLERANCE = {"none": 1e-4, "bf16": 5e-2}


@pytest.fixture(autouse=True)
def true_float32():
    """TF32 matmuls and convolutions would make CUDA's float32 differ from the CPU's at ~1e-3."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm()).item()


def agent_outputs(agent, obs, actions):
    """Log-probs, values and the gradients of a PPO-shaped loss for one batch."""
    device = next(agent.parameters()).device
    agent.zero_grad()
    logp, entropy, value = agent.evaluate_actions(obs.to(device), actions.to(device))
    (-logp.mean() + 0.5 * value.square().mean() - 0.01 * entropy.mean()).backward()
    return [logp, value, *(p.grad for p in agent.parameters())]


@pytest.mark.parametrize("autocast", ["none", "bf16"])
@pytest.mark.parametrize("encoder", ["cnn", "vit"])
def test_agent_values_and_gradients_match_the_cpu(encoder, autocast):
    cfg = compose_cfg([f"encoder={encoder}"])
    torch.manual_seed(0)
    net, freeze = cfg.encoder.net, cfg.encoder.freeze
    reference = build_agent(net, freeze, HEAD, 4, "none", CPU)
    agent = build_agent(net, freeze, HEAD, 4, autocast, CUDA)
    agent.load_state_dict(reference.state_dict())
    obs, actions = torch.randint(0, 256, (64, 4, 84, 84), dtype=torch.uint8), torch.randint(0, 4, (64,))
    got, want = agent_outputs(agent, obs, actions), agent_outputs(reference, obs, actions)
    errors = [rel_err(g, w) for g, w in zip(got, want, strict=True)]
    assert max(errors) < TOLERANCE[autocast], errors
    with agent.acting("cuda"):  # the rollout's region gives the update's numbers
        _, logp, value = agent.act(obs[:8].cuda(), greedy=True)
    assert rel_err(value, got[1][:8]) < 1e-6 and logp.dtype == value.dtype == torch.float32


@pytest.mark.parametrize("objective", ["jepa", "ae"])
def test_pretraining_steps_match_the_cpu(objective):
    """Three optimisation steps (masks, loss, AdamW, EMA target) from the same start on both devices."""
    net, settings = compose_cfg().encoders.jepa.net, pretrain_settings()
    losses = []
    for device in (CPU, CUDA):
        torch.manual_seed(0)
        model = make_pretrainer(net, objective, "tokens", settings).to(device)
        optimizer, gen = make_adamw(model), torch.Generator().manual_seed(0)
        masks = mask_config(settings.masks, model.encoder.grid)
        obs = torch.randint(0, 256, (32, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        steps = [train_step(model, optimizer, obs.to(device), masks, gen, 0.99, bf16=False)[0] for _ in range(3)]
        losses.append(torch.stack(steps))
    assert rel_err(losses[1], losses[0]) < 1e-4, losses


@pytest.mark.slow
def test_training_on_cuda_writes_results_and_resumes(tmp_path):
    args = [*TINY, "device=cuda", "logger=none", "eval.suite=[clean,hard]", "hydra.run.dir=run"]
    first = launch(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results["eval"]) == ["clean", "hard"] and results["total_timesteps"] == 512
    (tmp_path / "run" / "results.json").unlink()  # as if killed before evaluation: the checkpoint loads on CUDA
    again = launch(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from" in again.stdout + again.stderr and (tmp_path / "run" / "results.json").exists()


@pytest.mark.slow
def test_pretrained_encoder_on_cuda_end_to_end(tmp_path):
    args = [*TINY, *TINY_PRETRAIN, "device=cuda", "encoder=jepa", "logger=none", "eval.suite=[clean]"]
    result = launch([*args, "encoder.freeze=false", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "building encoders" in result.stdout
    assert json.loads((tmp_path / "run" / "results.json").read_text())["encoder"] == "jepa"


@pytest.mark.parametrize("name", ["clean", "color_jitter"])
def test_the_pipeline_on_the_gpu_sees_what_the_opencv_one_does(name):
    perturbation = VisualPerturbation(
        name, **({"hue": 0.2, "saturation": 0.3, "brightness": 0.2} if name != "clean" else {})
    )
    host = pipeline("breakout", 4, 7, num_threads=1, perturbation=perturbation.copy())
    gpu = pipeline("breakout", 4, 7, num_threads=1, perturbation=perturbation.copy(), frames_device="cuda")
    rng = np.random.default_rng(0)
    try:
        (a, _), (b, _) = host.reset(), gpu.reset()
        assert b.is_cuda
        diffs = []
        for _ in range(100):
            actions = rng.integers(0, host.num_actions, 4)
            (a, *_), (b, *_) = host.step(actions), gpu.step(actions)
            diffs.append(np.abs(a.astype(int) - b.cpu().numpy()))
    finally:
        host.close(), gpu.close()
    diffs = np.stack(diffs)
    assert diffs.max() <= 1 and diffs.mean() < 1e-3
