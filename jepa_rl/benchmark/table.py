"""The benchmark's printed table: each figure of ``throughput.summary`` with its ratio, one line each."""

from __future__ import annotations

from jepa_rl.benchmark.step_profile import PHASES


def phase_line(phase: dict[str, float], batch: int) -> str:
    """``per iteration of N steps: rollout X s, update Y s`` for the benchmark's table."""
    return (
        f"      per iteration of {batch} steps: rollout {phase['rollout_seconds']:.2f} s, "
        f"update {phase['update_seconds']:.2f} s"
    )


def report_lines(result: dict, batch: int) -> list[str]:
    """The printed table of a ``benchmark`` result."""
    med, ceiling, phase_med = (
        result["median_sps"],
        result["emulator_plus_update_sps"],
        result["ppo_phase_median_seconds"],
    )
    lines = [
        f"benchmark on {result['device']}, {result['threads']} threads, {result['num_envs']} envs, "
        f"encoder={result['encoder']}, autocast={result['autocast']} ({result['ppo_precision']}; "
        f"bf16 in hardware: {result['native_bf16']}), median of {len(result['runs']['ppo'])}",
        f"  PPO: {result['env_groups']} env groups; malloc keeps freed memory: {result['freed_memory_kept']}; "
        f"frames by {result['pipeline']}",
    ]
    for key, label in (
        ("emulator", "(a) emulator only"),
        ("pipeline", "(b) + obs pipeline"),
        ("ppo", "(c) PPO training"),
    ):
        ratio = "" if key == "emulator" else f"   {label[:3]}/(a) = {med[key] / med['emulator']:.2f}"
        lines.append(f"  {label:<20} {med[key]:8.0f} agent steps/s{ratio}")
    lines.append(phase_line(phase_med["ppo"], batch))
    lines.append(
        f"      the emulator and the update alone: {ceiling:.0f} agent steps/s, (c) = {med['ppo'] / ceiling:.2f} of it"
    )
    frozen = f"{med['ppo_frozen_vit']:8.0f} agent steps/s   (d)/(c) = {result['frozen_vit_over_ppo']:.2f}"
    lines.append(f"  (d) PPO, frozen ViT  {frozen}")
    lines.append(phase_line(phase_med["ppo_frozen_vit"], batch))
    cell = result["minutes_per_10m_steps"]
    lines.append(f"      10M agent steps: {cell['ppo']:.0f} minutes with (c), {cell['ppo_frozen_vit']:.0f} with (d)")
    for key, fps in result["pretrain_frames_per_sec"].items():
        ratio = result["pretrain_over_fwd_bwd"].get(key)
        lines.append(
            f"  (e) {key:<20} {fps:8.0f} frames/s "
            f"({result['pretrain_batch'] / fps * 1000:.0f} ms per batch of {result['pretrain_batch']})"
            + (f"   / its fwd+bwd = {ratio:.2f}" if ratio else "")
        )
    lines += profile_lines(result["acting_step_seconds"], phase_med["ppo"]["update_seconds"] / result["num_steps"])
    costs = result["perturbation_cost"]
    if costs:
        lines.append("  (f) the pipeline under each perturbation, time per step over (b)'s:")
        lines += [f"      {name:<22} {cost:6.2f}x" for name, cost in costs.items()]
    for key, sps in result["evaluation_sps"].items():
        ratio = result["evaluation_over_emulator"][key]
        lines.append(f"  (h) {key:<21} {sps:8.0f} agent steps/s   / the emulator with its envs = {ratio:.2f}")
    lines.append(f"  peak RSS {result['peak_rss_mb']:.0f} MB")
    return lines


def profile_lines(step: dict[str, float], update: float) -> list[str]:
    """(g): each phase of an acting step of (c) in ms and as a share, the update spread over the rollout's steps."""
    phases = {**step, "update": update}
    total = sum(phases.values())
    lines = [f"  (g) where an acting step of (c) goes ({total * 1000:.1f} ms per step of every env, profiled):"]
    for phase in (*PHASES, "update"):
        lines.append(f"      {phase:<10} {phases[phase] * 1000:7.2f} ms  {phases[phase] / total:6.1%}")
    return lines
