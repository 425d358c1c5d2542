"""The report's headline: robustness of the skill that comes from the pixels (markdown lines).

It uses only measures a policy that does not look cannot win: which seeds' skill comes from the pixels
(clean play above the blind floor), retention above that floor, policy invariance relative to the game's
own variation, and retention at matched skill. The measures such a policy can win (the policy's TV, its
greedy agreement) follow in a section of their own, labelled so.
"""

from __future__ import annotations

from typing import Any

from jepa_rl.envs import game_shifts
from jepa_rl.sweep.robustness import corruption_error_lines


def fmt_ci(value: float, ci: list[float], digits: int = 2) -> str:
    """``value [low, high]``, each with ``digits`` decimals."""
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def measure_table(
    stats: dict[str, dict[str, dict]], perturbations: list[str], notes: dict[str, str], key: str = "mean"
) -> str:
    """Markdown table of a measure: ``key`` [95% CI] (``<key>_ci``, or ``ci``) per condition and perturbation."""
    rows = ["| condition | " + " | ".join(perturbations) + " |", "|---" * (len(perturbations) + 1) + "|"]
    for condition, per in sorted(stats.items()):
        cols = [fmt_ci(per[p][key], per[p].get(f"{key}_ci", per[p].get("ci"))) for p in perturbations]
        rows.append(f"| {condition}{notes.get(condition, '')} | " + " | ".join(cols) + " |")
    return "\n".join(rows)


def floors_table(floors: dict[str, dict[str, Any]]) -> list[str]:
    """Per condition: how many seeds' skill comes from the pixels, and the mean clean, random and blind scores."""

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    rows = ["| condition | skill from the pixels | clean | random play | blind play |", "|---|---|---|---|---|"]
    for condition, f in sorted(floors.items()):
        unmeasured = f["seeds"] - f["blind_seeds"]
        caveat = f" ({unmeasured} without a blind floor: random only)" if unmeasured else ""
        rows.append(
            f"| {condition} | {f['from_pixels']} of {f['seeds']} seeds{caveat} | {num(f['clean'])} | "
            f"{num(f['random'])} | {num(f['blind'])} |"
        )
    return rows


def retention_findings(robust: dict[str, Any]) -> list[str]:
    """Per perturbation, the condition keeping most of the skill that comes from its pixels, and whether the
    next one's interval overlaps; then P(A > B) on per-seed retention."""
    out = []
    seeds, retention = robust["retention_seeds"], robust["retention"]
    for p in robust["perturbations"]:
        ranked = sorted(retention, key=lambda k: -retention[k][p]["retention"])
        if len(ranked) < 2:
            break
        (first, second), (a, b) = ranked[:2], (retention[ranked[0]][p], retention[ranked[1]][p])
        single = min(seeds[first], seeds[second]) < 2  # one seed: its "interval" is a point
        if single:
            verdict = "one of them has retention for a single seed only, so the order is not resolved"
        elif a["ci"][0] > b["ci"][1]:
            verdict = "the intervals do not overlap"
        else:
            verdict = "the intervals overlap, so the order is not resolved"
        out.append(
            f"- under {p}, {first} keeps the most of the skill that comes from its pixels "
            f"({fmt_ci(a['retention'], a['ci'])}), then {second} ({fmt_ci(b['retention'], b['ci'])}): {verdict}"
        )
    for pair, est in robust["retention_pairs"].items():
        if min(seeds[name] for name in pair.split(" > ")) < 2:
            out.append(f"- P(retention of {pair}): not estimated, one of them has retention for a single seed only")
        else:
            out.append(pair_finding(pair, est, "retention of "))
    return out


def pair_finding(pair: str, est: dict[str, Any], measure: str = "") -> str:
    """One sentence on P(first > second) of ``measure`` (raw scores by default, ``"retention of "``) and
    whether its 95% interval excludes 0.5."""
    lo, hi = est["ci"]
    first, second = pair.split(" > ", 1)
    if lo > 0.5:
        verdict = f"{first} scores higher more often than not, and the interval excludes 0.5"
    elif hi < 0.5:
        verdict = f"{second} scores higher more often than not, and the interval excludes 0.5"
    else:
        verdict = "the interval includes 0.5: no reliable difference"
    return f"- P({measure}{pair}) over all perturbations = {est['p']:.2f} [{lo:.2f}, {hi:.2f}]: {verdict}"


FLOORS_TEXT = (
    "Each cell measured two policies that do not look at the screen, under its evaluation's protocol: a "
    "uniformly random one, and a blind one that plays the agent's own action preferences (`eval.blind_floor`). "
    "Its floor is the higher of the two. A seed's skill comes from the pixels when its clean play clears that "
    "floor by more than two standard errors and by `eval.min_skill_share` of the game's random-to-human range; "
    "only those seeds have a retention."
)
RETENTION_TEXT = (
    "Retention = (perturbed - floor) / (clean - floor): 1 keeps all the skill that comes from the pixels, 0 "
    "plays as well as a policy that ignores them. Per condition, a ratio of sums over its seeds with a "
    "retention, sum(perturbed - floor) / sum(clean - floor), so that a seed that barely cleared its floor "
    "weighs little; 95% bootstrap CI over seeds."
)
RATIO_TEXT = (
    "Policy invariance relative to the game's own variation, on identical states (a uniform sample of the "
    "clean games' states, each seen under every perturbation): the policy's TV under the perturbation over "
    "its TV between two states of the same clean game. Below 1, the perturbation moves the policy less than "
    "the game does; undefined for a policy that hardly reads its frames. Mean over seeds, 95% CI."
)


def retention_lines(robust: dict[str, Any]) -> list[str]:
    """The retention tables (perturbations of the pixels, then shifts of the game) and their corruption error."""
    notes = {
        k: f" ({n} seed(s) left out: no skill from the pixels)"
        for k, n in robust["retention_undefined_seeds"].items()
        if n
    }
    perts = robust["perturbations"]
    shifts = [p for p in perts if game_shifts.parse_shift(p)]
    pixels = [p for p in perts if p not in shifts]
    table = robust["retention"]
    parts = ["", RETENTION_TEXT]
    parts += ["", measure_table(table, pixels, notes, "retention")] if pixels else []
    if shifts:
        parts += ["", "Shifts of the game itself (recolourings, modes, difficulties): retention.", ""]
        parts += [measure_table(table, shifts, notes, "retention")]
    return parts + corruption_error_lines(robust.get("corruption_error") or {})


def matched_lines(matched: dict[str, Any]) -> list[str]:
    """Retention at matched skill, with the conditions that never reached the level."""
    if matched["level"] is None:
        if not matched["below_level"]:
            return []
        return ["", f"Matched skill: no snapshot clears the minimum skill ({matched['min_skill']:.2f} points above its "
                f"floor): {', '.join(matched['below_level'])}."]  # fmt: skip
    names = list(next(iter(matched["conditions"].values()))["retention"]) if matched["conditions"] else []
    parts = [
        "",
        f"Matched skill: retention at {matched['level']:.2f} clean points above the floor (the highest skill every "
        f"compared condition reached in a training snapshot), each seed's snapshot within "
        f"±{matched['tolerance']:.2f} of it; ratio of sums over seeds, 95% CI.",
        "",
        "| condition | seeds | skill at the snapshot | " + " | ".join(names) + " |",
        "|---" * (len(names) + 3) + "|",
    ]
    for k, v in matched["conditions"].items():
        cols = [fmt_ci(v["retention"][p]["retention"], v["retention"][p]["ci"]) for p in names]
        parts.append(f"| {k} | {v['seeds']} | {v['skill']:.2f} | " + " | ".join(cols) + " |")
    if matched["below_level"]:
        parts += ["", f"Never reached the minimum skill in a snapshot (left out): {', '.join(matched['below_level'])}."]
    if matched["none_near"]:
        parts += ["", f"No snapshot within the tolerance of the level (left out): {', '.join(matched['none_near'])}."]
    return parts


def robustness_section(robust: dict[str, Any]) -> list[str]:
    """The headline (measures a blind policy cannot win), then the measures it can, labelled so."""
    parts = [
        "## Robustness of the skill that comes from the pixels",
        "",
        FLOORS_TEXT,
        "",
        *floors_table(robust["floors"]),
    ]
    played = any(f["clean"] is not None for f in robust["floors"].values())
    if robust["retention"]:
        parts += retention_lines(robust)
    elif played:
        parts += ["", "No condition's skill comes from the pixels on any seed: retention is undefined everywhere."]
    else:
        parts += [
            "",
            "No cell played games (eval.episodes=0): no retention, policy invariance on identical states only.",
        ]
    if robust.get("tv_ratio"):
        seen = robust["invariance_perturbations"]
        blind = {
            k: f" ({n} seed(s) left out: the policy hardly reads its frames)"
            for k, n in robust["blind_to_frames"].items()
            if n
        }
        parts += ["", RATIO_TEXT, "", measure_table(robust["tv_ratio"], seen, blind)]
    parts += matched_lines(robust["matched_skill"])
    parts += ["", "### Findings on retention", "", *(retention_findings(robust) or ["- nothing to compare"]), ""]
    if robust["tv"]:
        seen = robust["invariance_perturbations"]
        parts += [
            "### Measures a policy that ignores the frame wins",
            "",
            "A policy that does not look scores a perfect 0 on the first and 1 on the second: read them with the "
            "measures above.",
            "",
            "**Policy TV on identical states** (0 = unchanged; mean over seeds, 95% CI)",
            "",
            measure_table(robust["tv"], seen, {}),
            "",
            "**Greedy agreement on identical states** (the share of states whose most likely action is unchanged)",
            "",
            measure_table(robust["greedy_agreement"], seen, {}),
        ]
        parts += corruption_error_lines(robust.get("invariance_corruption_error") or {}, on_tv=True) + [""]
    return parts
