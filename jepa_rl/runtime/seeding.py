"""Seeds: the global generators of a job, and the purposes its emulator streams are told apart by."""

from __future__ import annotations

import random

import numpy as np
import torch

# Emulator seeds derive from (seed, purpose, ...): training and evaluation never play the same game,
# and the random-policy baseline (evaluation/random_play.py) plays games of its own. The blind policy
# (evaluation/blind_play.py) plays the evaluation's games, drawing its actions from BLIND_ACTIONS; policy
# invariance samples the clean games' states from INVARIANCE_STATES; an encoder is shown SIGHT_GAMES' frames
# to check that it sees.
TRAIN_GAMES, EVAL_GAMES, RANDOM_GAMES, BLIND_ACTIONS, INVARIANCE_STATES, SIGHT_GAMES = 0, 1, 2, 3, 4, 5


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the emulator and perturbations take their own seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # As CleanRL: cuDNN's default algorithm choice may accumulate with atomics, so a GPU run would not repeat.
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
