"""jepa-rl: the single entrypoint. `python launch.py --help` lists the config groups."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from jepa_rl.config import ConfigError
from jepa_rl.config.command_line import check_command_line

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
