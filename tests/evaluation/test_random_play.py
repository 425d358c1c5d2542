"""The random-policy baseline: games of its own, the same for every job of a sweep, whatever it trained or sees."""

from helpers import compose_cfg
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation
from jepa_rl.envs.pipeline import make_eval_env
from jepa_rl.evaluation import random_play as random_baseline
from jepa_rl.evaluation.games import play, random_policy
from jepa_rl.evaluation.random_play import random_scores
from jepa_rl.runtime.seeding import RANDOM_GAMES

ENV = {**OmegaConf.to_container(compose_cfg().env, resolve=True), "max_frames": 400}  # 100 agent steps a game


def test_random_play_is_measured_on_the_games_of_one_fixed_seed(tmp_path, monkeypatch):
    """Nothing of a job (its seed, encoder, perturbations) reaches the baseline: its emulators are seeded
    ``(0, RANDOM_GAMES)``, and its scores are those of that seed's games, replayed here by hand."""
    seeds = []

    def seen(env, num_envs, perturbation, seed, *args, **kwargs):  # the real factory, its seed noted
        seeds.append(seed)
        return make_eval_env(env, num_envs, perturbation, seed, *args, **kwargs)

    monkeypatch.setattr(random_baseline, "make_eval_env", seen)
    measured = random_scores(tmp_path, ENV, episodes=2, num_envs=2, sticky_actions=0.25, threads=1)
    assert seeds == [(0, RANDOM_GAMES)]
    envs = make_eval_env(ENV, 2, VisualPerturbation(name="clean"), (0, RANDOM_GAMES), sticky_actions=0.25, threads=1)
    try:
        replayed = play(random_policy(envs.num_actions, seed=0), envs, episodes=2)
    finally:
        envs.close()
    assert measured == replayed and len(measured["returns"]) == 2
