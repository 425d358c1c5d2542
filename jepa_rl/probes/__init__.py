"""How much game state an encoder's features hold: the RAM labels, linear probes on raw or
whitened features, retrieval of a perturbed frame's clean version, and their figures.

May import ``runtime``, ``envs``, ``models`` and ``pretrain``; never Hydra or the config layer.
"""
