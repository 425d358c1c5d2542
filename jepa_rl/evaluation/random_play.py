"""The score of a uniformly random policy under the exact evaluation protocol, measured by this framework.

A random policy ignores the pixels, so its score does not depend on the perturbation: it is measured
once per game and protocol (sticky actions, no-op starts, frame cap, games per perturbation), clean,
and cached like frames and encoders; a mode or difficulty of the game is another game, measured on
its own. Every job of a sweep that shares the protocol reads the same one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jepa_rl.envs.game_shifts import GameShift
from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import cache_identity, make_eval_env
from jepa_rl.evaluation.games import play, random_policy
from jepa_rl.runtime.artifact_cache import cached_artifact
from jepa_rl.runtime.json_files import write_json
from jepa_rl.runtime.seeding import RANDOM_GAMES

SCORES_FILE = "scores.json"


def random_scores(
    cache_root: Path,
    env: Mapping[str, Any],
    episodes: int,
    num_envs: int,
    sticky_actions: float,
    threads: int = 0,
    shift: GameShift | None = None,
) -> dict:
    """``{mean, std, returns, capped}`` of a uniformly random policy over ``episodes`` full games of
    ``env``, in the game's default variant or in another mode or difficulty (``shift``)."""
    num_envs = min(num_envs, episodes)
    spec = {"env": cache_identity(env), "episodes": episodes, "num_envs": num_envs, "sticky_actions": sticky_actions}
    spec["actions"] = "counted games only"  # since play draws no action for the games past their share
    variant = {"mode": shift.mode, "difficulty": shift.difficulty} if shift and shift.changes_the_game else {}
    if variant:
        spec["variant"] = variant

    def build(tmp: Path) -> None:
        clean = VisualPerturbation(name="clean", **variant)
        envs = make_eval_env(env, num_envs, clean, (0, RANDOM_GAMES), sticky_actions, threads)
        try:
            scores = play(random_policy(envs.num_actions, seed=0), envs, episodes, "random policy")
        finally:
            envs.close()
        write_json(scores, tmp / SCORES_FILE)

    return json.loads((cached_artifact(cache_root, "random_scores", spec, build) / SCORES_FILE).read_text())
