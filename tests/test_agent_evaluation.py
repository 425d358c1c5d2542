"""A train job's final evaluation: with ``eval.episodes=0`` no game is played, and the policy's invariance
on identical states is measured all the same."""

import torch
from helpers import cnn, compose_cfg, new_agent
from omegaconf import OmegaConf

from jepa_rl.agent_evaluation import EvalSetup, final_evaluation
from jepa_rl.config.schema import EvalSchema
from jepa_rl.perturbations import VisualPerturbation
from jepa_rl.tracking import Tracker

ENV = OmegaConf.to_container(compose_cfg(["env.max_frames=600"]).env, resolve=True)


def test_no_games_still_measures_policy_invariance(tmp_path):
    torch.manual_seed(0)
    agent = new_agent(cnn())
    with torch.no_grad():
        agent.heads.actor.weight.mul_(300)  # a policy that reads its pixels strongly
    ev = EvalSchema(suite=["clean", "noise"], episodes=0, num_envs=2, invariance_states=16)
    named = {"clean": VisualPerturbation(name="clean"), "noise": VisualPerturbation(name="noise", noise_std=20.0)}
    setup = EvalSetup(ENV, ev, named, (1, 2, 3), torch.device("cpu"), 1, tmp_path / "cache")
    measured = final_evaluation(agent, setup, Tracker(), step=0)
    assert measured["eval"] == {} and measured["random_policy"] is None and measured["robustness_ratio"] is None
    assert measured["retention"] is None and "eval.episodes=0" in measured["retention_note"]
    assert measured["policy_invariance"]["noise"]["states"] == 16 and measured["policy_invariance"]["noise"]["tv"] > 0
    assert not (tmp_path / "cache").exists()  # no random-policy games either
