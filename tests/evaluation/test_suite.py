"""A train job's final evaluation: every perturbation replays the same games; with ``eval.episodes=0`` no
game is played, and the policy's invariance on identical states is measured all the same."""

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from helpers import cnn, compose_cfg, leaning_agent, new_agent
from hydra.utils import instantiate
from omegaconf import OmegaConf

from jepa_rl.envs.perturbations import VisualPerturbation, suite_config
from jepa_rl.envs.pipeline import env_seeds
from jepa_rl.evaluation.games import Floors, retention
from jepa_rl.evaluation.settings import EvalSettings
from jepa_rl.evaluation.suite import EvalSetup, final_evaluation, play_suite
from jepa_rl.runtime.seeding import BLIND_ACTIONS, EVAL_GAMES
from jepa_rl.runtime.tracking import Tracker

CFG = compose_cfg(["env.max_frames=600"])
ENV = OmegaConf.to_container(CFG.env, resolve=True)
SHORT = {**ENV, "max_frames": 120}  # 30 agent steps a game: a life is lost in the 18th
FIRE = 1  # Breakout's action that launches the ball
CPU = torch.device("cpu")


def named_perturbations(names):
    """The suite's perturbations as a job builds them: the configured ones, corruptions and game shifts by name."""
    return {name: instantiate(suite_config(CFG.perturbations, name)) for name in names}


class Witness:
    """A real evaluation pipeline that notes, at every step, the actions it was given and what happened in its
    games (not what was seen)."""

    def __init__(self, envs):
        self.envs, self.actions, self.events = envs, [], []

    def __getattr__(self, name):
        return getattr(self.envs, name)

    def step(self, actions, watched=None):
        self.actions.append(np.asarray(actions).tolist())
        obs, reward, terminated, truncated, info = self.envs.step(actions, watched)
        self.events.append(
            (reward.tolist(), terminated.tolist(), truncated.tolist(), info["lives"].tolist(),
             info["episode_frame_number"].tolist())
        )  # fmt: skip
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class WitnessedSetup(EvalSetup):
    """``EvalSetup`` whose every pipeline is a ``Witness``, listed with its perturbation's name and seeds."""

    built: list = field(default_factory=list)

    def make_env(self, *args, **kwargs):
        envs = Witness(super().make_env(*args, **kwargs))
        names = " ".join(p.name for p in envs.perturbations)  # side by side: every group's
        self.built.append((names, envs.seeds.tolist(), envs))
        return envs


def test_every_perturbation_of_the_suite_replays_the_same_games(tmp_path):
    """A greedy agent that ignores its pixels (zero actor weights, its bias on FIRE) plays the same actions
    whatever it sees: under every perturbation of the suite the emulators get the same seeds, and the
    games are the same games, step for step."""
    torch.manual_seed(0)
    agent = new_agent(cnn())
    with torch.no_grad():
        agent.heads.actor.weight.zero_()
        agent.heads.actor.bias.copy_(torch.nn.functional.one_hot(torch.tensor(FIRE), agent.num_actions) * 5.0)
    suite = ["clean", "hard", "gaussian_noise_3"]  # per-game jitter and per-frame noise; a corruption
    named = {name: instantiate(suite_config(CFG.perturbations, name)) for name in suite}
    ev = EvalSettings(suite=suite, episodes=2, num_envs=1, greedy=True)  # two games in a row
    seed = (1, EVAL_GAMES, ev.seed_offset)
    setup = WitnessedSetup(SHORT, ev, named, seed, torch.device("cpu"), 1, tmp_path / "cache")
    scores = play_suite(agent, setup, suite, ev.episodes, Tracker(), step=0, prefix="eval")  # as final_evaluation

    # One pipeline plays the suite side by side: environment g is the same seed under perturbation g.
    [(names, seeds, envs)] = setup.built
    assert names.split() == suite and seeds == env_seeds(seed, 1).tolist() * len(suite)
    traces = {name: [tuple(column[g] for column in event) for event in envs.events] for g, name in enumerate(suite)}
    assert all(trace == traces["clean"] for trace in traces.values())
    assert all(actions == [FIRE] * len(suite) for actions in envs.actions)
    played = {name: (r["returns"], r["capped"]) for name, r in scores.items()}
    assert list(played) == suite and all(games == played["clean"] for games in played.values())
    # The games depend on the emulator's random stream, so their equality says something: the two games
    # of the environment differ (their no-op starts, so their frame numbers and when they lose lives).
    first, second = traces["clean"][:30], traces["clean"][30:]
    assert first[-1][2] and second[-1][2] and first != second  # each truncated at 30 steps


def test_no_games_still_measures_policy_invariance_on_the_evaluation_games_seeds(tmp_path):
    torch.manual_seed(0)
    agent = new_agent(cnn())
    with torch.no_grad():
        agent.heads.actor.weight.mul_(300)  # a policy that reads its pixels strongly
    ev = EvalSettings(suite=["clean", "noise"], episodes=0, num_envs=2, invariance_states=16)
    named = {"clean": VisualPerturbation(name="clean"), "noise": VisualPerturbation(name="noise", noise_std=20.0)}
    setup = WitnessedSetup(ENV, ev, named, (1, 2, 3), torch.device("cpu"), 1, tmp_path / "cache")
    measured = final_evaluation(agent, setup, Tracker(), step=0)
    assert measured["eval"] == {} and measured["random_policy"] is None and measured["robustness_ratio"] is None
    assert "near random play it measures nothing" in measured["robustness_ratio_note"]  # its caveat beside it
    assert "a policy that ignores the frame wins with 0" in measured["policy_invariance_note"]
    assert measured["retention"] is None
    assert measured["retention_note"] == "no retention: no games were played (eval.episodes=0)"
    assert measured["policy_invariance"]["noise"]["states"] == 16 and measured["policy_invariance"]["noise"]["tv"] > 0
    assert not (tmp_path / "cache").exists()  # no random-policy games either
    # Its states come from the games every perturbation of the suite plays: the evaluation's seeds.
    assert [(name, seeds) for name, seeds, _ in setup.built] == [("clean", env_seeds((1, 2, 3), 2).tolist())]


class EdgeEnergy(torch.nn.Module):
    """A one-feature encoder that reads its pixels in a known way: the mean absolute difference of horizontally
    adjacent pixels of the newest frame (measured on Breakout: about 3.4 levels clean, 6.9 with noise_std 20)."""

    feature_dim = 1

    def forward(self, obs):
        newest = obs[:, -1].float()
        return (newest[:, :, 1:] - newest[:, :, :-1]).abs().mean(dim=(1, 2))[:, None]


def test_invariance_states_are_played_by_the_policy_on_what_it_sees_clean(tmp_path):
    """A policy that presses FIRE on clean frames and NOOP on noisy ones: the states it is compared on are
    those of its clean play (FIRE, every step), where its noisy twin disagrees every time."""
    agent = new_agent(EdgeEnergy(), kind="linear")
    with torch.no_grad():  # logits NOOP = 10 * energy, FIRE = 50: FIRE below an energy of 5, NOOP above it
        agent.heads.actor.weight.copy_(torch.tensor([[10.0], [0.0], [0.0], [0.0]]))
        agent.heads.actor.bias.copy_(torch.tensor([0.0, 50.0, -1e3, -1e3]))
    ev = EvalSettings(suite=["clean", "noise"], episodes=0, num_envs=2, invariance_states=16)  # sampled actions
    named = {"clean": VisualPerturbation(name="clean"), "noise": VisualPerturbation(name="noise", noise_std=20.0)}
    setup = WitnessedSetup(ENV, ev, named, (1, 2, 3), torch.device("cpu"), 1, tmp_path / "cache")
    measured = final_evaluation(agent, setup, Tracker(), step=0)["policy_invariance"]["noise"]
    [(_, _, envs)] = setup.built
    # One whole clean game per environment (its last life lost within the 150 agent steps of the cap), not
    # the 8 steps 16 states would take: FIRE at every step of them (an environment whose game has ended
    # gets NOOP until the other's ends).
    both = [a for a in envs.actions if a == [FIRE, FIRE]]
    assert len(both) > 100 and envs.actions[: len(both)] == both
    assert all(a in ([FIRE, 0], [0, FIRE]) for a in envs.actions[len(both) :])
    assert measured["states"] == 16
    # Logits 50 vs about 34 clean and 69 noisy: each side all but certain, so the distributions are apart.
    assert measured["greedy_agreement"] == 0.0 and measured["tv"] == pytest.approx(1.0, abs=1e-5)


def test_the_evaluation_pipelines_play_the_perturbation_asked_for_with_evaluations_settings(tmp_path):
    """``EvalSetup.make_env`` builds the pipeline of the perturbation it is given (with the views asked for),
    on the evaluation's seeds, with evaluation's sticky actions (not training's 0.25, nor the thread count)."""
    named = named_perturbations(["clean", "noise"])
    ev = EvalSettings(suite=["clean", "noise"], episodes=1, num_envs=1, sticky_actions=0.1, invariance_states=0)
    setup = EvalSetup(SHORT, ev, named, (1, 2, 3), CPU, 1, tmp_path / "cache")
    assert SHORT["sticky_actions"] != 0.1
    envs = setup.make_env(1, named["noise"])
    try:
        assert envs.perturbation is named["noise"] and envs.settings.sticky_actions == 0.1
        assert envs.seeds.tolist() == env_seeds((1, 2, 3), 1).tolist()
    finally:
        envs.close()
    viewed = setup.make_env(2, named["clean"], setup.suite(["noise"]))
    try:
        assert viewed.num_envs == 2 and list(viewed.reset()[1]["views"]) == ["noise"]
    finally:
        viewed.close()


class RecordingTracker(Tracker):
    """A tracker that keeps what it is asked to log, instead of sending it to W&B."""

    def __init__(self):
        super().__init__()
        self.logged, self.tables = [], []

    def log(self, metrics, step, again=False):
        self.logged.append((metrics, step, again))

    def table(self, key, columns, rows, step=None):
        self.tables.append((key, columns, rows, step))


# Stand-in random play, per game mode: far below anything an agent scores in 30 steps of Breakout, so the
# agent's clean play is clearly above it and retention is defined; another floor in mode 4, so a retention
# measured above the wrong floor shows.
FLOORS = {None: -10.0, 4: -5.0}


def stand_in_random_scores(calls):
    """``random_scores`` that notes its arguments and returns its mode's floor (two games at it)."""

    def random_scores(*protocol, shift=None):
        calls.append((protocol, shift))
        floor = FLOORS[shift.mode if shift else None]
        return {"mean": floor, "std": 0.0, "returns": [floor, floor], "capped": 0}

    return random_scores


def stand_in_blind_scores(calls, floors):
    """``blind_scores`` that notes its arguments and returns its game's floor in ``floors`` (by the mode its
    environments play), two games at it."""

    def blind_scores(probs, envs, episodes, seed, label=""):
        calls.append((probs.tolist(), envs.seeds.tolist(), episodes, seed))
        floor = floors[envs.perturbation.game_shift.mode]
        return {"mean": floor, "std": 0.0, "returns": [floor, floor], "capped": 0, "action_distribution": []}

    return blind_scores


BLIND_BELOW, BLIND_ABOVE = {None: -12.0, 4: -6.0}, {None: -7.0, 4: -3.0}  # under random play's, or over it


@pytest.mark.parametrize("blind_floors", [BLIND_BELOW, BLIND_ABOVE])
@pytest.mark.parametrize("other", ["noise", "mode_4"])
def test_final_evaluation_measures_retention_above_the_higher_floor_of_the_same_protocol(
    tmp_path, monkeypatch, other, blind_floors
):
    """Every perturbation's games are played and logged at the job's step; random play is measured under the
    evaluation's protocol, and in its own mode for a perturbation that changes the game (``mode_4``: Breakout's
    mode 4), whose retention is then measured above that mode's random play."""
    calls, blind_calls = [], []
    monkeypatch.setattr("jepa_rl.evaluation.suite.random_scores", stand_in_random_scores(calls))
    monkeypatch.setattr("jepa_rl.evaluation.suite.blind_scores", stand_in_blind_scores(blind_calls, blind_floors))
    torch.manual_seed(0)
    agent, suite = new_agent(cnn()), ["clean", other]
    named = named_perturbations(suite)
    ev = EvalSettings(suite=suite, episodes=2, num_envs=1, sticky_actions=0.1, invariance_states=0)
    setup = EvalSetup(SHORT, ev, named, (1, EVAL_GAMES, ev.seed_offset), CPU, 1, tmp_path / "cache")
    tracker = RecordingTracker()
    measured = final_evaluation(agent, setup, tracker, step=7)

    scores = measured["eval"]
    assert {name: len(r["returns"]) for name, r in scores.items()} == {"clean": 2, other: 2}
    protocol = (tmp_path / "cache", SHORT, 2, 1, 0.1, 1)  # cache, env, episodes, num_envs, sticky_actions, threads
    shift = named[other].game_shift
    assert shift.changes_the_game == (other == "mode_4") and named["clean"].game_shift.mode is None
    assert calls == [(protocol, None)] + ([(protocol, shift)] if shift.changes_the_game else [])
    assert measured["random_policy"]["mean"] == FLOORS[None]
    by_variant = {other: {"mean": FLOORS[4], "std": 0.0, "returns": [FLOORS[4]] * 2, "capped": 0}}
    assert measured.get("random_policy_by_variant") == (by_variant if shift.changes_the_game else None)

    # The blind policy draws from the agent's clean action frequencies, on the evaluation's own games (its
    # emulator seeds), from a generator of its own; in each mode a perturbation switches to, too.
    counts = np.array(scores["clean"]["action_counts"])
    assert counts.sum() > 0
    played = [(list(counts / counts.sum()), env_seeds((1, EVAL_GAMES, ev.seed_offset), 1).tolist(), 2)]
    seed = (1, EVAL_GAMES, ev.seed_offset, BLIND_ACTIONS)
    assert [c[:3] for c in blind_calls] == played * (2 if shift.changes_the_game else 1)
    assert {c[3] for c in blind_calls} == {seed}
    assert measured["blind_policy"]["mean"] == blind_floors[None]
    assert measured["blind_policy"]["kind"] == "action_frequencies"

    floors = Floors(
        measured["random_policy"], measured["blind_policy"],
        measured.get("random_policy_by_variant", {}), measured.get("blind_policy_by_variant", {}),
    )  # fmt: skip
    kept, note = retention(scores, floors, min_skill=0.1 * (30.5 - 1.7))
    assert (measured["retention"], measured["retention_note"]) == (kept, note)
    floor = max(FLOORS[shift.mode], blind_floors[shift.mode])  # mode 4's own floors, or the default game's
    skill = scores["clean"]["mean"] - max(FLOORS[None], blind_floors[None])
    assert kept == pytest.approx({other: (scores[other]["mean"] - floor) / skill})
    assert note.startswith(f"retention relative to {'blind' if blind_floors is BLIND_ABOVE else 'random'} play")

    assert tracker.logged == [
        ({f"eval/{name}/mean": scores[name]["mean"], f"eval/{name}/std": scores[name]["std"]}, 7, True)
        for name in suite
    ] + [
        (
            {f"eval/{other}/retention": kept[other]}
            | {"eval/random_policy/mean": FLOORS[None], "eval/blind_policy/mean": blind_floors[None]},
            7,
            True,
        )
    ]
    [(key, _, rows, step)] = tracker.tables
    assert key == "eval/table" and step == 7 and [row[0] for row in rows] == suite


def test_the_scored_clean_games_give_the_invariance_states_and_retention_its_minimum_skill(tmp_path, monkeypatch):
    """With games and invariance on, the states come from the scored clean games (their seeds, no pass of
    their own); retention asks the game's minimum skill (a tenth of Breakout's 28.8-point range)."""
    monkeypatch.setattr("jepa_rl.evaluation.suite.random_scores", stand_in_random_scores([]))
    asked = []

    def noting_retention(scores, floors, min_skill=0.0):
        asked.append(min_skill)
        return retention(scores, floors, min_skill)

    monkeypatch.setattr("jepa_rl.evaluation.suite.retention", noting_retention)
    torch.manual_seed(0)
    agent, suite = new_agent(cnn()), ["clean", "noise"]
    ev = EvalSettings(suite=suite, episodes=2, num_envs=2, invariance_states=16)
    setup = WitnessedSetup(SHORT, ev, named_perturbations(suite), (1, 2, 3), CPU, 1, tmp_path / "cache")
    measured = final_evaluation(agent, setup, Tracker(), step=0)
    assert measured["policy_invariance"]["noise"]["states"] == 16
    assert [name for name, _, _ in setup.built] == ["clean noise", "clean"]  # the games side by side, the blind's
    assert asked == [pytest.approx(0.1 * (30.5 - 1.7))]


def test_invariance_off_or_no_clean_measure_what_they_can(tmp_path, monkeypatch):
    monkeypatch.setattr("jepa_rl.evaluation.suite.random_scores", stand_in_random_scores([]))
    agent = new_agent(cnn())
    ev = EvalSettings(suite=["clean", "noise"], episodes=1, num_envs=1, invariance_states=0)
    setup = EvalSetup(SHORT, ev, named_perturbations(ev.suite), (1, 2, 3), CPU, 1, tmp_path / "cache")
    assert final_evaluation(agent, setup, Tracker(), step=0)["policy_invariance"] is None
    # No clean in the suite: random play is still measured; no blind floor (it plays the clean preferences).
    ev = EvalSettings(suite=["noise"], episodes=1, num_envs=1, invariance_states=0)
    setup = EvalSetup(SHORT, ev, named_perturbations(ev.suite), (1, 2, 3), CPU, 1, tmp_path / "cache")
    measured = final_evaluation(agent, setup, Tracker(), step=0)
    assert measured["random_policy"]["mean"] == FLOORS[None] and measured["blind_policy"] is None


def test_greedy_invariance_without_scores_is_driven_by_the_most_likely_action(tmp_path):
    """eval.episodes=0 with eval.greedy: the clean games the states come from are played greedily too."""
    agent = leaning_agent(FIRE, 0.6)
    ev = EvalSettings(suite=["clean", "noise"], episodes=0, num_envs=2, invariance_states=16, greedy=True)
    setup = WitnessedSetup(SHORT, ev, named_perturbations(ev.suite), (1, 2, 3), CPU, 1, tmp_path / "cache")
    final_evaluation(agent, setup, Tracker(), step=0)
    [(_, _, envs)] = setup.built
    assert envs.actions == [[FIRE, FIRE]] * len(envs.actions)


@pytest.mark.parametrize("greedy", [False, True])
def test_a_fixed_frame_blind_floor_plays_the_agents_policy_on_one_screen(tmp_path, monkeypatch, greedy):
    monkeypatch.setattr("jepa_rl.evaluation.suite.random_scores", stand_in_random_scores([]))
    agent = leaning_agent(FIRE, 0.7)  # ignores its pixels: FIRE 0.7, the others 0.1 each
    ev = EvalSettings(
        suite=["clean"], episodes=2, num_envs=1, invariance_states=0, blind_floor="fixed_frame", greedy=greedy
    )
    setup = EvalSetup(SHORT, ev, named_perturbations(ev.suite), (1, 2, 3), CPU, 1, tmp_path / "cache")
    blind = final_evaluation(agent, setup, Tracker(), step=0)["blind_policy"]
    expected = [0.0, 1.0, 0.0, 0.0] if greedy else [0.1, 0.7, 0.1, 0.1]  # greedy: its single argmax action
    assert blind["kind"] == "fixed_frame" and blind["action_distribution"] == pytest.approx(expected)
    assert len(blind["returns"]) == 2
