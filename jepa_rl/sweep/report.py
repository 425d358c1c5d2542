"""``REPORT.md`` for a sweep: question, protocol, tables, statistics, and findings computed from the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from jepa_rl.envs.reference_scores import REFERENCE_SCORES
from jepa_rl.sweep.cells import NOT_A_PROBLEM, Cell, measured_random, robustness_ratios
from jepa_rl.sweep.games import across_games_section
from jepa_rl.sweep.robustness_report import fmt_ci, pair_finding, robustness_section
from jepa_rl.sweep.statistics import normalised

QUESTION = (
    "Does a self-supervised JEPA encoder make an Atari PPO agent more robust to visual perturbations "
    "than a CNN trained end to end, with a pixel-reconstruction autoencoder as the control?"
)


def mean_std(values: np.ndarray, digits: int) -> str:
    """``mean ± sample std`` (ddof=1) of ``values``; the mean alone for a single value, ``-`` for none."""
    if len(values) == 0:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def study_table(cells: list[Cell], suite: list[str]) -> str:
    """The study's table in markdown: mean ± sample std over seeds per perturbation, and the robustness ratio."""
    rows = ["| condition | seeds | " + " | ".join(suite) + " | robustness ratio |"]
    rows.append("|---" * (len(suite) + 3) + "|")
    for condition in sorted({c.condition for c in cells}):
        done = [c for c in cells if c.condition == condition and c.status == "ok"]
        means = np.array([[c.results["eval"][p]["mean"] for p in suite] for c in done]).reshape(len(done), len(suite))
        cols = [mean_std(means[:, j], 1) for j in range(len(suite))]
        rows.append(
            f"| {condition} | {len(done)} | " + " | ".join(cols) + f" | {mean_std(robustness_ratios(done), 2)} |"
        )
    return "\n".join(rows)


def statistics_table(stats: dict[str, dict[int, dict]], suite: list[str], key: str, digits: int = 1) -> str:
    """Markdown table of a statistic (``mean`` or ``iqm``) with its 95% CI per condition and perturbation."""
    rows = ["| condition | " + " | ".join(suite) + " |", "|---" * (len(suite) + 1) + "|"]
    for condition, per in sorted(stats.items()):
        rows.append(
            f"| {condition} | "
            + " | ".join(fmt_ci(per[j][key], per[j][f"{key}_ci"], digits) for j in range(len(suite)))
            + " |"
        )
    return "\n".join(rows)


def protocol(cells: list[Cell]) -> list[str]:
    """The configuration every cell shared, read from a cell's resolved config."""
    cfg = OmegaConf.load(next((c for c in cells if c.status == "ok"), cells[0]).path / ".hydra" / "config.yaml")
    seeds = sorted({c.seed for c in cells})
    capped = sum(r.get("capped", 0) for c in cells for r in c.results.get("eval", {}).values())
    lines = [
        f"- environment: `{cfg.env.env_id}`, {cfg.ppo.total_timesteps:,} agent steps per run, "
        f"{cfg.ppo.num_envs} envs, seeds {seeds}",
        f"- observations: frame skip {cfg.env.frame_skip} (max of the last two frames), 84x84 gray, "
        f"{cfg.env.frame_stack}-frame stack, sticky actions {cfg.env.sticky_actions} in training and "
        f"{cfg.eval.sticky_actions} in evaluation, up to {cfg.env.noop_max} no-ops, {cfg.env.max_frames:,}-frame cap",
        f"- evaluation: {cfg.eval.episodes} full games per perturbation, raw scores, "
        f"{'greedy' if cfg.eval.greedy else 'sampled'} actions; "
        f"{capped} game(s) ended at the frame cap",
    ]
    if cfg.env.max_frames != 108_000:
        lines.append(
            f"- **protocol change**: the frame cap is {cfg.env.max_frames:,} emulator frames, not the ALE "
            "protocol's 108,000 (a quick look: scores are not comparable with published ones)"
        )
    if any(c.encoder in ("jepa", "ae") for c in cells):
        p = cfg.pretrain
        lines.append(
            f"- pretraining (jepa, ae): {p.frames.num_frames:,} frames of random play, {p.epochs} epochs "
            f"of batch {p.batch_size}, pretraining seed {p.seed}"
        )
    return lines


def findings(cells: list[Cell], suite: list[str], stats: dict, pairs: dict) -> list[str]:
    """Sentences that follow from the numbers; each says how sure it can be."""
    if "clean" in suite:
        out = clean_findings(cells, suite, stats)
    else:
        out = [
            f"- The suite {suite} has no `clean` evaluation: the clean IQM, robustness ratios, drop from clean "
            "and clean-vs-robustness figures are left out."
        ]
    out += [pair_finding(pair, est) for pair, est in pairs.items()]
    seeds = max((sum(c.condition == k and c.status == "ok" for c in cells) for k in stats), default=0)
    out.append(
        f"- {seeds} seed(s) per condition: bootstrap intervals over so few runs are wide and themselves uncertain; "
        "treat differences inside them as unresolved."
    )
    return out


def clean_findings(cells: list[Cell], suite: list[str], stats: dict) -> list[str]:
    """Whether any condition plays above random on clean games, then each condition's clean IQM and robustness
    ratio, best first; ``clean`` is looked up by name in ``suite``."""
    j = suite.index("clean")
    env_id = next(c.env_id for c in cells if c.status == "ok")

    random = measured_random(cells)

    def near_random(score: float) -> bool:
        return env_id in REFERENCE_SCORES and normalised(np.array(score), env_id, random) < 0.05

    out = []
    if all(near_random(per[j]["iqm"]) for per in stats.values()):
        out.append(
            "- **No condition plays clearly above random on clean games** (normalised clean IQM < 0.05): "
            "this sweep cannot answer the question; robustness ratios and comparisons below are about noise. "
            "Train longer (e.g. experiment=cpu's 1M steps or the study's 10M)."
        )
    for condition, per in sorted(stats.items(), key=lambda kv: -kv[1][j]["iqm"]):
        ratios = robustness_ratios([c for c in cells if c.condition == condition and c.status == "ok"])
        ratio = f"{ratios.mean():.2f}" if len(ratios) else "undefined (clean mean <= 0)"
        line = f"- {condition}: clean IQM {fmt_ci(per[j]['iqm'], per[j]['iqm_ci'], 1)}, robustness ratio {ratio}"
        if near_random(per[j]["iqm"]):
            line += " (clean play is near random: its ratio says little)"
        out.append(line)
    return out


def other_games(sweep_dir: Path, cells: list[Cell]) -> list[str]:
    """A line naming the cells left out because they play another game than the report's, if any."""
    others = [c for c in cells if c.status == "other_game"]
    if not others:
        return []
    env_id = next(c.env_id for c in cells if c.status != "other_game")
    left_out = ", ".join(f"`{c.path.relative_to(sweep_dir)}` ({c.env_id})" for c in others)
    return [
        f"This report is for `{env_id}`, the game most cells play (a tie goes to the first name); "
        f"left out, playing other games: {left_out}.",
        "",
    ]


def write_report(
    sweep_dir: Path,
    cells: list[Cell],
    suite: list[str],
    stats: dict,
    pairs: dict[str, Any],
    plots: dict[str, str] | None,
    norm_stats: dict | None = None,
    robust: dict | None = None,
    games: dict | None = None,
) -> Path:
    """Write ``<sweep_dir>/REPORT.md``; returns its path. ``plots=None``: the figures were not drawn."""
    bad = [c for c in cells if c.status not in NOT_A_PROBLEM]  # other games: one line, other_games
    no_games = [c for c in cells if c.status == "no_games"]
    parts = [
        f"# Sweep report: {'/'.join(sweep_dir.parts[-2:])}",
        "",
        QUESTION,
        "",
        "## Protocol",
        "",
        *protocol(cells),
        "",
    ]
    parts += [f"## Cells: {len(cells) - len(bad)} of {len(cells)} finished", "", *other_games(sweep_dir, cells)]
    parts += [
        f"- **{c.status}**: `{c.path.relative_to(sweep_dir)}` ({c.condition}, seed {c.seed}): {c.problem}"
        for c in bad + no_games
    ]
    if games:
        parts += ["", *across_games_section(games)]
    if robust:
        parts += ["", *robustness_section(robust)]
    if suite:
        parts += [
            "",
            "## Returns (mean ± sample std over seeds of each run's mean raw score; no std for one seed)",
            "",
            study_table(cells, suite),
        ]
        parts += [
            "",
            "## Interquartile mean over seeds, 95% stratified-bootstrap CI",
            "",
            statistics_table(stats, suite, "iqm"),
        ]
        parts += ["", "## Mean over seeds, 95% stratified-bootstrap CI", "", statistics_table(stats, suite, "mean")]
        if norm_stats:
            published, human = REFERENCE_SCORES[next(c.env_id for c in cells if c.status == "ok")]
            random = measured_random(cells)
            zero = f"random play {random:.2f}, measured" if random is not None else f"random play {published}"
            parts += ["", f"## IQM of normalised scores (0 = {zero}, 1 = human {human}), 95% CI", ""]
            parts += [statistics_table(norm_stats, suite, "iqm", digits=2)]
        parts += ["", "## Findings on raw scores and the study's robustness ratio", ""]
        parts += [
            "The study's robustness ratio (perturbed / clean raw score) tends to 1 as play tends to random "
            "(a random policy ignores the pixels): it is kept for comparison with the study, after retention.",
            "",
            *findings(cells, suite, stats, pairs),
        ]
    if suite or robust:  # cells that played no games have their policy-TV curves
        parts += ["", "## Plots", ""]
        if plots is None:  # a stale PNG beside the report may be from another aggregation: none is linked
            parts += ["Not drawn (aggregated with `--no-figures`; `python -m jepa_rl.sweep DIR` draws them)."]
        else:
            parts += [f"![{name}]({Path(path).name})" for name, path in plots.items()]
    parts += ["", "Per-cell numbers: `cells.csv`; statistics: `stats.json`.", ""]
    path = sweep_dir / "REPORT.md"
    path.write_text("\n".join(parts))
    return path
