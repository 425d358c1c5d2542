"""Retention at matched skill, from the training snapshots (``eval.snapshots``).

Conditions that learn at different speeds are compared where they play equally well. A snapshot's skill is
its clean score above its floor (the higher of the cell's random play and the snapshot's own blind play).

- The **level** is the highest skill that every compared condition reached in some snapshot. A condition
  is compared when its best snapshot clears the minimum skill (the retention gate's share of the game's
  random-to-human range); the others are listed as never reaching the level, not allowed to drag it down.
- Each seed contributes its snapshot nearest the level, and only one **within a tolerance** of it
  (``TOLERANCE`` of the level); a seed with none is left out and counted.
- Every perturbation of the snapshot suite is compared, as a ratio of sums over seeds with a bootstrap
  95% interval (``statistics.summed_skill_ratio``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jepa_rl.sweep.cells import Cell
from jepa_rl.sweep.statistics import summed_skill_ratio

TOLERANCE = 0.25  # a snapshot is at the level when its skill is within 25% of it


def snapshot_points(cells: list[Cell]) -> list[dict[str, Any]]:
    """Every snapshot of every finished cell, per perturbation: ``condition, seed, step, clean, skill,
    perturbation, retention``. A snapshot whose clean play is not above its floor has no retention (None)."""
    points = []
    for c in cells:
        random = (c.results.get("random_policy") or {}).get("mean")
        if c.status != "ok" or random is None:
            continue
        by_variant = c.results.get("random_policy_by_variant") or {}
        for snap in c.results.get("snapshots") or []:
            if "clean" not in snap["eval"]:
                continue
            blind = (snap.get("blind_policy") or {}).get("mean")
            floor = random if blind is None else max(random, blind)
            clean = snap["eval"]["clean"]["mean"]
            skill = clean - floor
            for name, r in snap["eval"].items():
                if name != "clean":
                    floor_here = by_variant[name]["mean"] if name in by_variant else floor
                    kept = (r["mean"] - floor_here) / skill if skill > 0 else None
                    points.append(
                        {"condition": c.condition, "seed": c.seed, "step": snap["step"], "clean": clean}
                        | {"skill": skill, "perturbation": name, "retention": kept}
                    )
    return points


def nearest_per_seed(points: list[dict[str, Any]], level: float, tolerance: float) -> list[list[dict[str, Any]]]:
    """Per seed, the points of its snapshot whose skill is nearest ``level`` (the earliest of equals), if
    within ``tolerance`` of it."""
    snapshots: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for p in points:
        snapshots.setdefault((p["seed"], p["step"]), []).append(p)
    best: dict[int, list[dict[str, Any]]] = {}
    for (seed, _), snap in sorted(snapshots.items()):  # by step: the earliest of equals stays
        gap = abs(snap[0]["skill"] - level)
        if gap <= tolerance and (seed not in best or gap < abs(best[seed][0]["skill"] - level)):
            best[seed] = snap
    return [best[s] for s in sorted(best)]


def matched_skill(cells: list[Cell], min_skill: float, reps: int, seed: int) -> dict[str, Any]:
    """``{level, tolerance, min_skill, conditions, below_level, none_near}``: per compared condition, at the
    level, ``{seeds, skill, clean, retention: {perturbation: {retention, ci}}}``; ``level`` None when no
    condition's snapshots clear ``min_skill``."""
    every = snapshot_points(cells)
    points = [p for p in every if p["retention"] is not None]
    with_snapshots = sorted({p["condition"] for p in every})  # snapshots measured against a floor
    best: dict[str, float] = {}
    for p in points:
        best[p["condition"]] = max(best.get(p["condition"], -np.inf), p["skill"])
    reached = {k: b for k, b in best.items() if b > min_skill}
    out: dict[str, Any] = {"level": None, "tolerance": None, "min_skill": min_skill, "conditions": {}}
    out |= {"below_level": [k for k in with_snapshots if k not in reached], "none_near": []}
    if not reached:
        return out
    level = min(reached.values())
    out |= {"level": level, "tolerance": TOLERANCE * level}
    for condition in sorted(reached):
        chosen = nearest_per_seed([p for p in points if p["condition"] == condition], level, TOLERANCE * level)
        if not chosen:
            out["none_near"].append(condition)
            continue
        names = [p["perturbation"] for p in chosen[0]]
        skill = np.array([snap[0]["skill"] for snap in chosen])
        kept = np.array([[p["retention"] * p["skill"] for p in snap] for snap in chosen])
        ratios = summed_skill_ratio(skill, kept, reps, seed)
        out["conditions"][condition] = {
            "seeds": len(chosen),
            "skill": float(skill.mean()),
            "clean": float(np.mean([snap[0]["clean"] for snap in chosen])),
            "retention": {names[j]: r for j, r in ratios.items()},
        }
    return out
