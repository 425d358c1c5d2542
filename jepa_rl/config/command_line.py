"""Checks of the command line before Hydra starts: each failure is one line naming the key and the fix.

Hydra reports a bad group option, an unknown key or a value of the wrong type in a multi-line
message; ``check_command_line`` composes the config once itself and answers in one line instead.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Iterator
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from jepa_rl.config import ConfigError

# Launchers that Hydra and its plugins register in code (conf/hydra/launcher adds slurm and local).
PLUGIN_LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")
# Hydra's own flags that take a value, and those that stop a run (nothing to check then).
VALUE_FLAGS = {"-cd", "--config-dir", "-cn", "--config-name", "-cp", "--config-path", "-p", "--package"}
INFO_FLAGS = {"-h", "--help", "--hydra-help", "-i", "--info", "-c", "--cfg", "--shell-completion", "-sc"}


def config_groups(conf_dir: Path) -> list[str]:
    """The config groups of ``conf/``: one per folder (``hydra/launcher`` for Hydra's own)."""
    return sorted(p.name for p in conf_dir.iterdir() if p.is_dir() and p.name != "hydra") + ["hydra/launcher"]


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` (did you mean `x`?)`` for the choice closest to ``name``, case aside; empty when none is close."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean `{lowered[close[0]]}`?)" if close else ""


def key_values(overrides: list[str]) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of each ``key=value`` command-line override, without Hydra's ``+``/``~`` prefixes."""
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep:
            yield key.lstrip("+~"), value


def check_group_choices(overrides: list[str], conf_dir: Path) -> None:
    """Reject ``group=option`` overrides naming a file that is not in ``conf/<group>/``."""
    groups = config_groups(conf_dir)
    for key, value in key_values(overrides):
        if key not in groups:
            continue
        choices = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        if key == "hydra/launcher":
            choices = sorted({*choices, *PLUGIN_LAUNCHERS})
        for option in value.split(","):  # multirun sweeps list options with commas
            if option and option != "null" and option not in choices:
                guess = did_you_mean(option, choices)
                raise ConfigError(f"{key}={option} is not a known option{guess}; choose one of {', '.join(choices)}")


def check_writable(directory: Path, fix: str = "hydra.run.dir=PATH (or hydra.sweep.dir=PATH with -m)") -> None:
    """Fail early, and in one line, when outputs cannot be written to ``directory``; ``fix`` names the override.
    The folders it creates to find out are removed again: a refused command leaves nothing on disk."""
    directory = directory.absolute()
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"output directory {directory} is not writable ({e.strerror}); choose another with {fix}"
        ) from e
    finally:
        for folder in created:  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def check_output_root(overrides: list[str]) -> None:
    """Before Hydra creates the job directory: can the run (or sweep) directory be created?

    Creates and probes the literal part of ``hydra.run.dir`` / ``hydra.sweep.dir`` (up to the
    first interpolation), or the working directory where the defaults put outputs.
    """
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(overrides) else "hydra.run.dir"
    target = Path.cwd()
    for override in overrides:
        if override.startswith(key + "="):
            target = Path(override.split("=", 1)[1].split("${", 1)[0] or ".").absolute()
    check_writable(target, fix=f"{key}=PATH")


def check_launcher(overrides: list[str]) -> None:
    """A SLURM launcher needs SLURM's commands: say so in one line instead of submitit's trace."""
    for key, value in key_values(overrides):
        if key == "hydra/launcher" and value in ("slurm", "submitit_slurm") and not shutil.which("sbatch"):
            raise ConfigError(
                f"hydra/launcher={value} submits to SLURM, but there is no sbatch here; run it where SLURM is "
                "(a login node), or use hydra/launcher=local or joblib on this machine"
            )


def split_argv(argv: list[str], conf_dir: Path) -> tuple[Path, str, list[str]] | None:
    """``(config dir, config name, overrides)`` of a ``launch.py`` command line; None for ``--help`` and the like."""
    config_dir, config_name, overrides = conf_dir, "config", []
    args = iter(argv)
    for arg in args:
        if arg in INFO_FLAGS:
            return None
        if arg in VALUE_FLAGS:
            value = next(args, "")
            if arg in ("-cd", "--config-dir"):
                config_dir = Path(value).absolute()
            elif arg in ("-cn", "--config-name"):
                config_name = value
        elif not arg.startswith("-"):
            overrides.append(arg)
    return config_dir, config_name, overrides


def first_point(overrides: list[str]) -> list[str]:
    """The overrides of a multirun's first job: each sweep (``a,b``, ``range(..)``) replaced by its first value."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    out = []
    for text, override in zip(overrides, parsed, strict=True):
        if override.is_sweep_override():
            value = next(iter(override.sweep_string_iterator()))
            out.append(f"{override.get_key_element()}={value}")
        else:
            out.append(text)
    return out


# Keys that moved, and where to: an old command line is told the new key.
MOVED = {"pretrain.target": "encoder.target (each encoder has its own; encoders.<name>.target in probes)"}


def composition_error(error: Exception, known_keys: list[str] | None = None) -> str:
    """One line for an error Hydra or OmegaConf raised while composing: the key, the problem, the fix
    (with the closest of ``known_keys``, the composed config's dotted keys, for an unknown one)."""
    cause = error
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        first = str(cause).splitlines()[0]
        if "Key '" in first and "not in struct" in first or "Could not override" in str(error):
            if cause.full_key in MOVED:
                return f"{cause.full_key} has moved to {MOVED[cause.full_key]}"
            guess = did_you_mean(str(cause.full_key), known_keys or [])
            return f"{cause.full_key} is not a config key{guess}; `python launch.py --cfg job` lists them"
        return f"{cause.full_key}: {first}; see jepa_rl/config/schema.py for its type"
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text


def check_command_line(argv: list[str], conf_dir: Path) -> None:
    """Every check that needs no job: group options, the launcher, the output root, and that the
    config composes (unknown keys, values of the wrong type) for the first job of a multirun."""
    parts = split_argv(argv, conf_dir)
    if parts is None:
        return
    config_dir, config_name, overrides = parts
    check_group_choices(overrides, conf_dir)
    check_launcher(overrides)
    check_output_root(argv)
    # As Hydra with --config-dir: conf/ and that directory are both searched.
    search = [f"hydra.searchpath=[file://{conf_dir}]"] if config_dir != conf_dir else []
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(
                config_name=config_name, overrides=[*search, *first_point(overrides)], return_hydra_config=True
            )
        check_sweep_values(cfg, overrides)
    except ConfigError:
        raise
    except Exception as e:  # Hydra and OmegaConf raise many kinds; each becomes one line
        raise ConfigError(composition_error(e, default_keys(config_dir, config_name, search))) from e


def check_sweep_values(cfg: DictConfig, overrides: list[str]) -> None:
    """Every value of a swept config key must fit its type, not only the first job's (a bad one would stop
    the multirun halfway, in Hydra's launcher). Swept group options are checked by ``check_group_choices``."""
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if not override.is_sweep_override() or key in cfg.hydra.runtime.choices or key.startswith("hydra."):
            continue
        for value in override.sweep_iterator():
            OmegaConf.update(cfg, key, value, merge=True)


def default_keys(config_dir: Path, config_name: str, search: list[str]) -> list[str]:
    """Every dotted key of the config composed without overrides (what an unknown key is compared with)."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name=config_name, overrides=search), resolve=False)

    def walk(node: object, prefix: str) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        yield prefix.rstrip(".")

    return [key for key in walk(cfg, "") if key]
