"""Check ``jepa_rl.envs.corruptions`` against the reference implementation (the ``imagecorruptions`` package).

Not part of the test suite: the reference needs ``imagecorruptions`` (and its scikit-image, SciPy,
opencv-python and a setuptools that still ships ``pkg_resources``), which this project does not depend
on. In an environment that has them and this project on the path::

    python reference_checks/corruptions_vs_reference.py

On real Breakout frames it prints, per family and severity, how far this project's output is from
the reference's: for the deterministic families the largest and the mean per-pixel difference (0-255);
for the random ones (noise, motion blur's angle) the statistics of the change from the clean frame,
which must agree while the draws differ.
"""

from __future__ import annotations

import numpy as np

from jepa_rl.envs.corruptions import FAMILIES, corrupt

ANGLE = 20.0


class FixedAngle:
    """Stands in for a generator: motion blur's angle, fixed so that both implementations use it."""

    def uniform(self, low: float, high: float) -> float:
        return ANGLE


def frames(count: int = 8) -> list[np.ndarray]:
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make("ALE/Breakout-v5")
    obs, _ = env.reset(seed=0)
    out, rng = [], np.random.default_rng(0)
    while len(out) < count:
        for _ in range(25):
            obs, _, term, trunc, _ = env.step(int(rng.integers(4)))
            if term or trunc:
                obs, _ = env.reset()
        out.append(obs)
    return out


def reference(frame: np.ndarray, family: str, severity: int) -> np.ndarray:
    from imagecorruptions import corrupt as reference_corrupt

    return np.asarray(reference_corrupt(frame, corruption_name=family, severity=severity), dtype=np.uint8)


def change(a: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    delta = a.astype(float) - clean
    return float(np.abs(delta).mean()), float(delta.std())


def main() -> None:
    from imagecorruptions import corruptions as ref

    shots = frames()
    print(f"{'family':<18} sev  deterministic: max / mean |ours - ref|   random: mean |change| ours / ref")
    for family in FAMILIES:
        for severity in range(1, 6):
            ours = [corrupt(f, family, severity, np.random.default_rng(i)) for i, f in enumerate(shots)]
            if family == "motion_blur":  # the same angle for both: compare the kernels' effect
                radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
                theirs = [np.clip(ref._motion_blur(f, radius, sigma, ANGLE), 0, 255).astype(np.uint8) for f in shots]
                ours = [corrupt(f, family, severity, FixedAngle()) for f in shots]
            else:
                np.random.seed(severity)
                theirs = [reference(f, family, severity) for f in shots]
            if family in ("gaussian_noise", "shot_noise", "impulse_noise"):
                a = np.mean([change(o, f)[0] for o, f in zip(ours, shots, strict=True)])
                b = np.mean([change(t, f)[0] for t, f in zip(theirs, shots, strict=True)])
                print(f"{family:<18} {severity}    {'':<40} {a:6.2f} / {b:6.2f}")
            else:
                diff = np.abs(np.stack(ours).astype(int) - np.stack(theirs))
                print(f"{family:<18} {severity}    {diff.max():5d} / {diff.mean():6.3f}")


if __name__ == "__main__":
    main()
