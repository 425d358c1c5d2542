"""Cache keys that outlive a move of the code: a spec names each class it builds by the class, not its module."""

import numpy as np
import pytest
import torch
from helpers import CORRUPTIONS, compose_cfg, corrupt
from hydra.utils import instantiate
from omegaconf import OmegaConf

from jepa_rl.pretrain.frame_sets import frames_spec
from jepa_rl.runtime.artifact_cache import MANIFEST, cached_artifact, spec_key


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


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("name", ["frames.npy", "encoder.pt", MANIFEST])
def test_a_corrupt_cached_artifact_is_reported_and_rebuilt(tmp_path, caplog, kind, name):
    """A cached frame set or encoder (or its manifest) that is not what was built: built again, not used."""
    builds = []

    def build(directory):
        builds.append(directory)
        np.save(directory / "frames.npy", np.arange(1000, dtype=np.uint8))
        torch.save({"w": torch.ones(64)}, directory / "encoder.pt")

    first = cached_artifact(tmp_path, "frames", {"n": 1}, build)
    corrupt(first / name, kind)
    again = cached_artifact(tmp_path, "frames", {"n": 1}, build)
    assert again == first and len(builds) == 2
    assert np.array_equal(np.load(again / "frames.npy"), np.arange(1000, dtype=np.uint8))
    assert torch.load(again / "encoder.pt", weights_only=True)["w"].sum() == 64
    assert f"cached frames {first} is corrupt" in caplog.text
