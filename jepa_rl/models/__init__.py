"""The networks: observation encoders (Nature-CNN, ViT), the transformer parts they share with the
JEPA predictor, the policy heads, the actor-critic agent and its fixed feature standardisation.

May import ``runtime``; never Hydra, the config layer, or the packages above it.
"""
