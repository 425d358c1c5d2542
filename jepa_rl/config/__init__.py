"""Configuration: typed schemas (``schema``), the command-line checks before Hydra starts (``command_line``),
validation by building what the job builds (``validate``) and the values resolved once (``resolve``).

Importing the package registers the schemas with Hydra's ConfigStore, as ``launch.py`` needs.
"""

from jepa_rl.config.schema import register
from jepa_rl.ranges import ConfigError

__all__ = ["ConfigError"]


register()
