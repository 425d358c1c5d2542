"""jepa-rl: does a self-supervised JEPA encoder make an Atari PPO agent more robust to visual shifts?

The packages, lowest layer first; each imports only the layers below it (``tests/test_layout.py``):

- ``runtime``: what every job needs around its work: checkpoints, the artifact cache, seeds,
  tracking, preemption.
- ``envs``: the one observation pipeline (emulators, frame work, perturbations, corruptions, game shifts).
- ``models``: encoders, the transformer parts, heads, the agent, feature standardisation.
- ``rl``: PPO, its rollout and its augmentation.
- ``pretrain``: the self-supervised objectives, masks, schedules, the loop, frame sets, the encoder cache.
- ``evaluation``: full games under a suite, random play, policy invariance.
- ``probes``: what an encoder's features hold of the game state.
- ``benchmark``: throughput measured against the emulator's own speed.
- ``config``: Hydra's schemas, the command-line checks, validation by building, resolved values.
- ``stages`` and ``sweep``: the jobs ``launch.py`` runs, and what runs after a multirun.

The domain packages (``runtime`` to ``benchmark``) import neither Hydra nor ``jepa_rl.config``: they take
plain values and their own typed settings, so they can be used and tested without a config.
"""
