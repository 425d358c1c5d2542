"""The sweep's robustness measures that near-random play cannot win: retention above random play, policy
invariance on identical states, and retention at matched clean skill (from the training snapshots).

Each is a ``[seeds, perturbations]`` matrix per condition, read from the cells' ``results.json``; the
statistics are ``statistics.interval_estimates`` on them. A cell whose clean play is not clearly above
random has no retention (``results.json`` says why) and is counted, not averaged in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from jepa_rl.envs.corruptions import parse_corruption
from jepa_rl.sweep.cells import MEASURED_INVARIANCE, Cell
from jepa_rl.sweep.statistics import interval_estimates, probability_of_improvement


def done(cells: list[Cell], condition: str) -> list[Cell]:
    return [c for c in cells if c.condition == condition and c.status == "ok"]


def conditions(cells: list[Cell]) -> list[str]:
    return sorted({c.condition for c in cells if c.status == "ok"})


def retention_matrix(cells: list[Cell], perturbations: list[str]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Per condition: ``[seeds with retention, perturbations]``; and per condition the seeds without one."""
    matrices, undefined = {}, {}
    for condition in conditions(cells):
        rows = [c.results.get("retention") for c in done(cells, condition)]
        defined = [[r[p] for p in perturbations] for r in rows if r]
        undefined[condition] = len(rows) - len(defined)
        if defined:
            matrices[condition] = np.array(defined, dtype=float)
    return matrices, undefined


def measured_invariance(cells: list[Cell]) -> list[Cell]:
    """The cells that measured policy invariance: the finished ones and those that played no games."""
    return [c for c in cells if c.status in MEASURED_INVARIANCE]


def invariance_matrix(cells: list[Cell], perturbations: list[str], key: str) -> dict[str, np.ndarray]:
    """Per condition: ``[seeds, perturbations]`` of the policy-invariance measure ``key`` (``tv`` or
    ``greedy_agreement``), over the cells that measured it (``no_games`` cells too)."""
    out, measured = {}, measured_invariance(cells)
    for condition in sorted({c.condition for c in measured}):
        rows = [c.results.get("policy_invariance") for c in measured if c.condition == condition]
        values = [[r[p][key] for p in perturbations] for r in rows if r and all(p in r for p in perturbations)]
        if values:
            out[condition] = np.array(values, dtype=float)
    return out


def snapshot_points(cells: list[Cell]) -> list[dict[str, Any]]:
    """Every training snapshot of every finished cell: ``condition, seed, step, clean, perturbation, retention``.

    Retention uses the cell's measured random policy; a snapshot whose clean score is not above it has none.
    """
    points = []
    for c in cells:
        random = (c.results.get("random_policy") or {}).get("mean")
        if c.status != "ok" or random is None:
            continue
        for snap in c.results.get("snapshots") or []:
            clean = snap["eval"].get("clean", {}).get("mean")
            for name, r in snap["eval"].items():
                if name == "clean" or clean is None:
                    continue
                kept = (r["mean"] - random) / (clean - random) if clean > random else None
                points.append(
                    {"condition": c.condition, "seed": c.seed, "step": snap["step"], "clean": clean}
                    | {"perturbation": name, "retention": kept}
                )
    return points


def matched_skill(points: list[dict[str, Any]]) -> tuple[float | None, dict[str, dict[str, Any]]]:
    """Retention at matched clean skill: the highest clean score every condition reached in some snapshot,
    and per condition the mean retention over its seeds at the snapshot nearest that score (from each seed).

    Returns ``(level, {condition: {retention, seeds, clean}})``; ``(None, {})`` without snapshots.
    """
    usable = [p for p in points if p["retention"] is not None]
    if not usable:
        return None, {}
    best = {}
    for p in usable:
        best[p["condition"]] = max(best.get(p["condition"], -np.inf), p["clean"])
    level = min(best.values())
    out = {}
    for condition in sorted(best):
        nearest = {}
        for p in usable:
            if p["condition"] != condition:
                continue
            seen = nearest.get(p["seed"])
            if seen is None or abs(p["clean"] - level) < abs(seen["clean"] - level):
                nearest[p["seed"]] = p
        chosen = list(nearest.values())
        out[condition] = {
            "retention": float(np.mean([p["retention"] for p in chosen])),
            "clean": float(np.mean([p["clean"] for p in chosen])),
            "seeds": len(chosen),
        }
    return level, out


def robustness_statistics(cells: list[Cell], suite: list[str], reps: int, seed: int) -> dict[str, Any]:
    """Retention, policy invariance and matched skill with 95% CIs, and P(A > B) on retention between
    every two conditions: what ``stats.json`` and the report's headline hold (JSON-able)."""
    perturbations = [p for p in suite if p != "clean"]
    if not perturbations:
        return {}
    retained, undefined = retention_matrix(cells, perturbations)

    def by_name(stats: dict) -> dict:
        return {k: {perturbations[j]: v for j, v in per.items()} for k, per in stats.items()}

    out: dict[str, Any] = {"perturbations": perturbations, "retention_undefined_seeds": undefined}
    out["retention_seeds"] = {k: int(m.shape[0]) for k, m in retained.items()}
    out["retention"] = by_name(interval_estimates(retained, reps, seed)) if retained else {}
    # Invariance covers the pixel perturbations (a shift of the game itself has no identical states).
    rows = [c.results.get("policy_invariance") or {} for c in measured_invariance(cells)]
    seen = [p for p in perturbations if rows and all(p in r for r in rows)]
    out["invariance_perturbations"] = seen
    for key in ("tv", "greedy_agreement"):
        matrix = invariance_matrix(cells, seen, key) if seen else {}
        stats = interval_estimates(matrix, reps, seed) if matrix else {}
        out[key] = {k: {seen[j]: v for j, v in per.items()} for k, per in stats.items()}
    out["corruption_error"] = corruption_error(
        {k: dict(zip(perturbations, m.mean(0), strict=True)) for k, m in retained.items()}
    )
    # The same on identical states, where the error is the policy's TV: defined for near-random agents too.
    tv = invariance_matrix(cells, seen, "tv") if seen else {}
    out["invariance_corruption_error"] = corruption_error(
        {k: dict(zip(seen, m.mean(0), strict=True)) for k, m in tv.items()}, error=float
    )
    names = sorted(retained)
    out["retention_pairs"] = {
        f"{a} > {b}": probability_of_improvement(retained[a], retained[b], reps, seed)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    level, matched = matched_skill(snapshot_points(cells))
    out["matched_skill"] = {"clean_level": level, "conditions": matched}
    randoms = [c.results["random_policy"]["mean"] for c in cells if c.status == "ok" and c.results.get("random_policy")]
    out["random_policy_mean"] = float(np.mean(randoms)) if randoms else None
    return out


def corruption_families(names: list[str]) -> dict[str, list[str]]:
    """The suite names of corruption families at severities (``gaussian_noise_3``), grouped by family."""
    out: dict[str, list[str]] = {}
    for name in names:
        parsed = parse_corruption(name)
        if parsed:
            out.setdefault(parsed[0], []).append(name)
    return out


def corruption_error(
    measure: dict[str, dict[str, float]], reference: str = "cnn", error: Callable[[float], float] = lambda r: 1 - r
) -> dict[str, Any]:
    """ImageNet-C's corruption error: per family, the condition's ``error`` (by default the skill lost,
    ``1 - retention``) summed over severities, over the reference condition's (the CNN, as ImageNet-C
    divides by AlexNet's errors); ``mCE`` their mean over families. Empty without the reference or corruptions."""
    families = corruption_families(list(next(iter(measure.values()), {})))
    if reference not in measure or not families:
        return {}
    lost = {k: {f: sum(error(r[n]) for n in names) for f, names in families.items()} for k, r in measure.items()}
    out = {}
    for condition, per in lost.items():
        ce = {f: per[f] / lost[reference][f] if lost[reference][f] > 0 else None for f in families}
        known = [v for v in ce.values() if v is not None]
        out[condition] = {**ce, "mCE": float(np.mean(known)) if known else None}
    return {"reference": reference, "conditions": out}


def corruption_error_lines(ce: dict[str, Any], on_tv: bool = False) -> list[str]:
    """The corruption-error table (ImageNet-C style, relative to the reference condition): on retention,
    or (``on_tv``) on the policy's TV on identical states."""
    if not ce:
        return []
    conditions = ce["conditions"]
    families = [f for f in next(iter(conditions.values())) if f != "mCE"]
    ref = ce["reference"]
    what, less = (
        (f"policy change: per family, sum over severities of the policy TV on identical states over {ref}'s", "changes")
        if on_tv
        else (f"lost skill: per family, sum over severities of (1 - retention) over {ref}'s", "loses")
    )
    lines = [
        "",
        f"Corruption error, as ImageNet-C's on {what}; mCE is their mean (below 1: {less} less than {ref}).",
        "",
        "| condition | mCE | " + " | ".join(families) + " |",
        "|---" * (len(families) + 2) + "|",
    ]
    for condition, per in sorted(conditions.items()):
        cols = ["-" if per[k] is None else f"{per[k]:.2f}" for k in ("mCE", *families)]
        lines.append(f"| {condition} | " + " | ".join(cols) + " |")
    return lines
