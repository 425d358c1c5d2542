"""What a rerun finds in its directory: checkpoints and results of the same config, or a clear refusal."""

import copy
import json

import pytest
from helpers import CORRUPTIONS, compose_cfg, corrupt

from jepa_rl.config.fingerprint import results_fingerprint, training_fingerprint
from jepa_rl.runtime.checkpoint import CheckpointError, save_checkpoint
from jepa_rl.runtime.resumption import checkpoint_to_resume, finished_results, first_difference, keep_rows_until


def test_first_difference_names_the_dotted_key():
    assert first_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == "a.c"
    assert first_difference({"a": 1}, {"a": 1}) is None


def test_results_of_another_training_config_are_refused_and_other_evaluation_reruns(tmp_path):
    cfg = compose_cfg(["experiment=smoke"])
    path = tmp_path / "results.json"
    fingerprint = results_fingerprint(cfg)
    path.write_text(json.dumps({"eval": {}, "config": fingerprint}))
    assert finished_results(path, fingerprint) is not None
    with pytest.raises(CheckpointError, match="trained with a different ppo.num_envs"):
        finished_results(path, results_fingerprint(compose_cfg(["experiment=smoke", "ppo.num_envs=8"])))
    assert finished_results(path, results_fingerprint(compose_cfg(["experiment=smoke", "eval.episodes=3"]))) is None
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="results.json is not valid JSON"):
        finished_results(path, fingerprint)


def test_episode_rows_after_the_checkpoint_are_dropped_and_a_corrupt_file_is_named(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("100,0,2.0,50\n\n300,1,4.0,70\n")
    keep_rows_until(path, 200)
    assert path.read_text() == "step,env,score,length\n100,0,2.0,50\n"  # the header is kept, or added
    keep_rows_until(path, 200)
    assert path.read_text() == "step,env,score,length\n100,0,2.0,50\n"
    path.write_text("100,0,2.0,50\n1x0,0\n")
    with pytest.raises(CheckpointError, match="episodes.csv line 2 is not 'step,env,score,length'"):
        keep_rows_until(path, 200)


def test_a_checkpoint_of_another_training_config_is_never_resumed(tmp_path):
    path = tmp_path / "checkpoint.pt"
    assert checkpoint_to_resume(path, training_fingerprint(compose_cfg(["experiment=smoke"]))) is None  # a fresh start
    fingerprint = training_fingerprint(compose_cfg(["experiment=smoke"]))
    save_checkpoint({"config": fingerprint, "global_step": 256}, path)
    assert checkpoint_to_resume(path, fingerprint)["global_step"] == 256
    other = training_fingerprint(compose_cfg(["experiment=smoke", "ppo.learning_rate=0.001"]))
    with pytest.raises(CheckpointError, match="trained with a different ppo.learning_rate; rerun with the original"):
        checkpoint_to_resume(path, other)
    # Evaluation settings are not part of what a checkpoint was trained on.
    assert checkpoint_to_resume(path, training_fingerprint(compose_cfg(["experiment=smoke", "eval.episodes=3"])))


def test_a_checkpoint_recorded_before_the_packages_moved_still_resumes(tmp_path):
    """Its config names classes by their old module paths (``_target_``): they say how, not what, it trained."""
    fingerprint = training_fingerprint(compose_cfg(["experiment=smoke"]))
    old = copy.deepcopy(fingerprint)
    old["env"]["_target_"], old["ppo"]["_target_"] = "jepa_rl.envs.AtariPipeline", "jepa_rl.ppo.PPO"
    old["encoder"]["net"]["_target_"] = "jepa_rl.encoders.NatureCNN"
    save_checkpoint({"config": old, "global_step": 512}, tmp_path / "checkpoint.pt")
    assert checkpoint_to_resume(tmp_path / "checkpoint.pt", fingerprint)["global_step"] == 512


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_results_or_episode_rows_are_one_line_naming_the_file(tmp_path, kind):
    """A rerun meets them before any work; the file holds finished work, so it is named, never overwritten."""
    fingerprint = results_fingerprint(compose_cfg(["experiment=smoke"]))
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"eval": {}, "config": fingerprint}))
    corrupt(results, kind)
    with pytest.raises(CheckpointError, match=f"{results} (is not|holds a JSON).*; delete it to evaluate"):
        finished_results(results, fingerprint)
    rows = tmp_path / "episodes.csv"
    rows.write_text("100,0,2.0,50\n150,1,3.0,60\n300,1,4.0,70\n")
    corrupt(rows, kind)
    if kind in ("zero_length", "truncated"):  # no rows yet; a last row cut short by a kill is dropped
        keep_rows_until(rows, 200)
        assert rows.read_text() == "step,env,score,length\n" + ("100,0,2.0,50\n" if kind == "truncated" else "")
    else:
        with pytest.raises(CheckpointError, match=f"{rows} (is not text|line 1 is not)"):
            keep_rows_until(rows, 200)
