"""The train stage end to end through launch.py: results.json, W&B files, checkpoints, repeatability
(kills and signals: test_preemption.py; multiruns: tests/sweep/test_callback.py; the W&B group alone:
test_hydra_runtime.py); in-process, what a resumed job restores from its checkpoint."""

import json
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY, TINY_PRETRAIN, launch, ppo

from jepa_rl.config.hydra_runtime import short_dirname
from jepa_rl.models.agent import build_agent, make_optimizer
from jepa_rl.rl.checkpointing import checkpointer, restore
from jepa_rl.rl.rollout import Rollout
from jepa_rl.runtime.checkpoint import CHECKPOINT_NAME, load_checkpoint
from jepa_rl.runtime.tracking import Tracker
from jepa_rl.runtime.wandb_history import records

SUITE = ["clean", "color_jitter", "noise", "mild", "hard"]


def check_results(path, total_timesteps):
    results = json.loads(path.read_text())
    for key in (
        "env_id",
        "encoder",
        "seed",
        "total_timesteps",
        "train_sps",
        "eval",
        "robustness_ratio",
        "blind_policy",
    ):
        assert key in results
    assert results["env_id"] == "ALE/Breakout-v5" and results["encoder"] == "cnn"
    assert results["total_timesteps"] == total_timesteps and results["train_sps"] > 0
    assert list(results["eval"]) == SUITE
    for r in results["eval"].values():
        assert set(r) == {"mean", "std", "returns", "capped", "action_counts"} and len(r["returns"]) == 1
        assert len(r["action_counts"]) == 4 and sum(r["action_counts"]) > 0  # Breakout's 4 actions, chosen
        assert r["mean"] == pytest.approx(sum(r["returns"]) / len(r["returns"]))
        assert all(score >= 0 and float(score).is_integer() for score in r["returns"])  # raw game scores
    clean = results["eval"]["clean"]["mean"]
    if clean > 0:
        expected = sum(results["eval"][p]["mean"] / clean for p in SUITE[1:]) / 4
        assert results["robustness_ratio"] == pytest.approx(expected)
    else:  # raw scores are >= 0: a clean score of 0 leaves the ratio undefined, not 0 or 1
        assert results["robustness_ratio"] is None
    return results


@pytest.mark.slow
def test_smoke_run_writes_results_and_wandb_files(tmp_path):
    # Online W&B with no server to reach: the job falls back to offline mode without a 90 s wait.
    unreachable = {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "0" * 40}
    start = time.monotonic()
    result = launch([*TINY, "logger.init_timeout=2", "hydra.run.dir=run"], tmp_path, unreachable)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "falling back to offline mode" in result.stdout + result.stderr
    assert time.monotonic() - start < 120
    run = tmp_path / "run"
    check_results(run / "results.json", 512)
    assert (run / ".hydra" / "config.yaml").exists()
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["global_step"] == 512
    offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert offline, "W&B offline mode writes a real run file"
    # The group: the condition (env, encoder, training perturbation, preset) and its overrides, not the seed.
    (group,) = {r.run.run_group for r in records(offline[0]) if r.WhichOneof("record_type") == "run"}
    overrides = "eval.episodes=1,eval.invariance_states=64,eval.num_envs=1,ppo.num_envs=4,ppo.num_steps=64,"
    overrides += "ppo.total_timesteps=512"
    # Past W&B's 128 characters: a readable prefix and a hash of the whole.
    assert group == short_dirname(f"breakout-cnn-train_clean-study-{overrides}", 128)


@pytest.mark.slow
def test_resume_with_another_config_is_refused(tmp_path):
    args = [*TINY, "logger=none", "hydra.run.dir=run", "eval.suite=[clean]"]
    assert launch(args, tmp_path).returncode == 0
    # The same command again finds the finished job and does nothing...
    again = launch(args, tmp_path)
    assert again.returncode == 0 and "complete" in again.stderr + again.stdout
    # ...other evaluation settings evaluate the trained agent again (results of another training config
    # are refused: tests/stages/test_resume.py)...
    again = launch([*args[:-1], "eval.suite=[clean,noise]"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results["eval"]) == ["clean", "noise"] and results["config"]["eval"]["suite"] == ["clean", "noise"]
    # ...and a checkpoint of another training config is never resumed (tested in-process, with the
    # other refusals, in tests/stages/test_resume.py).


# --- resuming from a checkpoint, in-process ---------------------------------------------------------

CNN = {"_target_": "jepa_rl.models.encoders.NatureCNN", "in_channels": 4}  # encoder=cnn's net, as build_agent takes it


def agent_and_optimizer():
    """The CNN agent (trained end to end, a narrow trunk) and its Adam, built as the train stage builds them
    (its precision as ``ppo.autocast=bf16`` resolves; the encoder's rate at half the heads')."""
    agent = build_agent(CNN, False, {"kind": "trunk", "width": 64}, 4, "bf16", torch.device("cpu"))
    return agent, make_optimizer(agent, 2.5e-4, 0.5)


def frames_rollout(seed: int) -> tuple[Rollout, torch.Tensor, torch.Tensor]:
    """A rollout of 16 steps of 2 envs (random frames, actions, log-probs, values), its advantages and returns,
    drawn from a generator of its own: making one takes nothing from torch's."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, 256, (16, 2, 4, 84, 84), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 4, (16, 2), generator=g)
    logprobs = torch.log(torch.full((16, 2), 0.25)) + 0.1 * torch.randn(16, 2, generator=g)
    values, advantages = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)
    zeros = torch.zeros(16, 2)
    return Rollout(obs, actions, logprobs, zeros, zeros, values), advantages, advantages + values


def same(a, b) -> bool:
    """Nested dicts / lists of tensors and numbers, equal to the bit."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def test_a_resumed_job_makes_the_same_next_update_as_the_uninterrupted_one(tmp_path):
    """One PPO update, a checkpoint through the train stage's writer, then the next update (2 epochs of 2
    minibatches of 16) twice: straight on, and in a fresh agent and optimizer (another initialisation,
    another generator state) restored from the file. The minibatch order comes from torch's generator."""
    learner = ppo(num_envs=2, num_steps=16, total_timesteps=96, num_minibatches=2, update_epochs=2)  # 3 iterations
    first, second = frames_rollout(1), frames_rollout(2)
    path, every = tmp_path / CHECKPOINT_NAME, learner.batch_size
    kept = {"encoder_weights": None, "feature_statistics": None, "snapshots": []}

    torch.manual_seed(0)
    agent, optimizer = agent_and_optimizer()
    # What standardise_features does when bf16 features err too much: the job runs in float32 from then on,
    # and only the checkpoint says so (a resumed job builds the agent with the configured precision).
    agent.autocast = "none"
    learner.set_learning_rate(optimizer, 0)
    learner._update(agent, optimizer, *first)
    save = checkpointer(agent, optimizer, Tracker(), path, learner, every, {"ppo": "fingerprint"}, kept)
    save(1, learner.batch_size, {})
    learner.set_learning_rate(optimizer, 1)
    learner._update(agent, optimizer, *second)
    uninterrupted = agent.state_dict()

    torch.manual_seed(1)
    fresh, fresh_optimizer = agent_and_optimizer()
    state = load_checkpoint(path)
    assert not torch.equal(fresh.state_dict()["heads.actor.weight"], state["agent"]["heads.actor.weight"])
    assert not torch.equal(torch.get_rng_state(), state["torch_rng"])
    assert restore(state, fresh, fresh_optimizer) == kept

    assert same(fresh.state_dict(), state["agent"])
    assert fresh.autocast == state["agent_autocast"] == "none"
    assert torch.equal(torch.get_rng_state(), state["torch_rng"])
    restored = fresh_optimizer.state_dict()
    assert same(restored, state["optimizer"])
    # Adam's moments after 4 steps, and each group's base rate, which annealing reads.
    assert {float(s["step"]) for s in restored["state"].values()} == {4.0}
    assert [g["base_lr"] for g in restored["param_groups"]] == [2.5e-4, 1.25e-4]
    assert all(s["exp_avg"].abs().sum() > 0 for s in restored["state"].values())

    learner.set_learning_rate(fresh_optimizer, 1)
    learner._update(fresh, fresh_optimizer, *second)
    resumed = fresh.state_dict()
    assert same(resumed, uninterrupted), [k for k in resumed if not torch.equal(resumed[k], uninterrupted[k])]


@pytest.mark.slow
def test_corrupt_checkpoint_in_a_run_dir_stops_the_job(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = launch([*TINY, "logger=none", "hydra.run.dir=run"], tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "corrupt" in last and "delete it" in last


@pytest.mark.slow
def test_a_vit_trains_end_to_end(tmp_path):
    # One update of a 1-block ViT: a ViT trained end to end is the slowest agent there is on a CPU.
    args = [*TINY, "encoder=vit", "encoder.net.depth=1", "ppo.total_timesteps=256", "logger=none"]
    result = launch([*args, "eval.suite=[clean,hard]", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["encoder"] == "vit" and list(results["eval"]) == ["clean", "hard"]
    assert set(results["policy_invariance"]) == {"hard"} and results["random_policy"]["returns"]
    assert results["feature_statistics"] is None  # trained with the policy: nothing to standardise


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_results(tmp_path):
    """Two runs of a frozen random-init CNN (standardised on a tiny frame set) on two threads (two env groups)."""
    args = [*TINY, *TINY_PRETRAIN, "encoder=cnn", "encoder.freeze=true", "ppo.total_timesteps=256", "threads=2"]
    # A frame cap of 500 agent steps: an untrained frozen agent may never press FIRE (a game would
    # run to the ALE's 27,000).
    args += ["env.max_frames=2000", "logger=none", "eval.suite=[clean,hard]"]
    for name in ("a", "b"):
        result = launch([*args, f"hydra.run.dir={name}"], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    a, b = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("a", "b"))
    # Convolutions frozen: the trunk and heads are what PPO trains, on features standardised on the frames.
    assert a["trained_parameters"] == {"encoder": 0, "heads": 3136 * 512 + 512 + 512 * 4 + 4 + 512 + 1}
    assert a["feature_statistics"]["frames"] == 64 and set(a["policy_invariance"]) == {"hard"}
    a.pop("train_sps"), b.pop("train_sps")  # wall-clock speed is the one thing allowed to differ
    assert a == b
    assert (tmp_path / "a" / "episodes.csv").read_text() == (tmp_path / "b" / "episodes.csv").read_text()


def test_conditions_of_one_seed_evaluate_on_the_same_games_and_another_seed_on_others():
    """A sweep's comparison is paired: whatever the encoder, its head and the perturbation it trained under,
    the jobs of one seed play the same evaluation games, and all share one random-play protocol."""
    from helpers import compose_cfg

    from jepa_rl.config.resolve import resolve
    from jepa_rl.envs.pipeline import env_seeds
    from jepa_rl.runtime.seeding import TRAIN_GAMES
    from jepa_rl.stages.train import evaluation_setup

    def evaluation(*overrides):
        cfg = compose_cfg(["logger=none", *overrides])
        return evaluation_setup(cfg, resolve(cfg, {}))

    jobs = {
        "cnn": evaluation("encoder=cnn", "seed=1"),
        "jepa": evaluation("encoder=jepa", "head=linear", "perturbation=hard", "seed=1"),
        "seed 2": evaluation("encoder=cnn", "seed=2"),
    }
    games = {name: env_seeds(setup.seed, 8).tolist() for name, setup in jobs.items()}
    assert games["cnn"] == games["jepa"] and not set(games["cnn"]) & set(games["seed 2"])
    assert not set(games["cnn"]) & set(env_seeds((1, TRAIN_GAMES, 0), 8).tolist())  # never a training game
    # The random policy's games are measured once per protocol (evaluation/random_play.py): the same for every job.
    protocols = [(s.cache_dir, s.env, s.ev.episodes, s.ev.num_envs, s.ev.sticky_actions) for s in jobs.values()]
    assert protocols[0] == protocols[1] == protocols[2]
    # And each job evaluates its own game, on its machine, with every perturbation it names.
    cfg = compose_cfg(["logger=none", "env=pong", "cache_dir=elsewhere", "eval.suite=[clean,gaussian_noise_3]"])
    res = resolve(cfg, {})
    setup = evaluation_setup(cfg, res)
    assert setup.env == res.env(cfg.env) and setup.env["game"] == "pong"
    assert (setup.device, setup.threads, setup.cache_dir) == (res.device, res.threads, Path("elsewhere"))
    assert set(setup.perturbations) == {*cfg.perturbations, "gaussian_noise_3"}
    assert setup.perturbations["gaussian_noise_3"].corruption == "gaussian_noise"
