"""Self-supervised pretraining of an encoder: the I-JEPA and autoencoder objectives, masks,
schedules, the resumable loop, its diagnostics, the frame sets it trains on, and the encoder cache.

May import ``runtime``, ``envs`` and ``models``; never Hydra, the config layer, ``rl`` or ``evaluation``.
"""
