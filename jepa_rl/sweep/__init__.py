"""What runs after a multirun: read every cell of the sweep directory (``cells``), estimate the statistics over
seeds (``statistics``), draw the figures (``plots``, then ``agent_figures`` from the trained agents' checkpoints)
and write ``cells.csv``, ``stats.json`` and ``REPORT.md`` (``report``), in that order, tied together by
``aggregate``. ``callback`` runs it at the end of every multirun (then logs a W&B summary run);
``python -m jepa_rl.sweep <sweep dir>`` runs it on demand.

May import every package; none imports it (the Hydra callback is named in ``conf/config.yaml``).
"""
