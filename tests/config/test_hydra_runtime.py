"""What a job learns from Hydra at run time: its W&B group (the train stage's runs: stages/test_train.py)."""

from jepa_rl.config.hydra_runtime import condition_group


def test_wandb_group_sets_conditions_apart_but_not_seeds():
    base = "breakout-jepa-train_clean-cpu"
    assert condition_group(base, "", []) == base
    lr = "encoder.lr_scale=0.3"
    assert condition_group(base, lr, ["seed=2", lr]) == f"{base}-{lr}"
    assert condition_group(base, "logger.group=mine", ["logger.group=mine"]) == base  # the user's own group
    assert len(condition_group(base, "ppo.learning_rate=0.001," * 20, [])) == 128  # W&B's limit
