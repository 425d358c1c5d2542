"""jepa-rl: the single entrypoint. `python launch.py --help` lists the config groups."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from jepa_rl.config import ConfigError, check_group_choices, check_launcher, check_output_root

CONF = Path(__file__).parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from jepa_rl.checkpoint import CheckpointError
    from jepa_rl.run import record_failure, run

    try:
        run(cfg)
    except Exception as e:
        # In a sweep, a failed cell is recorded in its own directory and the sweep goes on, so the
        # report at its end is still written (and lists the failure); alone, a job just fails.
        if record_failure(e):
            return
        if isinstance(e, ConfigError | CheckpointError):
            sys.exit(f"error: {e}")
        raise


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:], CONF)
        check_launcher(sys.argv[1:])
        check_output_root(sys.argv[1:])
    except ConfigError as e:
        sys.exit(f"error: {e}")
    main()
