"""Evaluation's settings (the ``eval`` group): its config group's schema, which checks its own ranges."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_rl.ranges import require, require_positive_fields

BLIND_FLOORS = ("action_frequencies", "fixed_frame")  # the blind policies (evaluation/blind_play.py)
STUDY_SUITE = ("clean", "color_jitter", "noise", "mild", "hard")  # the seed study's five conditions


@dataclass
class EvalSettings:
    """``eval``: after training, full games with raw scores under each perturbation of the suite."""

    suite: list[str] = field(default_factory=lambda: list(STUDY_SUITE))
    episodes: int = 30  # games per perturbation (0: no games, policy invariance on identical states only)
    num_envs: int = 8  # games played in parallel (each env plays a fixed share)
    greedy: bool = False  # false: sample from the policy (CleanRL's evaluation); true: argmax
    sticky_actions: float = 0.25  # evaluation always uses sticky actions, whatever training used
    blind_floor: str = "action_frequencies"  # the policy that does not look (blind_play): or fixed_frame
    min_skill_share: float = 0.1  # retention needs clean above the floor by this share of human - random too
    seed_offset: int = 1_000_000  # evaluation's emulator seeds derive from (seed, eval, seed_offset)
    invariance_states: int = 2048  # clean-driven states seen under every perturbation (policy invariance; 0: off)
    snapshots: int = 0  # evaluations during training, at 1/n, 2/n, ... of it (matched skill; 0: none)
    snapshot_episodes: int = 5  # games per perturbation at each snapshot
    snapshot_suite: list[str] = field(default_factory=lambda: ["clean", "hard"])  # what each snapshot plays

    def __post_init__(self) -> None:
        require_positive_fields(self, "num_envs", "snapshot_episodes")
        require(self.episodes >= 0, f"episodes={self.episodes} must be >= 0 (0: policy invariance only)")
        require(
            self.episodes > 0 or self.invariance_states > 0,
            "episodes=0 plays no games and invariance_states=0 measures no states: nothing would be evaluated; "
            "set eval.episodes or eval.invariance_states above 0",
        )
        require(self.invariance_states >= 0, f"invariance_states={self.invariance_states} must be >= 0 (0: off)")
        require(self.snapshots >= 0, f"snapshots={self.snapshots} must be >= 0 (0: none)")
        require(
            self.invariance_states == 0 or "clean" in self.suite,
            f"invariance_states={self.invariance_states} compares each perturbation with clean, which "
            f"suite={list(self.suite)} lacks; add clean to eval.suite or set eval.invariance_states=0",
        )
        require(0 <= self.sticky_actions <= 1, f"sticky_actions={self.sticky_actions} must be in [0, 1]")
        require(
            self.blind_floor in BLIND_FLOORS,
            f"blind_floor={self.blind_floor} is not a blind floor; choose one of {', '.join(BLIND_FLOORS)}",
        )
        require(0 <= self.min_skill_share < 1, f"min_skill_share={self.min_skill_share} must be in [0, 1)")
        require(self.seed_offset >= 0, f"seed_offset={self.seed_offset} must be >= 0")
        require(len(self.suite) > 0, "suite is empty; list perturbations, e.g. eval.suite=[clean,noise]")
