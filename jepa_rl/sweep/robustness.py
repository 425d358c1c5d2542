"""The sweep's robustness measures that play without looking cannot win.

- **Floors and skill from the pixels.** Each cell measured a uniformly random policy and a blind one (the
  agent's own action preferences, played without looking); its floor is the higher of the two, and its
  skill comes from the pixels when clean play clears that floor by the gate (two standard errors and a
  share of the game's random-to-human range): then, and only then, it has a retention.
- **Retention** per perturbation, aggregated over a condition's seeds as a ratio of sums, ``sum(kept) /
  sum(skill)``, so that one barely-passing seed cannot swing it (``statistics.summed_skill_ratio``).
- **Policy invariance** on identical states, as the ratio of the policy's change under a perturbation to
  its change across the game's own states (``tv_ratio``: undefined for a policy that ignores its frames).
- **Corruption error** (ImageNet-C's) on bounded errors, ``1 - clip(retention, 0, 1)``, over the seeds
  every condition has, against a reference condition.

Matched skill, from the training snapshots, is in ``matched_skill``. Every matrix is ``[seeds,
perturbations]`` per condition, read from the cells' ``results.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from jepa_rl.envs.corruptions import parse_corruption
from jepa_rl.sweep.cells import MEASURED_INVARIANCE, Cell
from jepa_rl.sweep.matched_skill import matched_skill
from jepa_rl.sweep.statistics import interval_estimates, probability_of_improvement, summed_skill_ratio


def done(cells: list[Cell], condition: str) -> list[Cell]:
    return [c for c in cells if c.condition == condition and c.status == "ok"]


def conditions(cells: list[Cell]) -> list[str]:
    return sorted({c.condition for c in cells if c.status == "ok"})


def floor_of(results: dict[str, Any]) -> tuple[str, float] | None:
    """``(kind, mean)`` of a cell's floor: the higher of random and blind play (None when neither was measured)."""
    measured = [(k, results[f"{k}_policy"]["mean"]) for k in ("random", "blind") if results.get(f"{k}_policy")]
    return max(measured, key=lambda km: km[1]) if measured else None


def floors(cells: list[Cell]) -> dict[str, dict[str, Any]]:
    """Per condition: mean clean, random and blind scores over its finished cells, and how many of its seeds
    have skill from the pixels (clean clears the floor by the gate, so retention is defined)."""
    out = {}
    for condition in conditions(cells):
        rows = done(cells, condition)

        def mean(key: str, rows: list[Cell] = rows) -> float | None:
            values = [c.results[key]["mean"] for c in rows if c.results.get(key)]
            return float(np.mean(values)) if values else None

        clean = [c.results["eval"]["clean"]["mean"] for c in rows if "clean" in c.results.get("eval", {})]
        out[condition] = {
            "clean": float(np.mean(clean)) if clean else None,
            "random": mean("random_policy"),
            "blind": mean("blind_policy"),
            "blind_seeds": sum(bool(c.results.get("blind_policy")) for c in rows),
            "from_pixels": sum(c.results.get("retention") is not None for c in rows),
            "seeds": len(rows),
        }
    return out


def retained(cells: list[Cell], perturbations: list[str]) -> dict[str, dict[str, Any]]:
    """Per condition with a retention on some seed: ``seeds`` (their numbers), ``skill`` (clean points above
    the floor, ``[seeds]``) and ``retention`` (``[seeds, perturbations]``)."""
    out = {}
    for condition in conditions(cells):
        rows = [c for c in done(cells, condition) if c.results.get("retention")]
        if rows:
            out[condition] = {
                "seeds": [c.seed for c in rows],
                "skill": np.array([c.results["eval"]["clean"]["mean"] - floor_of(c.results)[1] for c in rows]),
                "retention": np.array([[c.results["retention"][p] for p in perturbations] for c in rows], dtype=float),
            }
    return out


def measured_invariance(cells: list[Cell]) -> list[Cell]:
    """The cells that measured policy invariance: the finished ones and those that played no games."""
    return [c for c in cells if c.status in MEASURED_INVARIANCE]


def invariance_matrix(cells: list[Cell], perturbations: list[str], key: str) -> dict[str, np.ndarray]:
    """Per condition: ``[seeds, perturbations]`` of the policy-invariance measure ``key`` (``tv``,
    ``greedy_agreement`` or ``tv_ratio``), over the cells that measured it (``no_games`` cells too) and
    have it under every perturbation (a ``tv_ratio`` is null for a policy that ignores its frames)."""
    out, measured = {}, measured_invariance(cells)
    for condition in sorted({c.condition for c in measured}):
        rows = [c.results.get("policy_invariance") or {} for c in measured if c.condition == condition]
        values = [[r[p].get(key) for p in perturbations] for r in rows if all(p in r for p in perturbations)]
        values = [v for v in values if None not in v]
        if values:
            out[condition] = np.array(values, dtype=float)
    return out


def robustness_statistics(
    cells: list[Cell], suite: list[str], reps: int, seed: int, reference: str = "cnn", min_skill: float = 0.0
) -> dict[str, Any]:
    """Floors, retention (ratio of sums, 95% CIs), policy invariance, corruption error, matched skill, and
    P(A > B) on per-seed retention between every two conditions: what ``stats.json`` and the report's
    headline hold (JSON-able). ``reference``: the corruption error's reference condition; ``min_skill``:
    the points above its floor a snapshot needs for matched skill."""
    perturbations = [p for p in suite if p != "clean"]
    if not perturbations:
        return {}
    kept = retained(cells, perturbations)
    out: dict[str, Any] = {"perturbations": perturbations, "floors": floors(cells), "reference": reference}
    out["retention_seeds"] = {k: len(v["seeds"]) for k, v in kept.items()}
    out["retention_undefined_seeds"] = {k: f["seeds"] - f["from_pixels"] for k, f in out["floors"].items()}
    out["retention"] = {}
    for k, v in kept.items():
        ratios = summed_skill_ratio(v["skill"], v["retention"] * v["skill"][:, None], reps, seed)
        out["retention"][k] = {perturbations[j]: r for j, r in ratios.items()}
    out.update(invariance_statistics(cells, perturbations, reps, seed, reference))
    out["corruption_error"] = corruption_error(kept, perturbations, reference)
    names = sorted(kept)
    out["retention_pairs"] = {
        f"{a} > {b}": probability_of_improvement(kept[a]["retention"], kept[b]["retention"], reps, seed)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    out["matched_skill"] = matched_skill(cells, min_skill, reps, seed)
    for kind in ("random", "blind"):
        values = [f[kind] for f in out["floors"].values() if f[kind] is not None]
        out[f"{kind}_policy_mean"] = float(np.mean(values)) if values else None
    return out


def invariance_statistics(
    cells: list[Cell], perturbations: list[str], reps: int, seed: int, reference: str
) -> dict[str, Any]:
    """``tv``, ``greedy_agreement`` and ``tv_ratio`` (mean over seeds, 95% CIs) on the perturbations every cell
    saw on identical states (a shift of the game itself has none), and the TV's corruption error."""
    rows = [c.results.get("policy_invariance") or {} for c in measured_invariance(cells)]
    seen = [p for p in perturbations if rows and all(p in r for r in rows)]
    out: dict[str, Any] = {"invariance_perturbations": seen}
    for key in ("tv", "greedy_agreement", "tv_ratio"):
        matrix = invariance_matrix(cells, seen, key) if seen else {}
        stats = interval_estimates(matrix, reps, seed) if matrix else {}
        out[key] = {k: {seen[j]: v for j, v in per.items()} for k, per in stats.items()}
    out["blind_to_frames"] = {  # cells whose policy hardly moves across the game's own states
        k: sum(any(r.get(p, {}).get("tv_ratio", 0) is None for p in seen) for r in rows_of(cells, k))
        for k in sorted({c.condition for c in measured_invariance(cells)})
    }
    tv = invariance_matrix(cells, seen, "tv") if seen else {}
    mean_tv = {k: dict(zip(seen, m.mean(0), strict=True)) for k, m in tv.items()}
    out["invariance_corruption_error"] = family_errors(mean_tv, seen, reference, error=float)
    return out


def rows_of(cells: list[Cell], condition: str) -> list[dict]:
    return [c.results.get("policy_invariance") or {} for c in measured_invariance(cells) if c.condition == condition]


def corruption_families(names: list[str]) -> dict[str, list[str]]:
    """The suite names of corruption families at severities (``gaussian_noise_3``), grouped by family."""
    out: dict[str, list[str]] = {}
    for name in names:
        parsed = parse_corruption(name)
        if parsed:
            out.setdefault(parsed[0], []).append(name)
    return out


def corruption_error(kept: dict[str, dict[str, Any]], perturbations: list[str], reference: str) -> dict[str, Any]:
    """ImageNet-C's corruption error on retention: per condition, over the seeds that have a retention in every
    condition, the bounded skill lost per perturbation, ``1 - clip(retention, 0, 1)`` (retention as a ratio of
    sums over those seeds), summed over a family's severities, over the ``reference`` condition's.

    ``{}`` without corruptions in the suite; ``{"reference", "problem"}`` when it cannot be computed."""
    families = corruption_families(perturbations)
    if not families:
        return {}
    if reference not in kept:
        return {"reference": reference, "problem": f"the reference condition {reference} has no retention"}
    common = sorted(set.intersection(*(set(v["seeds"]) for v in kept.values())))
    if not common:
        return {"reference": reference, "problem": "no seed has a retention in every condition"}
    measure = {}
    for condition, v in kept.items():
        rows = [v["seeds"].index(s) for s in common]
        skill, retention = v["skill"][rows], v["retention"][rows]
        summed = (retention * skill[:, None]).sum(0) / skill.sum()
        measure[condition] = dict(zip(perturbations, np.clip(summed, 0, 1), strict=True))
    return family_errors(measure, perturbations, reference) | {"seeds": common}


def family_errors(
    measure: dict[str, dict[str, float]],
    names: list[str],
    reference: str,
    error: Callable[[float], float] = lambda r: 1 - r,
) -> dict[str, Any]:
    """Per condition and corruption family: ``error`` summed over severities, over the reference condition's;
    ``mCE`` the mean over the families where the reference's error is not 0. ``{}`` without the reference."""
    families = corruption_families(names)
    if reference not in measure or not families:
        return {}
    lost = {k: {f: sum(error(r[n]) for n in ns) for f, ns in families.items()} for k, r in measure.items()}
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
    ref = ce["reference"]
    if "problem" in ce:
        return ["", f"No corruption error: {ce['problem']} (reference: {ref}, hydra.callbacks.aggregate.reference)."]
    conditions = ce["conditions"]
    families = [f for f in next(iter(conditions.values())) if f != "mCE"]
    what, less = (
        (f"policy change: per family, sum over severities of the policy TV on identical states over {ref}'s", "changes")
        if on_tv
        else (
            f"lost skill: per family, sum over severities of 1 - clip(retention, 0, 1) over {ref}'s, on the seeds "
            f"every condition has a retention for ({', '.join(map(str, ce['seeds']))})",
            "loses",
        )
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
