"""Policy invariance: how much a perturbation changes what the agent would do in the very same game states,
measured against how much the game's own states change it.

The agent's clean evaluation games are played with every pixel perturbation of the suite attached as a
view (``AtariPipeline``'s ``views``): each emulator frame is seen clean and perturbed at once. A uniform
sample of the states of those whole games (a reservoir, so late states count as much as early ones) is
read by the policy clean and through every view. Per perturbation it reports:

- ``tv``: the mean total-variation distance between the clean and the perturbed action distributions,
  and ``greedy_agreement``, the share of states whose most likely action is unchanged;
- ``game_tv``: the mean TV between two clean states of the same game: how much the game itself moves
  the policy;
- ``tv_ratio``: ``tv / game_tv``. A policy that ignores the pixels has a TV of 0 under any perturbation,
  which looks perfectly invariant; it also has a ``game_tv`` of 0, so its ratio is undefined (None)
  rather than perfect. Below 1, a perturbation moves the policy less than the game's own states do.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.models.agent import Agent

# A policy that ignores its frames (a frozen encoder with dead weights) moves by 0 between two states of one
# game; one that moves by less than half a percent reads them too little for a ratio to it to mean anything
# (a random-init Nature-CNN with a random head moves by about 1% on Breakout). Its ratio is undefined.
MIN_GAME_TV = 0.005


def compare(clean: torch.Tensor, perturbed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per state: the TV distance between two action distributions (log-probs ``[B, A]``), greedy agreement."""
    tv = 0.5 * (clean.exp() - perturbed.exp()).abs().sum(-1)
    return tv, (clean.argmax(-1) == perturbed.argmax(-1)).float()


class StateSampler:
    """A uniform sample of ``capacity`` states of clean-driven games (reservoir sampling over every step of
    every counted game), each read by ``agent`` clean and through every one of ``views``.

    ``observe`` is called by ``play`` before each step, inside the agent's acting region; only the states it
    keeps are read by the policy, so a long game costs a forward pass on a shrinking share of its steps.
    """

    def __init__(
        self,
        agent: Agent,
        views: dict[str, VisualPerturbation],
        capacity: int,
        seed: tuple[int, ...],
        device: torch.device,
    ) -> None:
        self.agent, self.views, self.capacity, self.device = agent, views, capacity, device
        self.rng = np.random.default_rng(list(seed))
        self.seen = 0
        # Per kept state: its log-probs [1 + views, actions] (clean first), its game (environment, the game's
        # index there) and its place among every state offered (1 = the first).
        self.kept: list[tuple[torch.Tensor, tuple[int, int], int]] = []

    def observe(self, obs: np.ndarray, info: dict, live: np.ndarray, games: np.ndarray) -> None:
        """Offer the states of the environments ``live`` (whose ``games[i]``-th game counts) to the sample."""
        taken = []  # (environment, slot, its place among the states offered)
        for i in np.flatnonzero(live):
            self.seen += 1
            slot = len(self.kept) + len(taken) if self.seen <= self.capacity else self.rng.integers(self.seen)
            if slot < self.capacity:
                taken.append((int(i), int(slot), self.seen))
        if not taken:
            return
        envs = [i for i, _, _ in taken]
        batch = [obs[envs], *(info["views"][name][envs] for name in self.views)]
        logp = self.agent.log_probs(torch.cat([torch.as_tensor(b, device=self.device) for b in batch]))
        logp = logp.float().view(len(batch), len(taken), -1).cpu()
        for j, (i, slot, place) in enumerate(taken):
            state = (logp[:, j], (i, int(games[i])), place)
            if slot == len(self.kept):
                self.kept.append(state)
            else:
                self.kept[slot] = state

    def game_tv(self, clean: torch.Tensor) -> float | None:
        """The mean TV between pairs of sampled states of the same game (each state paired with the next of
        its game in a shuffled order); None when no game has two sampled states."""
        by_game = defaultdict(list)
        for k, (_, game, _) in enumerate(self.kept):
            by_game[game].append(k)
        firsts, seconds = [], []
        for states in by_game.values():
            if len(states) > 1:
                order = self.rng.permutation(states)
                firsts.extend(order), seconds.extend(np.roll(order, -1))
        if not firsts:
            return None
        return float(compare(clean[firsts], clean[seconds])[0].mean())

    def measures(self) -> dict[str, dict[str, float | int | None]]:
        """``{view: {tv, greedy_agreement, states, game_tv, tv_ratio}}`` over the sampled states."""
        if not self.kept:
            return {}
        logp = torch.stack([state[0] for state in self.kept])
        clean, game_tv = logp[:, 0], self.game_tv(logp[:, 0])
        looks = game_tv is not None and game_tv >= MIN_GAME_TV
        out = {}
        for v, name in enumerate(self.views, 1):
            tv, same = compare(clean, logp[:, v])
            out[name] = {
                "tv": float(tv.mean()),
                "greedy_agreement": float(same.mean()),
                "states": len(self.kept),
                "game_tv": game_tv,
                "tv_ratio": float(tv.mean()) / game_tv if looks else None,
            }
        return out
