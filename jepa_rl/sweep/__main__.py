"""``python -m jepa_rl.sweep SWEEP_DIR``: (re)build the report of a sweep directory."""

import sys

from jepa_rl.sweep.aggregate import main

sys.exit(main())
