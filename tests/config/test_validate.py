"""Every bad value is one ``ConfigError`` naming the key and the fix, raised by building, before any work."""

import pytest
import torch
from helpers import cnn, compose_cfg

from jepa_rl.config import ConfigError
from jepa_rl.config.resolve import resolve
from jepa_rl.job import validate

BAD_VALUES = [
    (["perturbation.noise_std=-1"], "perturbation: perturbation 'clean': noise_std=-1.0 is out of range"),
    (["perturbations.hard.noise_std=-5"], "perturbations.hard"),
    (["ppo.num_envs=0"], "ppo.num_envs=0 must be positive"),
    (["ppo.num_envs=-2"], "ppo.num_envs=-2"),
    (["ppo.total_timesteps=100"], "ppo.total_timesteps=100 is smaller than one rollout"),
    (["ppo.num_minibatches=3"], "ppo.num_minibatches=3 must divide the batch of 512"),
    (["ppo.num_minibatches=512"], "ppo.num_minibatches=512 leaves one transition per minibatch (norm_adv needs 2+)"),
    (["ppo.gamma=1.5"], "ppo.gamma=1.5 must be in [0, 1]"),
    (["env_groups=3"], "env_groups=3 must be auto or a positive number that divides ppo.num_envs=4"),
    (["env_groups=0"], "env_groups=0"),
    (["env.game=tetriz"], "env.game=tetriz is not a ROM ale-py ships"),
    (["env.sticky_actions=1.5"], "env.sticky_actions=1.5 must be in [0, 1]"),
    (["eval.suite=[clean,fog]"], "eval.suite names unknown perturbation 'fog'"),
    (["eval.suite=[clean,fog_3]"], "a corruption <family>_<severity 1-5> of gaussian_noise"),
    (
        ["eval.suite=[clean,gaussian_noise_6]"],
        "eval.suite=gaussian_noise_6: perturbation 'gaussian_noise_6': severity=6",
    ),
    (["perturbation.corruption=fog", "perturbation.severity=2"], "corruption=fog is not a corruption family"),
    (["perturbation.corruption=pixelate"], "severity=0 is outside 1-5"),
    (["eval.suite=[clean,mode_3]"], "eval.suite=mode_3: mode=3 is not a mode of breakout; choose one of 0, 4, 8"),
    (["eval.suite=[clean,difficulty_2]"], "difficulty=2 is not a difficulty of breakout; choose one of 0, 1"),
    (["env=pong", "eval.suite=[clean,recolour_paddle_red]"], "recolour=paddle_red: pong has no recolourings"),
    (["perturbation.recolour=ball_pink"], "recolour=ball_pink is not a recolouring of breakout"),
    (["ppo.augment=crop"], "ppo.augment=crop is not an augmentation; choose one of none, shift"),
    (["encoder=jepa", "ppo.augment=shift"], "ppo.augment=shift augments the frames the encoder sees"),
    (["eval.episodes=-1"], "eval.episodes=-1 must be >= 0 (0: policy invariance only)"),
    (["eval.episodes=0", "eval.invariance_states=0"], "eval.episodes=0 plays no games and invariance_states=0"),
    (["eval.episodes=0", "eval.suite=[clean,mode_4]"], "eval.episodes=0 measures policy invariance only"),
    (["encoder.lr_scale=-0.1"], "encoder.lr_scale=-0.1 must be >= 0"),
    (["encoder=jepa", "encoder.lr_scale=-1"], "encoder.lr_scale=-1.0"),
    (["encoder=jepa", "encoder.net.patch_size=13"], "encoder.net.patch_size=13 must divide image_size=84"),
    (["encoder=vit", "encoder.net.heads=5"], "encoder.net.heads=5 must divide the width 192"),
    (["encoder=vit", "encoder.net.pool=cls"], "encoder.net.pool=cls must be mean or attention"),
    (["encoder=jepa", "encoder.net.pos_scale=0"], "encoder.net.pos_scale=0.0 must be positive"),
    (["encoder=jepa", "pretrain.masks.context_scale=[0.1,0.1]"], "keeps fewer than min_context=4"),
    (["encoder=jepa", "pretrain.predictor.heads=5"], "encoder.heads=5 must divide the width 96"),
    (["encoder=ae", "encoder.weights={tmp}/missing.pt"], "encoder.weights={tmp}/missing.pt: encoder weights"),
    (["encoder=ae", "encoder.weights={tmp}/garbage.pt"], "are corrupt"),
    (["encoder=jepa", "encoder.net.pool=attention"], "a frozen encoder cannot train"),
    (["encoder=vit", "encoder.objective=byol"], "encoder.objective=byol is not an objective"),
    (["encoder=jepa", "pretrain.ema_start=0"], "ema_start=0.0 must be in (0, 1]"),
    (["pretrain.lr=-1"], "pretrain.lr=-1.0 must be >= 0"),  # no pretrained encoder: still built
    (["stage=probe", "probe.encoders=[cnn]", "pretrain.vc_weight=-1"], "pretrain.vc_weight=-1.0 must be >= 0"),
    (["encoder=jepa_cnn", "encoder.target=pixels"], "encoder.target=pixels must be one of tokens, residual, stand"),
    (["encoder=jepa", "encoder.horizon=-1"], "encoder.horizon=-1 must be >= 0"),
    (["encoder=cnn", "encoder.horizon=1"], "encoder.horizon=1 sets a pretraining target, and encoder has no objective"),
    (["encoder=ae_cnn", "pretrain.ema_start=1.5"], "ema_start=1.5 must be in (0, 1]"),
    (["encoder=jepa_p6", "pretrain.masks.context_scale=[0.01,0.01]"], "leaves fewer than min_context"),
    (["stage=pretrain"], "stage=pretrain needs a pretrained encoder"),
    (["stage=evaluate"], "stage=evaluate is not a stage"),
    (["seed=-1"], "seed=-1 must be a non-negative int"),
    (["checkpoint_every=0"], "checkpoint_every=0 must be a positive step count"),
    (["stage=probe", "probe.encoders=[resnet]"], "unknown encoder 'resnet'"),
    (["stage=probe", "probe.checkpoints.cnn={tmp}/missing.pt"], "probe.checkpoints.cnn="),
    (["stage=probe", "probe.min_entropy=-1"], "probe.min_entropy=-1.0 must be >= 0"),
    (["stage=probe", "probe.inputs=pca"], "probe.inputs=pca must be one of best, standardised, whitened"),
    (["stage=probe", "probe.test_fraction=1.0"], "probe.test_fraction=1.0 must be in (0, 1)"),
    (["stage=probe", "probe.suite=[clean,fog]"], "probe.suite names unknown perturbation 'fog'"),
    (["encoder=jepa", "pretrain.frames.policy_fraction=0.5"], "needs policy_checkpoint"),
    (["encoder=jepa", "pretrain.batch_size=0"], "pretrain.batch_size=0"),
    (["encoder=jepa", "pretrain.warmup=1.0"], "pretrain.warmup=1.0 (a fraction of the steps) must be in [0, 1)"),
    (["pretrain.autocast=fp16"], "pretrain.autocast=fp16 must be auto, none or bf16"),
    (["ppo.autocast=fp16"], "ppo.autocast=fp16 must be auto, none or bf16"),
    (["logger.backend=tensorboard"], "logger.backend=tensorboard must be wandb or none"),
    (["stage=benchmark", "benchmark.repeats=0"], "benchmark.repeats=0 must be positive"),
    (["device=tpu"], "device=tpu is not a device"),
    (["head.kind=attention"], "head.kind=attention is not a head; choose one of trunk, mlp, linear"),
    (["head.width=0"], "head.width=0 must be positive"),
    (["head=mlp", "head.width=-4"], "head.width=-4 must be positive"),
    (["eval.snapshots=9"], "eval.snapshots=9 is more than the 8 PPO iterations of training"),
    (["eval.snapshots=-1"], "eval.snapshots=-1 must be >= 0"),
    (["eval.blind_floor=frozen"], "eval.blind_floor=frozen is not a blind floor; choose one of action_frequencies"),
    (["eval.min_skill_share=1"], "eval.min_skill_share=1.0 must be in [0, 1)"),
    (["eval.min_skill_share=-0.1"], "eval.min_skill_share=-0.1 must be in [0, 1)"),
    (["eval.suite=[noise,hard]"], "eval.invariance_states=2048 compares each perturbation with clean"),
    (["eval.snapshot_suite=[clean,fog]"], "eval.snapshot_suite names unknown perturbation 'fog'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_the_key(tmp_path, args, message):
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    args = [a.format(tmp=tmp_path) for a in args]
    cfg = compose_cfg(["experiment=smoke", "logger=none", f"cache_dir={tmp_path}/cache", *args])
    with pytest.raises(ConfigError) as caught:
        validate(cfg)
        resolve(cfg, {})  # what the job does next, still before any work
    text = str(caught.value)
    assert message.format(tmp=tmp_path) in text and "\n" not in text
    assert not (tmp_path / "cache").exists()  # nothing collected or pretrained


@pytest.mark.parametrize("dead", ["zeros", "constant"])
def test_an_encoder_that_cannot_see_is_refused_before_any_work(tmp_path, dead):
    """A frozen Nature-CNN with all-zero weights (or constant ones with zero first-layer weights) gives the same
    features for every frame: the agent could not see, so the job is refused in one line, before training."""
    encoder = cnn()
    state = {k: torch.zeros_like(v) if dead == "zeros" or "0." in k else torch.full_like(v, 0.1)
             for k, v in encoder.state_dict().items()}  # fmt: skip
    torch.save(state, tmp_path / "dead.pt")
    args = [f"encoder.weights={tmp_path}/dead.pt", "encoder.freeze=true"]
    cfg = compose_cfg(["experiment=smoke", "logger=none", f"cache_dir={tmp_path}/cache", *args])
    with pytest.raises(ConfigError) as caught:
        validate(cfg)
    text = str(caught.value)
    assert f"encoder=cnn, frozen with weights {tmp_path}/dead.pt gives the same features for every frame" in text
    assert "an agent on it could not see" in text and "\n" not in text
    torch.save(cnn().state_dict(), tmp_path / "alive.pt")  # random init: it sees
    validate(compose_cfg(["experiment=smoke", "logger=none", f"encoder.weights={tmp_path}/alive.pt"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a GPU here")
def test_cuda_without_a_gpu_is_named():
    with pytest.raises(ConfigError, match="device=cuda, but torch sees no CUDA GPU here"):
        resolve(compose_cfg(["device=cuda"]), {})
