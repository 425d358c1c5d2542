"""PPO for Atari with CleanRL ppo_atari's hyperparameters, metric names and update rule."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jepa_rl.envs.pipeline import AtariPipeline
from jepa_rl.models.agent import Agent
from jepa_rl.ranges import require_positive
from jepa_rl.rl.augmentation import AUGMENTATIONS, random_shift
from jepa_rl.rl.rollout import Batch, EpisodeLog, Rollout, gae
from jepa_rl.runtime.progress import Progress
from jepa_rl.runtime.tracking import Tracker

log = logging.getLogger(__name__)


def check_hyperparameters(h: dict) -> None:
    """Raise ``ValueError`` naming the first hyperparameter that cannot work, and the fix."""
    positive = ("num_envs", "num_steps", "update_epochs", "num_minibatches", "learning_rate", "max_grad_norm")
    require_positive(**{name: h[name] for name in positive})
    for name in ("gamma", "gae_lambda"):
        if not 0 <= h[name] <= 1:
            raise ValueError(f"{name}={h[name]} must be in [0, 1]")
    for name in ("clip_coef", "ent_coef", "vf_coef"):
        if h[name] < 0:
            raise ValueError(f"{name}={h[name]} must be >= 0")
    rollout = h["num_envs"] * h["num_steps"]
    if h["total_timesteps"] < rollout:
        raise ValueError(
            f"total_timesteps={h['total_timesteps']} is smaller than one rollout (num_envs * num_steps = "
            f"{rollout}); raise ppo.total_timesteps or shrink the rollout"
        )
    if h["augment"] not in AUGMENTATIONS:
        raise ValueError(f"augment={h['augment']} is not an augmentation; choose one of {', '.join(AUGMENTATIONS)}")
    if rollout % h["num_minibatches"]:
        raise ValueError(f"num_minibatches={h['num_minibatches']} must divide the batch of {rollout} transitions")
    if h["norm_adv"] and rollout == h["num_minibatches"]:  # the std of one advantage is NaN, and so is the loss
        raise ValueError(
            f"num_minibatches={rollout} leaves one transition per minibatch (norm_adv needs 2+); use fewer"
        )


@dataclass
class PPOSettings:
    """``ppo``: CleanRL ppo_atari's hyperparameters, under its names: the config group's schema, checked here."""

    total_timesteps: int = 10_000_000  # agent steps of training
    num_envs: int = 8  # parallel environments
    num_steps: int = 128  # steps per environment per rollout
    learning_rate: float = 2.5e-4  # Adam's learning rate (the heads'; the encoder's is scaled by lr_scale)
    anneal_lr: bool = True  # linear decay to 0 over training
    gamma: float = 0.99  # discount
    gae_lambda: float = 0.95  # GAE's lambda
    num_minibatches: int = 4  # minibatches per epoch (must divide num_envs * num_steps)
    update_epochs: int = 4  # passes over each rollout
    norm_adv: bool = True  # normalise advantages per minibatch
    clip_coef: float = 0.1  # PPO's ratio clip (and the value clip)
    clip_vloss: bool = True  # clip the value loss as CleanRL does
    ent_coef: float = 0.01  # entropy bonus
    vf_coef: float = 0.5  # value loss weight
    max_grad_norm: float = 0.5  # gradient clipping
    target_kl: float | None = None  # stop an update's epochs early above this KL (null: never)
    clip_rewards: bool = True  # learner-side sign(reward); evaluation and logged scores stay raw
    life_loss: bool = True  # learner-side: a lost life ends the bootstrapped return (EpisodicLifeEnv)
    autocast: str = "auto"  # auto (bf16 where the hardware has it) | bf16 | none: encoder precision; heads fp32
    augment: str = "none"  # none | shift: DrQ's random shift (pad 4, border repeated) of each update minibatch

    def __post_init__(self) -> None:
        check_hyperparameters(vars(self))


class PPO:
    """Proximal Policy Optimisation (clipped objective, clipped value loss, annealed lr)."""

    def __init__(self, hp: PPOSettings) -> None:
        self.hp = hp
        # Derived once, as CleanRL does.
        self.batch_size = hp.num_envs * hp.num_steps
        self.minibatch_size = self.batch_size // hp.num_minibatches
        self.num_iterations = hp.total_timesteps // self.batch_size

    def learn(
        self,
        agent: Agent,
        envs: AtariPipeline | Sequence[AtariPipeline],
        optimizer: torch.optim.Optimizer,
        tracker: Tracker,
        device: torch.device,
        start_iteration: int = 0,
        episodes_csv: Path | None = None,
        on_iteration_end: Callable[[int, int, dict], None] | None = None,
    ) -> dict[str, float]:
        """Train ``agent`` from ``start_iteration`` to the end; returns summary training stats.

        ``envs`` is one pipeline of ``num_envs`` environments, or groups of them that together hold
        ``num_envs`` (see ``_rollout``). ``on_iteration_end(iteration, global_step, stats)`` runs after
        every update (checkpointing); ``stats`` holds ``train_sps``, ``final_train_return`` and that
        iteration's ``rollout_seconds`` (acting, with GAE) and ``update_seconds``.
        """
        groups = [envs] if isinstance(envs, AtariPipeline) else list(envs)
        if sum(env.num_envs for env in groups) != self.hp.num_envs:
            raise ValueError(
                f"the environment groups hold {[env.num_envs for env in groups]} envs, "
                f"not ppo.num_envs={self.hp.num_envs}"
            )
        frozen = agent.encoder_frozen
        obs_shape, obs_dtype = (
            ((agent.encoder.feature_dim,), torch.float32) if frozen else (groups[0].observation_shape, torch.uint8)
        )
        buf = Rollout.allocate(self.hp.num_steps, self.hp.num_envs, obs_shape, obs_dtype, device)

        starts = [env.reset() for env in groups]
        next_obs = torch.cat([torch.as_tensor(obs, device=device) for obs, _ in starts])
        lives = np.concatenate([info["lives"] for _, info in starts])
        global_step = start_iteration * self.batch_size
        seg_start, seg_step0 = time.perf_counter(), global_step
        stats: dict = {}
        episodes = EpisodeLog(episodes_csv)
        total = self.num_iterations * self.batch_size
        progress = Progress("train", total, "steps", initial=global_step, first=True)  # the ETA after one update
        # Several groups act and step each in their own thread, with an equal share of the torch threads.
        share = max(1, torch.get_num_threads() // len(groups))
        pool = ThreadPoolExecutor(len(groups), "rollout", torch.set_num_threads, (share,)) if len(groups) > 1 else None
        try:
            for iteration in range(start_iteration, self.num_iterations):
                self.set_learning_rate(optimizer, iteration)
                started = time.perf_counter()
                next_obs, lives, global_step, last_value = self._rollout(
                    agent, groups, buf, next_obs, lives, global_step, episodes, pool
                )
                advantages, returns = gae(
                    buf.rewards, buf.values, buf.dones, last_value, self.hp.gamma, self.hp.gae_lambda
                )
                collected = time.perf_counter()
                metrics = self._update(agent, optimizer, buf, advantages, returns, frozen)
                updated = time.perf_counter()
                # Where the iteration's time went: acting in the envs, or learning from what they gave.
                split = {"rollout_seconds": collected - started, "update_seconds": updated - collected}
                sps = (global_step - seg_step0) / (updated - seg_start)
                metrics.update({"charts/SPS": sps, "charts/learning_rate": optimizer.param_groups[0]["lr"]})
                metrics.update({f"perf/{k}": v for k, v in split.items()})
                metrics.update(episodes.end_iteration())
                tracker.log(metrics, step=global_step)
                ret = episodes.recent_mean()
                shown = f"sps {sps:.0f}  return {'-' if ret is None else f'{ret:.1f}'}"
                progress.update(self.batch_size, note=shown)
                if progress.bar.disable and (iteration + 1) % max(1, self.num_iterations // 100) == 0:
                    log.info("step %d/%d  %s", global_step, progress.total, shown)  # and each 1% of training
                stats = {"train_sps": sps, "final_train_return": ret, **split}
                if on_iteration_end:
                    paused = time.perf_counter()
                    on_iteration_end(iteration + 1, global_step, stats)
                    # Checkpoints and snapshot evaluations are not training: train_sps leaves them out.
                    seg_start += time.perf_counter() - paused
        finally:
            if pool:
                pool.shutdown()
            progress.close()
            episodes.close()
        return stats

    def set_learning_rate(self, optimizer: torch.optim.Optimizer, iteration: int) -> None:
        """Each parameter group's rate for ``iteration``: its ``base_lr`` annealed linearly to 0 over training
        (``anneal_lr``), as CleanRL's. A pure function of the iteration, so a resumed run needs only ``base_lr``."""
        if self.hp.anneal_lr:
            frac = 1.0 - iteration / self.num_iterations
            for group in optimizer.param_groups:
                group["lr"] = frac * group["base_lr"]

    def _rollout(
        self,
        agent: Agent,
        groups: list[AtariPipeline],
        buf: Rollout,
        next_obs: torch.Tensor,
        lives: np.ndarray,
        global_step: int,
        on_episode: Callable[[int, int, float, int], None],
        pool: ThreadPoolExecutor | None = None,
    ) -> tuple[torch.Tensor, np.ndarray, int, torch.Tensor]:
        """Fill ``buf`` with ``num_steps`` steps of every env; ``on_episode(step, env, score, length)`` per game.

        Each group of environments runs the plain act-then-step loop, with several groups each in a
        thread of ``pool`` (without one, one group after the other): while one group's emulator
        steps, the policy acts for another group, and two loops keep two cores busy (torch releases
        the GIL inside its ops, ale-py while it emulates). Every loop samples its actions from its
        own generator, seeded from torch's global one, and finished games are reported in step
        order, so a run repeats exactly however the threads interleave. Returns
        ``(next_obs, lives, global_step, value of next_obs)``.
        """
        spans, first = [], 0
        for env in groups:
            spans.append(slice(first, first + env.num_envs))
            first += env.num_envs
        frozen, device = agent.encoder_frozen, next_obs.device
        next_obs, lives = next_obs.clone(), lives.copy()  # filled in place, group by group
        seeds = torch.randint(2**62, (len(groups),)).tolist()
        games: list[list[tuple[int, int, float, int]]] = [[] for _ in groups]

        def run(g: int) -> None:
            """Act and step group ``g`` for the whole rollout (autocast and grad mode are per thread)."""
            env, span, generator = groups[g], spans[g], torch.Generator(device).manual_seed(seeds[g])
            with agent.acting(device.type):  # one autocast region: the weights are cast once per rollout
                for step in range(self.hp.num_steps):
                    h = agent.features(next_obs[span])
                    action, buf.logprobs[step, span], buf.values[step, span] = agent.act_from_features(
                        h, generator=generator
                    )
                    buf.obs[step, span], buf.actions[step, span] = (h if frozen else next_obs[span]), action
                    obs, reward, terminated, truncated, info = env.step(action.cpu().numpy())
                    done = terminated | truncated
                    learner_done = done.copy()
                    if self.hp.life_loss:  # CleanRL's EpisodicLifeEnv, without touching the env
                        learner_done |= info["lives"] < lives[span]
                    lives[span] = info["lives"]
                    if self.hp.clip_rewards:
                        reward = np.sign(reward)
                    buf.rewards[step, span] = torch.as_tensor(reward, device=device)
                    buf.dones[step, span] = torch.as_tensor(learner_done, dtype=torch.float32, device=device)
                    next_obs[span] = torch.as_tensor(obs, device=device)
                    steps_done = global_step + (step + 1) * self.hp.num_envs
                    for i in np.flatnonzero(done):
                        score, length = float(info["episode_return"][i]), int(info["episode_length"][i])
                        games[g].append((steps_done, span.start + int(i), score, length))

        if pool is None:  # the groups are independent: one after the other gives the same rollout
            for g in range(len(groups)):
                run(g)
        else:
            list(pool.map(run, range(len(groups))))  # re-raises a group's exception here
        for game in sorted(itertools.chain(*games)):
            on_episode(*game)
        with agent.acting(device.type):
            return next_obs, lives, global_step + self.batch_size, agent.value(next_obs)

    def _update(
        self,
        agent: Agent,
        optimizer: torch.optim.Optimizer,
        buf: Rollout,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        features: bool = False,
    ) -> dict[str, float]:
        """``update_epochs`` passes of clipped-PPO minibatch SGD over the flattened rollout.

        ``buf.obs`` holds observations ``[T, N, 4, 84, 84]``, or encoder features ``[T, N, F]``
        when ``features`` is True (frozen encoder: no encoder forward or backward here).
        """
        batch = Batch.flatten(buf, advantages, returns)
        if self.hp.augment == "shift" and not features:
            batch = self._shifted(agent, batch)
        clipfracs = []
        for _ in range(self.hp.update_epochs):
            # Drawn on the CPU: its generator's state is in the checkpoint, so a resumed run on a GPU
            # shuffles as the uninterrupted one would.
            perm = torch.randperm(self.batch_size).to(batch.obs.device, non_blocking=True)
            for start in range(0, self.batch_size, self.minibatch_size):
                mb = perm[start : start + self.minibatch_size]
                loss, (pg_loss, v_loss, entropy_loss, logratio) = self._loss(agent, batch, mb, features)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                with torch.no_grad():
                    ratio = logratio.exp()
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    # Kept on the device: an .item() per minibatch would wait for the GPU each time.
                    clipfracs.append(((ratio - 1.0).abs() > self.hp.clip_coef).float().mean())
                nn.utils.clip_grad_norm_(agent.parameters(), self.hp.max_grad_norm)
                optimizer.step()
            if self.hp.target_kl is not None and approx_kl > self.hp.target_kl:
                break

        var_y = batch.returns.var()
        explained_var = float("nan") if var_y == 0 else float(1 - (batch.returns - batch.values).var() / var_y)
        return {
            "losses/value_loss": v_loss.item(),
            "losses/policy_loss": pg_loss.item(),
            "losses/entropy": entropy_loss.item(),
            "losses/old_approx_kl": old_approx_kl.item(),
            "losses/approx_kl": approx_kl.item(),
            "losses/clipfrac": float(torch.stack(clipfracs).double().mean()),
            "losses/explained_variance": explained_var,
        }

    def _shifted(self, agent: Agent, batch: Batch) -> Batch:
        """The batch with each observation shifted once for the whole update (DrQ's random shift), and its
        old log-probabilities and values recomputed on those same views by the policy before the update.

        PPO's ratio then compares the new and the old policy on one view: on the first minibatch it is
        exactly 1. Old terms from the unshifted frames would mix the augmentation into the ratio and its
        clip, as if the policy had changed. Advantages and returns stay the rollout's.
        """
        obs = random_shift(batch.obs)
        logprobs, values = torch.empty_like(batch.logprobs), torch.empty_like(batch.values)
        with agent.acting(obs.device.type):
            for start in range(0, self.batch_size, self.minibatch_size):
                part = slice(start, start + self.minibatch_size)
                logp, _, value = agent.evaluate_features(agent.features(obs[part]), batch.actions[part])
                logprobs[part], values[part] = logp.float(), value.float()
        return dataclasses.replace(batch, obs=obs, logprobs=logprobs, values=values)

    def _loss(
        self, agent: Agent, batch: Batch, mb: torch.Tensor, features: bool
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """CleanRL's PPO loss on the minibatch ``mb`` (indices into ``batch``).
        Returns ``(loss, (pg_loss, v_loss, entropy, logratio))``, the terms detached (``logratio`` per sample)."""
        # index_select, not obs[mb]: advanced indexing copies uint8 rows far slower on CPU (docs/performance.md).
        obs = batch.obs.index_select(0, mb)
        h = obs if features else agent.features(obs)
        newlogprob, entropy, newvalue = agent.evaluate_features(h, batch.actions[mb])
        logratio = newlogprob - batch.logprobs[mb]
        ratio = logratio.exp()

        adv = batch.advantages[mb]
        if self.hp.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        clipped = torch.clamp(ratio, 1 - self.hp.clip_coef, 1 + self.hp.clip_coef)
        pg_loss = torch.max(-adv * ratio, -adv * clipped).mean()

        returns, values = batch.returns[mb], batch.values[mb]
        v_err = (newvalue - returns) ** 2
        if self.hp.clip_vloss:
            v_clipped = values + torch.clamp(newvalue - values, -self.hp.clip_coef, self.hp.clip_coef)
            v_err = torch.max(v_err, (v_clipped - returns) ** 2)
        v_loss = 0.5 * v_err.mean()

        entropy_loss = entropy.mean()
        loss = pg_loss - self.hp.ent_coef * entropy_loss + v_loss * self.hp.vf_coef
        return loss, tuple(t.detach() for t in (pg_loss, v_loss, entropy_loss, logratio))
