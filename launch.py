"""jepa-rl: the single entrypoint. `python launch.py --help` lists the config groups."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from jepa_rl.config import ConfigError, check_group_choices, check_output_root

CONF = Path(__file__).parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from jepa_rl.checkpoint import CheckpointError
    from jepa_rl.run import run

    try:
        run(cfg)
    except (ConfigError, CheckpointError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:], CONF)
        check_output_root(sys.argv[1:])
    except ConfigError as e:
        sys.exit(f"error: {e}")
    main()
