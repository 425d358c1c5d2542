"""Checks before Hydra starts: group options, launcher, output directory, a config that composes."""

import shutil
import time

import pytest
from helpers import CONF, ROOT, launch

from jepa_rl.config import ConfigError
from jepa_rl.config.command_line import check_command_line, first_point

BAD_COMMAND_LINES = [
    (["encoder=resnet"], "encoder=resnet is not a known option; choose one of ae, ae_cnn, ae_p6, cnn, jepa, jepa_cnn"),
    (["env=tetris"], "env=tetris is not a known option"),
    (["head=bogus"], "head=bogus is not a known option; choose one of linear, mlp, trunk"),
    (["-m", "hydra/launcher=slrum"], "hydra/launcher=slrum is not a known option"),
    (["-m", "encoder=cnn,resnet"], "encoder=resnet is not a known option"),
    (["hydra.run.dir={tmp}/a_file/run"], "not writable"),
    (["ppo.num_envs=abc"], "ppo.num_envs: Value 'abc' of type 'str' could not be converted to Integer"),
    (["-m", "seed=1,x"], "seed: Value 'x' of type 'str' could not be converted to Integer"),
    (["ppo.learning_rat=0.1"], "ppo.learning_rat is not a config key"),
    (["pretrain.target=residual"], "pretrain.target has moved to encoder.target"),
    (["encoder.freeze=maybe"], "encoder.freeze: Value 'maybe' is not a valid bool"),
]


@pytest.mark.parametrize(("args", "message"), BAD_COMMAND_LINES)
def test_a_bad_command_line_is_one_line(tmp_path, args, message):
    (tmp_path / "a_file").write_text("a file where a directory is expected")
    args = [a.format(tmp=tmp_path) for a in args]
    with pytest.raises(ConfigError) as caught:
        check_command_line(["experiment=smoke", *args], CONF)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_sweeps_and_named_sweep_configs_compose():
    assert first_point(["seed=1,2,3", "encoder=cnn", "+condition=cnn,vit", "x=range(2,5)"]) == [
        "seed=1",
        "encoder=cnn",
        "+condition=cnn",
        "x=2",
    ]
    for name in ("grid", "extended", "strength", "lr_scale"):
        check_command_line(["-m", "-cd", str(ROOT / "multirun_sweeps"), "-cn", name, "experiment=smoke"], CONF)
    check_command_line(["--help"], CONF)  # Hydra's own flags pass through


# The stderr contract through the real entrypoint: one from the command-line checks, one from validation.
@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [["ppo.num_envs=abc"], ["encoder=vit", "encoder.net.heads=5"]],
)
def test_the_entrypoint_prints_one_line_and_writes_nothing(tmp_path, args):
    started = time.perf_counter()
    result = launch(["experiment=smoke", "logger=none", *args], tmp_path, fresh=True)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not list(tmp_path.rglob("checkpoint.pt")) and not (tmp_path / "cache").exists()
    assert time.perf_counter() - started < 60


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="on a SLURM machine this would submit jobs")
def test_slurm_launcher_without_slurm_is_one_line():
    with pytest.raises(ConfigError, match="no sbatch here"):
        check_command_line(["-m", "hydra/launcher=slurm", "experiment=smoke"], CONF)
