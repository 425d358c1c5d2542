"""Figures that need the trained agents: input-gradient saliency per encoder, and clean-vs-hard gameplay GIFs."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402

from jepa_rl.envs.perturbations import suite_config  # noqa: E402
from jepa_rl.envs.pipeline import make_env  # noqa: E402
from jepa_rl.models.agent import Agent, agent_from_checkpoint  # noqa: E402
from jepa_rl.runtime.checkpoint import CHECKPOINT_NAME  # noqa: E402
from jepa_rl.runtime.progress import Progress  # noqa: E402
from jepa_rl.sweep.cells import Cell  # noqa: E402


def first_agents(cells: list[Cell]) -> dict[str, Cell]:
    """One finished cell with a checkpoint per condition (the lowest seed)."""
    out: dict[str, Cell] = {}
    for c in sorted(cells, key=lambda c: c.seed):
        if c.status == "ok" and (c.path / CHECKPOINT_NAME).exists():
            out.setdefault(c.condition, c)
    return out


def sample_frames(cfg: DictConfig, count: int, seed: int = 0) -> np.ndarray:
    """``count`` clean observations ``[count, 4, 84, 84]`` from seeded random play (the same for every encoder)."""
    envs = make_env(cfg.env, 1, seed, num_threads=1)
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset()
    frames = []
    for t in range(count * 40):
        obs, *_ = envs.step(rng.integers(0, envs.num_actions, 1))
        if t % 40 == 39:
            frames.append(obs[0])
    envs.close()
    return np.stack(frames)


def saliency(agent: Agent, frames: np.ndarray) -> np.ndarray:
    """|d logit(chosen action) / d pixel|, max over the stack: ``[N, 84, 84]``, each map scaled to [0, 1]."""
    x = torch.from_numpy(frames).float().requires_grad_()
    logits = agent.logits(x * 1.0)  # x * 1.0: the encoder scales its input in place
    logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
    maps = x.grad.abs().amax(1).numpy()
    return maps / np.maximum(maps.reshape(len(maps), -1).max(1), 1e-12)[:, None, None]


def saliency_figure(cells: list[Cell], path: Path, count: int = 4) -> Path | None:
    """Rows: one agent per condition; columns: the same frames with that agent's saliency overlaid."""
    agents = first_agents(cells)
    if not agents:
        return None
    cfg = OmegaConf.load(next(iter(agents.values())).path / ".hydra" / "config.yaml")
    frames = sample_frames(cfg, count)
    fig, axes = plt.subplots(len(agents), count, figsize=(2.2 * count, 2.3 * len(agents)), squeeze=False)
    for row, (condition, cell) in zip(axes, agents.items(), strict=True):
        maps = saliency(agent_from_checkpoint(cell.path / CHECKPOINT_NAME, torch.device("cpu")).eval(), frames)
        for ax, frame, heat in zip(row, frames, maps, strict=True):
            ax.imshow(frame[-1], cmap="gray")
            ax.imshow(heat, cmap="inferno", alpha=0.55)
            ax.set_xticks([]), ax.set_yticks([])
        row[0].set_ylabel(condition)
    fig.suptitle("Input-gradient saliency of the chosen action (same frames for every encoder)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@torch.no_grad()
def gameplay_gif(cell: Cell, path: Path, perturbation: str = "hard", steps: int = 400, seed: int = 0) -> Path:
    """The same agent playing the same seeded game clean (left) and under ``perturbation`` (right), as it sees it."""
    cfg = OmegaConf.load(cell.path / ".hydra" / "config.yaml")
    agent = agent_from_checkpoint(cell.path / CHECKPOINT_NAME, torch.device("cpu")).eval()
    sides = []
    for name in ("clean", perturbation):
        envs = make_env(cfg.env, 1, seed, instantiate(suite_config(cfg.perturbations, name)), num_threads=1)
        obs, _ = envs.reset()
        torch.manual_seed(seed)
        frames = [obs[0, -1]]
        with agent.acting("cpu"):  # weights cast to the agent's precision once, not at every step
            for _ in range(steps):
                action, _, _ = agent.act(torch.from_numpy(obs))
                obs, _, terminated, truncated, _ = envs.step(action.numpy())
                frames.append(obs[0, -1])
                if terminated[0] or truncated[0]:
                    break
        envs.close()
        sides.append(frames)
    length = max(len(s) for s in sides)
    images = [
        Image.fromarray(np.concatenate([s[min(t, len(s) - 1)] for s in sides], axis=1)).resize((336, 168))
        for t in range(length)
    ]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    return path


def sweep_agent_figures(sweep_dir: Path, cells: list[Cell], gif_steps: int = 400) -> dict[str, Path]:
    """Saliency maps and clean-vs-hard GIFs (of up to ``gif_steps`` agent steps) from each condition's first
    trained agent (cells with checkpoints), written into ``sweep_dir``; returns ``{name: path}``, empty when
    no cell left a checkpoint."""
    # Batch-1 forwards: a second torch thread only adds synchronisation, and where the jobs of a sweep
    # still hold the cores it waits for a time slice at every op (measured: 20x slower GIFs).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return agent_figures(sweep_dir, cells, gif_steps)
    finally:
        torch.set_num_threads(threads)


def agent_figures(sweep_dir: Path, cells: list[Cell], gif_steps: int) -> dict[str, Path]:
    out = {}
    figure = saliency_figure(cells, sweep_dir / "saliency.png")
    if figure:
        out["saliency"] = figure
    agents = first_agents(cells)
    with Progress("report: gameplay GIFs", len(agents), "GIFs") as progress:
        for condition, cell in agents.items():
            # A condition label holds spaces, '=' and '/' (its varying overrides): not in a file name.
            name = "gameplay_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", condition)
            out[name] = gameplay_gif(cell, sweep_dir / f"{name}.gif", steps=gif_steps)
            progress.update(note=condition)
    return out
