"""The probes' settings (the ``probe`` group): its config group's schema, which checks its own ranges."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_rl.pretrain.settings import FramesSettings
from jepa_rl.probes.inputs import PROBE_INPUTS
from jepa_rl.ranges import require, require_positive_fields

PROBED = ("cnn", "vit", "jepa", "ae", "jepa_cnn", "ae_cnn")  # conf/config.yaml's `encoders` but jepa_p6


@dataclass
class ProbeSettings:
    """``probe``: linear probes of frozen features for RAM game-state variables (AtariARI), clean and perturbed."""

    encoders: list[str] = field(default_factory=lambda: list(PROBED))  # names under `encoders`
    # A PPO checkpoint.pt per encoder: probe that trained agent's encoder; null: a pretrained encoder
    # uses its pretrained weights, cnn/vit a random init.
    checkpoints: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(PROBED))
    frames: FramesSettings = field(default_factory=lambda: FramesSettings(num_frames=20_000, seed=1000))  # held out
    test_fraction: float = 0.2  # fraction of games (not frames) held out to score the probes
    min_entropy: float = 0.6  # nats: variables of lower label entropy are not probed (AtariARI; 0: probe all)
    # Features the probes are fit on: best (per variable, standardised or whitened, whichever fits the
    # validation games better), standardised (per dimension) or whitened (PCA on the training frames).
    inputs: str = "best"
    suite: list[str] = field(default_factory=lambda: ["clean"])  # the test frames are replayed under each (eval.suite)
    batch_size: int = 512  # frames per encoder forward pass
    neighbours: int = 5  # neighbours per query in the nearest-neighbour figure

    def __post_init__(self) -> None:
        require(0 < self.test_fraction < 1, f"test_fraction={self.test_fraction} must be in (0, 1)")
        require(self.min_entropy >= 0, f"min_entropy={self.min_entropy} must be >= 0 (0 probes every variable)")
        require(self.inputs in PROBE_INPUTS, f"inputs={self.inputs} must be one of {', '.join(PROBE_INPUTS)}")
        require_positive_fields(self, "batch_size", "neighbours")
        require(len(self.encoders) > 0, "encoders is empty; list encoders to probe, e.g. probe.encoders=[cnn,jepa]")
        require(len(self.suite) > 0, "suite is empty; list perturbations, e.g. probe.suite=[clean,noise]")
