"""jepa-rl: the single entrypoint. `python launch.py --help` lists the config groups."""

import sys
from pathlib import Path

try:
    import hydra
    from omegaconf import DictConfig

    from jepa_rl.config import ConfigError
    from jepa_rl.config.command_line import check_command_line
except ModuleNotFoundError as missing:  # run by a Python the project is not installed in
    sys.exit(
        f"error: {missing.name} is not installed in this Python ({sys.executable}); set the project up with "
        "`python3.11 -m venv .venv && .venv/bin/pip install -c constraints.txt -e .[dev]`, then run "
        "`.venv/bin/python launch.py`"
    )

CONF = Path(__file__).parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from jepa_rl.job import main as job

    job(cfg)


if __name__ == "__main__":
    try:
        check_command_line(sys.argv[1:], CONF)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    main()
