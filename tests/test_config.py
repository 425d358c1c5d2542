"""Every config option composes; every bad input is one line naming the key and the fix, before work."""

import shutil

import pytest
from conftest import CONF, compose_cfg, launch
from hydra.utils import instantiate

from jepa_rl.config import validate

GROUP_OPTIONS = [
    (group, path.stem)
    for group in ("env", "encoder", "perturbation", "ppo", "pretrain", "probe", "eval", "logger", "experiment")
    for path in sorted((CONF / group).glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes_and_validates(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    validate(cfg)
    assert cfg.seed == 1
    instantiate(cfg.perturbation)
    instantiate(cfg.encoder.net)


def test_presets_scale():
    assert compose_cfg([]).ppo.total_timesteps == 10_000_000
    assert compose_cfg(["experiment=study"]).ppo.total_timesteps == 10_000_000
    assert compose_cfg(["experiment=cpu"]).ppo.total_timesteps == 1_000_000
    smoke = compose_cfg(["experiment=smoke"])
    assert smoke.ppo.total_timesteps < 10_000 and smoke.experiment_name == "smoke"


def test_study_values_are_cleanrl_ppo_atari():
    ppo = compose_cfg([]).ppo
    assert (ppo.num_envs, ppo.num_steps, ppo.learning_rate, ppo.clip_coef) == (8, 128, 2.5e-4, 0.1)
    assert (ppo.num_minibatches, ppo.update_epochs, ppo.ent_coef, ppo.vf_coef) == (4, 4, 0.01, 0.5)
    env = compose_cfg([]).env
    assert (env.frame_skip, env.frame_stack, env.sticky_actions, env.max_frames) == (4, 4, 0.25, 108_000)


BAD_INPUTS = [
    (["encoder=resnet"], "encoder=resnet is not a known option"),
    (["env=tetris"], "env=tetris is not a known option"),
    (["perturbation.noise_std=-1"], "noise_std"),
    (["perturbations.hard.noise_std=-5"], "perturbations.hard"),
    (["ppo.num_envs=0"], "ppo.num_envs=0"),
    (["ppo.num_envs=-2"], "ppo.num_envs=-2"),
    (["ppo.total_timesteps=100"], "ppo.total_timesteps=100 is smaller than one rollout"),
    (["env_groups=3"], "env_groups=3 must be auto or a positive number that divides ppo.num_envs=4"),
    (["env_groups=0"], "env_groups=0"),
    (["eval.suite=[clean,fog]"], "unknown perturbation 'fog'"),
    (["encoder.lr_scale=-0.1"], "encoder.lr_scale"),
    (["hydra.run.dir={tmp}/a_file/run"], "not writable"),
    (["encoder=jepa", "encoder.lr_scale=-1"], "encoder.lr_scale=-1"),
    (["encoder=jepa", "pretrain.masks.context_scale=[0.1,0.1]"], "keeps fewer than min_context=4"),
    (["encoder=ae", "encoder.weights={tmp}/missing.pt"], "encoder.weights="),
    (["encoder=jepa", "encoder.net.pool=attention"], "a frozen encoder cannot train"),
    (["encoder=vit", "encoder.objective=byol"], "encoder.objective=byol"),
    (["stage=pretrain"], "stage=pretrain needs a pretrained encoder"),
    (["stage=evaluate"], "stage=evaluate is not a stage"),
    (["stage=probe", "probe.encoders=[resnet]"], "unknown encoder 'resnet'"),
    (["stage=probe", "probe.checkpoints.cnn={tmp}/missing.pt"], "probe.checkpoints.cnn"),
    (["pretrain.frames.policy_fraction=0.5"], "needs pretrain.frames.policy_checkpoint"),
    (["pretrain.batch_size=0"], "pretrain.batch_size=0"),
    (["pretrain.autocast=fp16"], "pretrain.autocast=fp16 must be auto, none or bf16"),
    (["-m", "hydra/launcher=slrum"], "hydra/launcher=slrum is not a known option"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_before_any_work(tmp_path, args, message):
    (tmp_path / "a_file").write_text("a file where a directory is expected")
    args = [a.format(tmp=tmp_path) for a in args]
    result = launch(["experiment=smoke", "logger=none", *args], tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and lines[0].startswith("error: ")
    assert not list(tmp_path.rglob("checkpoint.pt")) and not list(tmp_path.rglob("wandb"))
    assert not (tmp_path / "cache").exists()  # nothing collected or pretrained


def test_unknown_key_is_rejected(tmp_path):
    result = launch(["experiment=smoke", "logger=none", "ppo.learning_rat=0.1"], tmp_path)
    assert result.returncode != 0
    assert "ppo.learning_rat" in result.stderr


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="on a SLURM machine this would submit jobs")
def test_slurm_launcher_without_slurm_is_one_line(tmp_path):
    result = launch(["-m", "hydra/launcher=slurm", "experiment=smoke"], tmp_path)
    assert result.returncode != 0 and result.stderr.strip().startswith("error: ")
    assert "no sbatch here" in result.stderr and len(result.stderr.strip().splitlines()) == 1
