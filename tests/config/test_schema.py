"""The typed schemas: every option composes, the presets scale, the schemas are the one source of defaults."""

import inspect

import pytest
from helpers import CONF, compose_cfg
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from jepa_rl.envs.pipeline import AtariPipeline, AtariSettings
from jepa_rl.job import validate
from jepa_rl.models.encoders import NatureCNN, ViTEncoder
from jepa_rl.pretrain.settings import PretrainSettings
from jepa_rl.rl.ppo import PPO, PPOSettings

GROUP_OPTIONS = [
    (group, path.stem)
    for group in ("env", "encoder", "perturbation", "ppo", "pretrain", "probe", "eval", "logger", "benchmark")
    for path in sorted((CONF / group).glob("*.yaml"))
] + [("experiment", path.stem) for path in sorted((CONF / "experiment").glob("*.yaml"))]


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


def test_each_hyperparameter_is_declared_once():
    """PPO and the pipeline take their settings dataclass, which is the config group's schema; the nets'
    constructors repeat no default; the composed groups are the schemas'."""
    assert list(inspect.signature(PPO.__init__).parameters) == ["self", "hp"]
    pipeline = inspect.signature(AtariPipeline.__init__).parameters
    assert list(pipeline)[:2] == ["self", "settings"] and "sticky_actions" not in pipeline
    for constructor in (NatureCNN.__init__, ViTEncoder.__init__):
        params = [p for p in inspect.signature(constructor).parameters.values() if p.name != "self"]
        assert all(p.default is inspect.Parameter.empty for p in params), constructor.__qualname__
    cfg = compose_cfg([])
    assert OmegaConf.to_object(cfg.ppo) == PPOSettings()
    assert OmegaConf.get_type(cfg.env) is AtariSettings
    assert OmegaConf.to_object(cfg.pretrain) == PretrainSettings()
    assert OmegaConf.get_type(cfg.encoders.vit.net).__name__ == "ViTSchema"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("ppo.num_envs=abc", "ppo.num_envs"),
        ("seed=one", "seed"),
        ("encoder.freeze=maybe", "encoder.freeze"),
        ("pretrain.masks.target_scale=[a,b]", "pretrain.masks.target_scale"),
        ("ppo.learning_rat=0.1", "ppo.learning_rat"),
        ("encoder.net.heads=3", "encoder.net.heads"),  # the CNN has no heads
        ("encoder=jepa_cnn encoder.net.heads=4", "encoder.net.heads"),  # nor does the pretrained one
    ],
)
def test_wrong_types_and_unknown_keys_are_rejected_by_the_schema(override, key):
    with pytest.raises(ConfigCompositionException) as caught:
        compose_cfg(override.split())
    assert key in str(caught.value) + str(caught.value.__cause__)
