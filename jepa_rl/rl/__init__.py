"""Reinforcement learning: PPO's update rule and training loop, the rollout it learns from, and the
augmentation of its minibatches.

May import ``runtime``, ``envs`` and ``models``; never Hydra or the config layer.
"""
