"""Published random and human scores per game (Mnih et al. 2015 / Badia et al. 2020): the scale on which a
score is "a share of the way from random to human play". The Atari-5 of Aitchison et al. 2022 are among them.

Evaluation uses the gap between them to ask that clean play clear its floor by a share of the game's range;
the sweep uses them for human-normalised scores (with its own measured random play where it has one).
"""

from __future__ import annotations

REFERENCE_SCORES = {  # env_id -> (random, human)
    "ALE/Breakout-v5": (1.7, 30.5),
    "ALE/Pong-v5": (-20.7, 14.6),
    "ALE/BattleZone-v5": (2360.0, 37187.5),
    "ALE/DoubleDunk-v5": (-18.6, -16.4),
    "ALE/NameThisGame-v5": (2292.3, 8049.0),
    "ALE/Phoenix-v5": (761.4, 7242.6),
    "ALE/Qbert-v5": (163.9, 13455.0),
}


def human_random_gap(env_id: str) -> float | None:
    """Human minus random published score of ``env_id``; None for a game without published scores."""
    if env_id not in REFERENCE_SCORES:
        return None
    random, human = REFERENCE_SCORES[env_id]
    return human - random


def minimum_skill(env_id: str, share: float) -> float:
    """The points clean play must clear its floor by for retention: ``share`` of the game's published
    random-to-human range (``eval.min_skill_share``); 0 for a game without published scores."""
    gap = human_random_gap(env_id)
    return share * gap if gap is not None else 0.0
