"""Sweep figures (seaborn), each a PNG in the sweep directory: returns, degradation, robustness, learning, trade-off.

The figures that need the trained agents (saliency, gameplay) are in ``agent_figures``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from jepa_rl.envs.perturbations import suite_config  # noqa: E402
from jepa_rl.sweep.cells import Cell  # noqa: E402
from jepa_rl.sweep.matched_skill import snapshot_points
from jepa_rl.sweep.robustness import measured_invariance

SEED = 0  # seaborn's bootstrapped error bars: the same figure every time


def returns_frame(cells: list[Cell], suite: list[str]) -> pd.DataFrame:
    """Long form: one row per (condition, seed, perturbation) with the run's mean raw score."""
    rows = [
        {"condition": c.condition, "seed": c.seed, "perturbation": p, "return": c.results["eval"][p]["mean"]}
        for c in cells
        if c.status == "ok"
        for p in suite
    ]
    return pd.DataFrame(rows)


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG and close it (a sweep draws many: each open figure holds memory)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def returns_bars(df: pd.DataFrame, path: Path) -> Path:
    """Grouped bars: mean return per perturbation and condition, 95% bootstrap CI over seeds."""
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * df["perturbation"].nunique()), 4))
    sns.barplot(df, x="perturbation", y="return", hue="condition", errorbar=("ci", 95), seed=SEED, ax=ax)
    sns.stripplot(
        df, x="perturbation", y="return", hue="condition", dodge=True, palette="dark:black", size=3, ax=ax, legend=False
    )
    ax.set(ylabel="mean raw return per game", title="Returns under each perturbation (bars: 95% CI over seeds)")
    return save(fig, path)


def drop_from_clean(df: pd.DataFrame) -> pd.DataFrame:
    """1 - perturbed / clean of the means over seeds, ``[conditions, perturbations]``; NaN where the clean mean is
    <= 0 (e.g. Pong's negative scores), whose ratio means nothing."""
    means = df.groupby(["condition", "perturbation"], sort=False)["return"].mean().unstack()
    clean = means["clean"].where(means["clean"] > 0)
    return (1 - means.div(clean, axis=0)).drop(columns="clean")


def drop_heatmap(df: pd.DataFrame, path: Path) -> Path:
    """Heatmap of the drop from clean (``drop_from_clean``) per condition and perturbation."""
    drop = drop_from_clean(df)
    fig, ax = plt.subplots(figsize=(1.3 * len(drop.columns) + 3, 0.6 * len(drop) + 1.5))
    sns.heatmap(drop, annot=True, fmt=".2f", cmap="rocket_r", vmin=0, vmax=1, ax=ax)
    ax.set(title="Drop from clean (1 - perturbed / clean; blank: clean mean <= 0)", xlabel="", ylabel="")
    return save(fig, path)


def ratio_and_tradeoff(cells: list[Cell], ratio_path: Path, pareto_path: Path) -> list[Path]:
    """Robustness ratio per condition (seeds as points), and clean return vs robustness ratio."""
    rows = [
        {
            "condition": c.condition,
            "seed": c.seed,
            "clean": c.results["eval"]["clean"]["mean"],
            "robustness ratio": c.results["robustness_ratio"],
        }
        for c in cells
        if c.status == "ok" and c.results.get("robustness_ratio") is not None
    ]
    df = pd.DataFrame(rows, columns=["condition", "seed", "clean", "robustness ratio"])
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(df):
        sns.barplot(df, x="condition", y="robustness ratio", errorbar=("ci", 95), seed=SEED, ax=ax)
        sns.stripplot(
            df, x="condition", y="robustness ratio", hue="condition", palette="dark:black", size=4, ax=ax, legend=False
        )
    ax.set(title="Robustness ratio (mean perturbed / clean)")
    paths = [save(fig, ratio_path)]
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(df):
        sns.scatterplot(df, x="clean", y="robustness ratio", hue="condition", s=60, ax=ax)
    ax.set(xlabel="clean return", title="Clean return vs robustness (one point per seed)")
    paths.append(save(fig, pareto_path))
    return paths


def strength_levels(cells: list[Cell], suite: list[str]) -> pd.DataFrame:
    """Each perturbation's family (noise, jitter, or a corruption family) and strength (noise std, hue,
    severity), read from a cell's resolved config; clean is strength 0 of every family."""
    cfg = OmegaConf.load(measured_invariance(cells)[0].path / ".hydra" / "config.yaml")
    rows, clean = [], []
    for name in suite:
        p = OmegaConf.create(suite_config(cfg.perturbations, name))
        jitter = max(p.get("hue", 0.0), p.get("saturation", 0.0), p.get("brightness", 0.0))
        noise = p.get("noise_std", 0.0)
        if p.get("corruption"):
            rows.append({"perturbation": name, "family": p.corruption, "strength": float(p.severity)})
        elif name == "clean" or (jitter == 0 and noise == 0):
            clean.append(name)
        elif jitter == 0:
            rows.append({"perturbation": name, "family": "noise std", "strength": noise})
        elif noise == 0:
            rows.append({"perturbation": name, "family": "jitter (hue)", "strength": p.get("hue", 0.0)})
    families = sorted({r["family"] for r in rows}) or ["noise std", "jitter (hue)"]
    rows += [{"perturbation": n, "family": f, "strength": 0.0} for n in clean for f in families]
    return pd.DataFrame(rows, columns=["perturbation", "family", "strength"])


def degradation(df: pd.DataFrame, levels: pd.DataFrame, path: Path, y: str = "return") -> Path:
    """``y`` (a column of ``df``) vs perturbation strength, one panel per family (noise, jitter, each
    corruption), 95% CI bands over seeds."""
    data = df.merge(levels, on="perturbation")
    families = sorted(data["family"].unique())
    fig, axes = plt.subplots(1, max(1, len(families)), figsize=(5 * max(1, len(families)), 4), squeeze=False)
    for ax, family in zip(axes[0], families, strict=False):
        sns.lineplot(
            data[data["family"] == family],
            x="strength",
            y=y,
            hue="condition",
            marker="o",
            errorbar=("ci", 95),
            seed=SEED,
            ax=ax,
        )
        ax.set(xlabel=family, title=f"Degradation with {family}")
    return save(fig, path)


def invariance_frame(cells: list[Cell], suite: list[str]) -> pd.DataFrame:
    """Long form: one row per (condition, seed, perturbation) with the run's policy TV on identical states;
    clean is 0 by definition. Empty unless every finished cell measured invariance."""
    done = measured_invariance(cells)
    if not done or not all(c.results.get("policy_invariance") for c in done):
        return pd.DataFrame()
    rows = [
        {"condition": c.condition, "seed": c.seed, "perturbation": p, "policy TV": inv[p]["tv"] if p in inv else 0.0}
        for c in done
        for inv in [c.results["policy_invariance"]]
        for p in suite
        if p == "clean" or p in inv
    ]
    return pd.DataFrame(rows)


def curve_rows(cells: list[Cell], bins: int = 50) -> pd.DataFrame:
    """Mean training return per (cell, step bin), in bins shared by every cell so that seeds line up."""
    games = []  # (cell, [[global_step, env, score], ...])
    for c in cells:
        csv_path = c.path / "episodes.csv"
        if c.status == "ok" and csv_path.exists():
            rows = csv.reader(csv_path.read_text().splitlines())
            data = np.array([[float(v) for v in r[:3]] for r in rows if r and r[0] != "step"])  # not the header
            if len(data):
                games.append((c, data))
    rows = []
    if games:
        edges = np.linspace(0, max(d[:, 0].max() for _, d in games), bins + 1)
        for c, data in games:
            which = np.clip(np.digitize(data[:, 0], edges) - 1, 0, bins - 1)
            for b in np.unique(which):
                score = data[which == b, 2].mean()
                rows.append({"condition": c.condition, "seed": c.seed, "step": edges[b + 1], "return": score})
    return pd.DataFrame(rows)


def learning_curves(cells: list[Cell], path: Path, bins: int = 50) -> Path:
    """Training return (raw, per game) against agent steps: mean over seeds with a 95% CI band."""
    rows = curve_rows(cells, bins)
    fig, ax = plt.subplots(figsize=(7, 4))
    if not rows.empty:
        sns.lineplot(rows, x="step", y="return", hue="condition", errorbar=("ci", 95), seed=SEED, ax=ax)
    ax.set(
        xlabel="agent steps",
        ylabel="training return (raw, per game)",
        title="Learning curves (band: 95% CI over seeds)",
    )
    return save(fig, path)


def retention_vs_clean(cells: list[Cell], path: Path) -> Path | None:
    """Matched skill: each training snapshot's retention against its skill (clean points above its floor), per
    condition (None without snapshots). Conditions are compared along the x axis, at equal skill."""
    points = pd.DataFrame([p for p in snapshot_points(cells) if p["retention"] is not None])
    if points.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(points, x="skill", y="retention", hue="condition", style="perturbation", marker="o", ax=ax)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="clean points above the floor at the snapshot", ylabel="retention above the floor",
           title="Retention against skill (training snapshots)")  # fmt: skip
    return save(fig, path)


def sweep_plots(sweep_dir: Path, cells: list[Cell], suite: list[str], measured: list[str]) -> dict[str, Path]:
    """Every figure of the report drawn from the cells' numbers, written into ``sweep_dir``; returns
    ``{name: path}``, empty when no cell measured anything. ``suite``: the games' perturbations (none when no
    cell played games); ``measured``: those measured on identical states (the suite, or ``invariance_suite``).
    Cells that played no games (``eval.episodes=0``) get the policy-TV curves alone.

    Without ``clean`` in the suite, the figures relative to clean (drop, robustness ratio, trade-off) are left out.
    """
    if not measured:
        return {}
    sns.set_theme(style="whitegrid")
    levels = strength_levels(cells, measured)
    out = score_plots(sweep_dir, cells, suite, levels) if suite else {}
    # The same curves on identical states: no floor, so near-random agents are measured too.
    tv = invariance_frame(cells, measured)
    if not tv.empty and tv["perturbation"].isin(levels["perturbation"]).any():
        out["invariance_degradation"] = degradation(tv, levels, sweep_dir / "invariance_degradation.png", "policy TV")
    return out


def score_plots(sweep_dir: Path, cells: list[Cell], suite: list[str], levels: pd.DataFrame) -> dict[str, Path]:
    """The figures of the finished cells' game scores, training curves and snapshots."""
    df = returns_frame(cells, suite)
    out = {"returns": returns_bars(df, sweep_dir / "returns.png")}
    if "clean" in suite:
        out["drop_from_clean"] = drop_heatmap(df, sweep_dir / "drop_from_clean.png")
    out["degradation"] = degradation(df, levels, sweep_dir / "degradation.png")
    out["learning_curves"] = learning_curves(cells, sweep_dir / "learning_curves.png")
    if "clean" in suite:
        ratio, pareto = ratio_and_tradeoff(
            cells, sweep_dir / "robustness_ratio.png", sweep_dir / "clean_vs_robustness.png"
        )
        out.update(robustness_ratio=ratio, clean_vs_robustness=pareto)
    matched = retention_vs_clean(cells, sweep_dir / "retention_vs_clean.png")
    if matched:
        out["retention_vs_clean"] = matched
    return out
