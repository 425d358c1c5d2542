"""What a trained agent is measured by: full games with raw scores under a suite of
perturbations, retention above random play, random play itself, and policy invariance.

May import ``runtime``, ``envs``, ``models`` and ``rl``; never Hydra or the config layer.
"""
