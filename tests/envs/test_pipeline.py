"""The one observation pipeline: training and clean evaluation see identical frames, 4 emulator frames a step;
the two emulator stages (vector env, RAM-recording gymnasium env) give the same observations."""

import cv2
import gymnasium as gym
import numpy as np
import pytest
from helpers import compose_cfg, pipeline
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from jepa_rl.envs.perturbations import suite_config
from jepa_rl.envs.pipeline import AtariPipeline, env_seeds, make_env, make_eval_env, make_train_envs, to_gray84


def env_settings(overrides: list[str]) -> tuple[dict, DictConfig]:
    """The composed config (with ``overrides``) and its ``env`` group as a plain dict."""
    cfg = compose_cfg(overrides)
    return OmegaConf.to_container(cfg.env, resolve=True), cfg


def train_env(env: dict, cfg: DictConfig, seed: int) -> AtariPipeline:
    """All the training environments of ``cfg`` in one pipeline (one group), as training builds them."""
    (envs,) = make_train_envs(env, instantiate(cfg.perturbation), cfg.ppo.num_envs, 1, seed, threads=1)
    return envs


@pytest.mark.parametrize("game", ["breakout", "pong"])
def test_clean_eval_observations_equal_training_observations(game):
    env, cfg = env_settings([f"env={game}", "ppo.num_envs=3", "env.max_frames=400"])  # caps force resets
    train = train_env(env, cfg, seed=11)
    clean = instantiate(cfg.perturbations.clean)
    evaluation = make_eval_env(env, 3, clean, seed=11, sticky_actions=cfg.eval.sticky_actions, threads=1)
    rng = np.random.default_rng(0)
    obs_t, info_t = train.reset()
    obs_e, info_e = evaluation.reset()
    assert obs_t.shape == (3, 4, 84, 84) and obs_t.dtype == np.uint8
    assert np.array_equal(obs_t, obs_e)
    frames = info_t["frame_number"].copy()
    games_ended = 0
    for _ in range(150):  # past the cap (at most 100 steps) in every env
        actions = rng.integers(0, train.num_actions, 3)
        obs_t, r_t, term_t, trunc_t, info_t = train.step(actions)
        obs_e, r_e, term_e, trunc_e, info_e = evaluation.step(actions)
        assert np.array_equal(obs_t, obs_e)
        assert np.array_equal(r_t, r_e) and np.array_equal(term_t, term_e)
        done = term_t | trunc_t
        games_ended += done.sum()
        # One agent step = exactly 4 emulator frames, in both (a reset adds its no-op frames).
        assert np.all((info_t["frame_number"] - frames)[~done] == 4)
        assert np.array_equal(info_t["frame_number"], info_e["frame_number"])
        frames = info_t["frame_number"].copy()
    assert games_ended > 0  # observations stayed equal across autoresets too
    train.close()
    evaluation.close()


def built(stage: str, sticky: float, seed: int) -> AtariPipeline:
    """One Breakout environment with ``sticky`` actions (``env.sticky_actions``), built as ``stage`` builds it:
    training on the vector emulator, frame collection on the RAM-recording one."""
    env, cfg = env_settings(["ppo.num_envs=1", f"env.sticky_actions={sticky}"])
    return train_env(env, cfg, seed) if stage == "training" else make_env(env, 1, seed, num_threads=1, record_ram=True)


def played(envs: AtariPipeline, actions: np.ndarray) -> np.ndarray:
    """The observations of ``actions`` (``[steps, envs]``) played from a reset: ``[steps, envs, 4, 84, 84]``."""
    envs.reset()
    return np.stack([envs.step(a)[0] for a in actions])


@pytest.mark.parametrize("stage", ["training", "frame collection"])
def test_sticky_actions_and_seeds_change_the_game(stage):
    # Random actions: a sticky action repeats the previous one, which changes nothing while the action does not.
    actions = np.random.default_rng(0).integers(0, 4, (30, 1))
    still, sticky, other_seed = built(stage, 0.0, seed=1), built(stage, 0.25, seed=1), built(stage, 0.25, seed=2)
    try:
        frames, repeated = played(still, actions), played(sticky, actions)
        assert np.array_equal(played(still, actions), frames)  # a reset with the seed replays its game exactly...
        assert not np.array_equal(repeated, frames)  # ...which sticky actions change
        assert not np.array_equal(played(other_seed, actions), repeated)  # and so does the seed
    finally:
        for envs in (still, sticky, other_seed):
            envs.close()


def test_training_env_groups_split_the_envs_and_keep_their_seeds():
    """Environment ``i`` gets the same emulator seed however the envs are grouped; each group has its own
    copy of the perturbation."""
    env, cfg = env_settings(["perturbation=noise"])
    perturbation = instantiate(cfg.perturbation)
    one = make_train_envs(env, perturbation, 4, 1, seed=3, threads=1)
    two = make_train_envs(env, perturbation, 4, 2, seed=3, threads=2)
    try:
        assert [g.num_envs for g in one] == [4] and [g.num_envs for g in two] == [2, 2]
        assert np.array_equal(np.concatenate([g.seeds for g in two]), one[0].seeds)
        groups = [g.perturbation for g in (*one, *two)]
        assert len({id(p) for p in (perturbation, *groups)}) == 4  # nobody shares the caller's streams
        assert all(p.params() == perturbation.params() for p in groups)
    finally:
        for g in (*one, *two):
            g.close()


def test_runs_with_different_seeds_share_no_environment_stream():
    """Consecutive seeds s + i would give seed 2's environment i the game of seed 1's environment i + 1."""
    one, two = env_seeds(1, 8), env_seeds(2, 8)
    assert not set(one) & set(two) and len(set(one)) == 8
    assert np.array_equal(env_seeds(1, 4, first_env=4), one[4:])  # the same seed however envs are grouped
    assert np.array_equal(env_seeds((1, 0), 8), one) and not set(env_seeds((1, 1), 8)) & set(one)
    a = pipeline("breakout", 2, 1, num_threads=1)
    b = pipeline("breakout", 1, 2, num_threads=1)
    a.reset(), b.reset()
    same = True
    for _ in range(100):
        oa, *_ = a.step(np.array([2, 3]))
        ob, *_ = b.step(np.array([3]))
        same &= np.array_equal(oa[1], ob[0])
    assert not same
    a.close(), b.close()


def reference_observations(actions: list[int], seed: int) -> list[np.ndarray]:
    """Frame skip 4, max of the last two RGB frames, cv2 gray, INTER_AREA 84x84, stack 4,
    built step by step on gymnasium's unskipped ALE env (the classic DQN/CleanRL recipe)."""
    env = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0, obs_type="rgb")
    frame, _ = env.reset(seed=seed)

    def preprocess(rgb):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (84, 84), interpolation=cv2.INTER_AREA)

    stack = [preprocess(frame)] * 4
    out = [np.stack(stack)]
    for a in actions:
        last_two = []
        for _ in range(4):
            frame, *_ = env.step(a)
            last_two = (last_two + [frame])[-2:]
        stack = stack[1:] + [preprocess(np.maximum(*last_two))]
        out.append(np.stack(stack))
    env.close()
    return out


def test_pipeline_matches_reference_preprocessing():
    rng = np.random.default_rng(0)
    actions = [1] + list(rng.integers(0, 4, 120))
    expected = reference_observations(actions, seed=5)
    envs = pipeline("breakout", 1, 5, sticky_actions=0.0, noop_max=0, fire_reset=False, num_threads=1)
    obs, _ = envs.reset()
    got = [obs[0]]
    for a in actions:
        obs, *_ = envs.step(np.array([a]))
        got.append(obs[0])
    envs.close()
    for step, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert np.array_equal(g, e), f"observation differs from the reference at step {step}"


@pytest.mark.parametrize("n", [1, 2, 8, 13])
def test_batched_grayscale_resize_equals_one_frame_at_a_time(n):
    """``to_gray84`` resizes the whole batch as one tall image; no output pixel may mix two frames."""
    frames = np.random.default_rng(n).integers(0, 256, (n, 210, 160, 3), dtype=np.uint8)
    frames[::2] //= 8  # dark and bright neighbours make any bleed across a boundary visible
    one_by_one = [
        cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA) for f in frames
    ]
    assert np.array_equal(to_gray84(frames), np.stack(one_by_one))


@pytest.mark.parametrize(
    "game, overrides, named",
    [
        ("tetriz", {}, "game=tetriz"),  # not a ROM ale-py ships
        ("breakout", {"sticky_actions": 1.5}, "sticky_actions=1.5"),
        ("breakout", {"noop_max": -1}, "noop_max=-1"),
        ("breakout", {"max_frames": 0}, "max_frames=0"),
        ("breakout", {"frame_skip": 0}, "frame_skip=0"),
        ("breakout", {"frame_stack": 0}, "frame_stack=0"),
    ],
)
def test_an_unknown_game_or_a_setting_out_of_range_is_named(game, overrides, named):
    with pytest.raises(ValueError, match=named):
        pipeline(game, 1, 0, **overrides)


# --- the emulator stage ---------------------------------------------------------------------------


@pytest.mark.parametrize("game", ["breakout", "pong"])
def test_ram_emulator_gives_the_training_pipelines_observations(game):
    # Sticky actions and no-ops draw from each backend's own generator: switch them off to compare.
    kwargs = {"sticky_actions": 0.0, "noop_max": 0, "num_threads": 1, "max_frames": 400}  # the cap forces resets
    vector = pipeline(game, 2, 7, **kwargs)
    ram = pipeline(game, 2, 7, record_ram=True, **kwargs)
    obs_v, _ = vector.reset()
    obs_r, info = ram.reset()
    assert np.array_equal(obs_v, obs_r) and info["ram"].shape == (2, 128)
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(150):  # past the cap (100 steps)
        a = rng.integers(0, vector.num_actions, 2)
        obs_v, rew_v, term_v, trunc_v, info_v = vector.step(a)
        obs_r, rew_r, term_r, trunc_r, info_r = ram.step(a)
        assert np.array_equal(obs_v, obs_r)
        assert np.array_equal(rew_v, rew_r) and np.array_equal(term_v | trunc_v, term_r | trunc_r)
        assert np.array_equal(info_v["lives"], info_r["lives"])
        resets += (term_v | trunc_v).sum()
    assert resets > 0
    vector.close(), ram.close()


@pytest.mark.parametrize("frames_device", [None, "cpu"])
def test_perturbations_side_by_side_each_play_the_games_of_their_pipeline_alone(frames_device):
    """One pipeline of the same seeds under clean, hard and a corruption side by side gives, group by group,
    the observations, rewards and game ends of the pipeline of that perturbation alone (across game ends)."""
    env, cfg = env_settings(["env.max_frames=400"])
    env["frames_device"] = frames_device
    names = ["clean", "hard", "gaussian_noise_3"]
    suite = [instantiate(suite_config(cfg.perturbations, name)) for name in names]
    together = make_eval_env(env, 2, suite[0].copy(), 7, 0.25, 1, side_by_side=[p.copy() for p in suite[1:]])
    alone = [make_eval_env(env, 2, p.copy(), 7, 0.25, 1) for p in suite]
    rng = np.random.default_rng(0)
    try:
        assert together.num_envs == 6 and together.group_size == 2
        assert together.seeds.tolist() == env_seeds(7, 2).tolist() * 3
        host = lambda obs: obs if isinstance(obs, np.ndarray) else obs.numpy()  # noqa: E731
        together_out, singles = (together.reset()[0],), [p.reset()[:1] for p in alone]
        for _ in range(120):  # past the cap (100 steps): every environment starts a second game
            for g, single in enumerate(singles):
                part = slice(2 * g, 2 * g + 2)
                assert np.array_equal(host(together_out[0])[part], host(single[0]))
                for mine, theirs in zip(together_out[1:4], single[1:4], strict=True):  # rewards, game ends
                    assert np.array_equal(mine[part], theirs)
            actions = rng.integers(0, together.num_actions, 2)
            together_out, singles = together.step(np.tile(actions, 3)), [p.step(actions) for p in alone]
    finally:
        together.close()
        for p in alone:
            p.close()


def test_a_shift_of_the_game_cannot_play_side_by_side():
    env, cfg = env_settings([])
    clean = instantiate(cfg.perturbations.clean)
    mode = instantiate(suite_config(cfg.perturbations, "mode_4"))
    with pytest.raises(ValueError, match="mode_4 shifts the game itself; it cannot share the emulator"):
        make_eval_env(env, 1, clean, 7, 0.25, 1, side_by_side=[mode])


@pytest.mark.parametrize("suite", [["noise", "noise"], ["hard", "gaussian_noise_3"]])
def test_an_environment_not_watched_skips_its_frame_work_and_the_others_go_on_as_before(suite):
    """Evaluation stops reading a game past its share: its frames are no longer perturbed and stacked (they
    would change every step under noise), while the environments still watched, in its group and in the
    others, see exactly what they would have seen with every environment watched."""
    env, cfg = env_settings([])
    first, second = (instantiate(suite_config(cfg.perturbations, name)) for name in suite)
    together = make_eval_env(env, 2, first.copy(), 7, 0.25, 1, side_by_side=[second.copy()])
    alone = make_eval_env(env, 2, first.copy(), 7, 0.25, 1, side_by_side=[second.copy()])
    watched = np.array([True, False, False, False])  # environment 0 alone; group 1 entirely unwatched
    try:
        stale, _ = together.reset()
        alone.reset()
        for _ in range(3):
            obs = together.step(np.zeros(4, dtype=np.int64), watched=watched)[0]
            assert np.array_equal(obs[0], alone.step(np.zeros(4, dtype=np.int64))[0][0])
            assert np.array_equal(obs[1:], stale[1:])
        assert not np.array_equal(obs[0], stale[0])
    finally:
        together.close(), alone.close()
