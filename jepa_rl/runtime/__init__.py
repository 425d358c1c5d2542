"""What every job needs around its work: atomic checkpoints and JSON, the content-addressed artifact
cache, seeds, experiment tracking and its W&B files, preemption, and the C allocator's settings.

Imports no other package of ``jepa_rl`` (only ``jepa_rl.ranges``), and neither Hydra nor the config layer.
"""
