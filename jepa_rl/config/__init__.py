"""Configuration: typed schemas (``schema``), the command-line checks before Hydra starts (``command_line``),
validation by building what the job builds (``validate``), the values resolved once (``resolve``), the
config's fingerprints (``fingerprint``) and what a job learns from Hydra at run time (``hydra_runtime``).

The one layer besides ``stages``, ``sweep`` and ``job`` that reads Hydra's config: it imports the domain
packages (to register their settings and build their parts), never the reverse.

Importing the package registers the schemas with Hydra's ConfigStore, as ``launch.py`` needs.
"""

from jepa_rl.config.schema import register
from jepa_rl.ranges import ConfigError

__all__ = ["ConfigError"]


register()
