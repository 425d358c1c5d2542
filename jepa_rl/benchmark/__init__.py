"""Throughput measured against the emulator's own speed: the rollout step's profile and the
printed table.

May import every domain package below it; never Hydra or the config layer.
"""
