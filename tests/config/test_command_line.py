"""Checks before Hydra starts: group options, launcher, output directory, a config that composes."""

import shutil
import subprocess
import sys
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
    (["encoder=JEPA"], "encoder=JEPA is not a known option (did you mean `jepa`?); choose one of"),
    (["ppo.learning_rat=0.1"], "(did you mean `ppo.learning_rate`?)"),
    (["eval.episodess=3"], "eval.episodess is not a config key (did you mean `eval.episodes`?)"),
]


@pytest.mark.parametrize(("args", "message"), BAD_COMMAND_LINES)
def test_a_bad_command_line_is_one_line(tmp_path, args, message):
    (tmp_path / "a_file").write_text("a file where a directory is expected")
    args = [a.format(tmp=tmp_path) for a in args]
    with pytest.raises(ConfigError) as caught:
        check_command_line(["experiment=smoke", *args], CONF)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_refused_command_line_leaves_no_directory_behind(tmp_path):
    """The output root is probed by creating it; a refusal removes what the probe created."""
    with pytest.raises(ConfigError, match="not a config key"):
        check_command_line(["experiment=smoke", f"hydra.run.dir={tmp_path}/new/run", "ppo.learning_rat=1"], CONF)
    assert not (tmp_path / "new").exists()


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
    assert not (tmp_path / "outputs").exists()  # nothing on disk: not even Hydra's own files
    assert time.perf_counter() - started < 60


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="on a SLURM machine this would submit jobs")
def test_slurm_launcher_without_slurm_is_one_line():
    with pytest.raises(ConfigError, match="no sbatch here"):
        check_command_line(["-m", "hydra/launcher=slurm", "experiment=smoke"], CONF)


def test_launch_py_in_a_python_without_the_project_says_how_to_install_it():
    """``-S`` leaves out site-packages: hydra, torch and the project itself are missing there."""
    result = subprocess.run([sys.executable, "-S", str(ROOT / "launch.py")], capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: hydra is not installed in this Python")
    assert "pip install -c constraints.txt -e .[dev]" in result.stderr and len(result.stderr.splitlines()) == 1


def test_help_describes_the_project_its_presets_stages_groups_and_common_keys():
    result = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("jepa-rl: does a self-supervised JEPA encoder")
    for heading in ("Presets (experiment=)", "Stages (stage=)", "Config groups", "The keys people change most"):
        assert f"== {heading}" in text
    assert "encoder: ae, ae_cnn, ae_p6, cnn, jepa, jepa_cnn, jepa_p6, vit" in text  # Hydra lists conf/ itself
    assert "--cfg job" in text and len(text.splitlines()) < 80  # the full config is one flag away, not here
