"""``stage=probe``: its game split and scores (``mean_f1``, ``probe_rows``), and a whole probe run through launch.py."""

import json

import numpy as np
import pytest
from helpers import TINY_PRETRAIN, cnn, compose_cfg, launch, new_agent, save_agent_checkpoint
from omegaconf import OmegaConf


@pytest.mark.slow
def test_probe_stage_on_a_tiny_frame_set(tmp_path):
    # A trained agent's checkpoint, as the train stage writes one (the agent's weights do not matter here).
    (tmp_path / "agent").mkdir()
    net = OmegaConf.to_container(compose_cfg([]).encoders.cnn.net, resolve=True)
    save_agent_checkpoint(new_agent(cnn()), tmp_path / "agent" / "checkpoint.pt", net)
    args = [
        *TINY_PRETRAIN,
        "stage=probe",
        "logger=none",
        "threads=1",
        "probe.encoders=[cnn,vit,jepa]",
        "encoders.vit.net.depth=1",
        "encoders.jepa.net.depth=1",
        "probe.checkpoints.cnn=agent/checkpoint.pt",
        "probe.suite=[clean,hard]",
        "probe.frames.num_frames=160",
        "probe.frames.num_envs=4",
        "probe.test_fraction=0.3",
        "hydra.run.dir=probe",
    ]
    result = launch(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    probes = json.loads((tmp_path / "probe" / "probes.json").read_text())
    assert list(probes["encoders"]) == ["cnn_agent", "vit_random", "jepa"]
    for res in probes["encoders"].values():
        assert 0 < res["diagnostics"]["content_share"] < 1 and res["diagnostics"]["effective_rank"] >= 1
        # Variables of low entropy on so few frames (a random agent rarely scores) are reported, not probed.
        assert set(res["probes"]) | set(probes["dropped_variables"]) == {
            "ball_x",
            "ball_y",
            "player_x",
            "blocks_hit_count",
            "score",
        }
        assert {"ball_x", "player_x"} <= set(res["probes"])
        for scores in res["probes"].values():
            assert set(scores) == {"clean", "hard"} and 0 <= scores["clean"]["f1"] <= 1
        assert set(res["probes"]["player_x"]["clean"]) == {"f1", "r2"}
        assert set(res["probe_inputs"]) == set(res["probes"]) and {*res["probe_inputs"].values()} <= {
            "standardised",
            "whitened",
        }
        assert set(res["nn_retrieval"]) == {"hard"} and 0 <= res["nn_retrieval"]["hard"] <= 1
    assert set(probes["majority_f1"]) == set(probes["encoders"]["jepa"]["probes"])
    assert 0 <= probes["majority_mean_f1"] < 1
    assert probes["train_frames"] + probes["test_frames"] == 160 and probes["inputs"] == "best"
    for figure in ("probe_pca.png", "probe_neighbours.png"):
        assert (tmp_path / "probe" / figure).stat().st_size > 1000
    assert np.isfinite(probes["encoders"]["jepa"]["mean_f1"]["hard"])
