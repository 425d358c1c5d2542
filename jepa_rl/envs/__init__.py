"""The one Atari observation pipeline shared by training, evaluation and frame collection: the
emulators, the frame work in OpenCV or torch, visual perturbations, ImageNet-C corruptions and the shifts
the game itself can make.

May import ``runtime``; never Hydra, the config layer, or the packages above it.
"""
