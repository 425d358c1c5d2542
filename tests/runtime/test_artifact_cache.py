"""Cache keys that outlive a move of the code: a spec names each class it builds by the class, not its module."""

from helpers import compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf

from jepa_rl.pretrain.frame_sets import frames_spec
from jepa_rl.runtime.artifact_cache import spec_key


def test_a_spec_keys_its_classes_by_name_wherever_their_module_lives():
    net = {"depth": 4, "width": 192}
    keys = {
        spec_key({"net": {"_target_": f"{where}.ViTEncoder", **net}}) for where in ("jepa_rl.models.encoders", "a.b")
    }
    assert keys == {spec_key({"net": {"_target_": "jepa_rl.encoders.ViTEncoder", **net}})}
    assert spec_key({"net": {"_target_": "jepa_rl.models.encoders.NatureCNN", **net}}) not in keys


def test_the_keys_of_experiment_smoke_are_those_cached_before_the_packages_moved():
    """Computed at the last commit of the flat layout: its frames and encoders are found, not rebuilt."""
    cfg = compose_cfg(["experiment=smoke", "encoder=jepa"])
    env = OmegaConf.to_container(cfg.env, resolve=True)
    frames = frames_spec(env, OmegaConf.to_object(cfg.pretrain).frames, instantiate(cfg.perturbations.clean))
    assert spec_key(frames) == "668081bc0fac580c"
    assert spec_key({"net": OmegaConf.to_container(cfg.encoder.net, resolve=True)}) == "3e3795f6adb2af96"
