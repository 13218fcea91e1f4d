"""The GRF adapter on the real engine (skipped when gfootball is not installed).

Install it with `bash ptde/envs/install_grf.sh .venv/bin/python`.
"""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch

pytest.importorskip("gfootball.env", reason="gfootball not installed (ptde/envs/install_grf.sh)")

from ptde.envs.base import MultiAgentEnv  # noqa: E402
from ptde.envs.football import (  # noqa: E402
    N_ACTIONS,
    SCENARIOS,
    GRFEnv,
    featurize,
    grf_config,
    obs_dim_of,
    route_actions,
    state_dim_of,
)

# default action set: 0 idle, 1-8 directions (3 = top = -y), 11 short pass, 12 shot, 13 sprint
IDLE, TOP, SHORT_PASS, SHOT, SPRINT = 0, 3, 11, 12, 13
DIRECTIONS = {1: (-1, 0), 2: (-1, -1), 3: (0, -1), 4: (1, -1), 5: (1, 0), 6: (1, 1), 7: (0, 1), 8: (-1, 1)}


def left_positions(env: GRFEnv, state: torch.Tensor) -> torch.Tensor:  # [B, n_left, 2]
    return state[:, : 2 * env.spec.n_left].reshape(state.shape[0], env.spec.n_left, 2)


def owner_player(env: GRFEnv, state: torch.Tensor) -> torch.Tensor:  # [B] index in the owning team
    n_slots = max(env.spec.n_left, env.spec.n_right) + 1
    return state[:, -n_slots:].argmax(-1)


def toward(dx: float, dy: float) -> int:
    return max(DIRECTIONS, key=lambda a: (DIRECTIONS[a][0] * dx + DIRECTIONS[a][1] * dy) / math.hypot(*DIRECTIONS[a]))


@pytest.fixture(scope="module")
def env3v1():
    env = GRFEnv(grf_config("3_vs_1_with_keeper"), batch_size=4, seed=0)
    yield env
    env.close()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_shapes_and_features(name: str) -> None:
    env = GRFEnv(grf_config(name), batch_size=1, seed=0)
    try:
        assert isinstance(env, MultiAgentEnv)
        info = env.get_env_info()
        spec = SCENARIOS[name]
        n = len(spec.agent_players)
        assert (info.n_agents, info.n_actions) == (n, N_ACTIONS)
        assert (info.obs_dim, info.state_dim) == (obs_dim_of(spec), state_dim_of(spec))
        step = env.reset(seed=1)
        for t in range(3):
            assert step.obs.shape == (1, n, info.obs_dim) and step.obs.dtype == torch.float32
            assert step.state.shape == (1, info.state_dim) and step.state.dtype == torch.float32
            assert step.avail_actions.shape == (1, n, N_ACTIONS) and bool(step.avail_actions.all())
            for key in ("reward", "terminated", "truncated", "won"):
                assert getattr(step, key).shape == (1,)
            assert step.info["dropped"].shape == (1,) and not step.info["dropped"].any()
            assert torch.isfinite(step.obs).all() and torch.isfinite(step.state).all()
            # agent i's own position is its fixed player's absolute position in the state
            own = left_positions(env, step.state)[0, list(spec.agent_players)]
            torch.testing.assert_close(step.obs[0, :, 0:2], own)
            # its own entry among the left team's relative positions is zero
            for i, p in enumerate(spec.agent_players):
                assert step.obs[0, i, 4 + 4 * p : 6 + 4 * p].abs().max() == 0
            # every agent sees the same ball position and owning-team one-hot
            tail = step.obs[0, :, -6:]
            assert (tail == tail[0]).all() and tail[0, 3:].sum() == 1
            assert env.active_players.tolist() == [list(spec.agent_players)]
            if t < 2:
                step = env.step(torch.randint(0, N_ACTIONS, (1, n)))
    finally:
        env.close()


def test_fixed_identity_through_passes(env3v1: GRFEnv) -> None:
    """The engine would switch controllers on a pass; with the fixed player set it never does."""
    B, players = env3v1.batch_size, list(env3v1.players)
    step = env3v1.reset(seed=5)
    owners: set[int] = set()
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(40):
        actions = torch.full((B, 3), SPRINT if t == 0 else IDLE)
        if t == 1:
            actions[:, 0] = 6  # aim bottom-right (the winger), then pass
        elif t == 2:
            actions[:, 0] = SHORT_PASS
        step = env3v1.step(actions)
        live = ~done
        assert (env3v1.active_players[live] == torch.tensor(players)).all()
        own = left_positions(env3v1, step.state)[:, players]  # [B, 3, 2]
        torch.testing.assert_close(step.obs[:, :, 0:2], own)
        left_owns = step.obs[:, 0, -2] == 1
        owners.update(owner_player(env3v1, step.state)[left_owns & live].tolist())
        done |= step.done
        if done.all():
            break
    assert len(owners & set(players)) >= 2, f"the ball never changed hands between agents: {owners}"


def test_stock_scenario_switches_and_mapping() -> None:
    """On the stock scenario the engine re-assigns controllers; features and actions follow players."""
    import gfootball.env as football_env

    players = np.asarray(SCENARIOS["3_vs_1_with_keeper"].agent_players)
    env = football_env.create_environment(
        env_name="academy_3_vs_1_with_keeper", representation="raw", number_of_left_players_agent_controls=3
    )
    try:
        rng = np.random.default_rng(0)
        switched = None
        for _ in range(20):
            raw = env.reset()
            for _ in range(100):
                before = [o["active"] for o in raw]
                raw, _, done, _ = env.step(rng.integers(0, N_ACTIONS, 3).tolist())
                after = [o["active"] for o in raw]
                if after != before:
                    switched = (before, after, raw[0])
                    break
                if done:
                    break
            if switched:
                break
        assert switched, "the engine never switched a controller in 20 random episodes"
        before, after, raw0 = switched
        obs, _ = featurize(raw0, players)
        np.testing.assert_allclose(obs[:, 0:2], np.asarray(raw0["left_team"])[players], rtol=0, atol=1e-6)
        # controller j gets the action of the agent that plays the player it now holds
        actions = np.array([100, 101, 102])
        routed = route_actions(actions, after, players)
        for j, p in enumerate(after):
            assert routed[j] == (100 + list(players).index(p) if p in players else IDLE)
    finally:
        env.close()


def test_actions_reach_the_agents_player(env3v1: GRFEnv) -> None:
    """In env b only agent b runs to the top; its own player (and no other) moves up."""
    step = env3v1.reset(seed=2)
    y0 = step.obs[:, :, 1].clone()  # [B, 3]
    for t in range(8):
        actions = torch.full((4, 3), IDLE)
        for b in range(3):
            actions[b, b] = SPRINT if t == 0 else TOP
        step = env3v1.step(actions)
        assert not step.done[:3].any(), "episode ended too early for the check"
    dy = step.obs[:, :, 1] - y0  # [B, 3]
    for b in range(3):
        assert dy[b, b] < -0.01, dy
        others = [i for i in range(3) if i != b]
        assert (dy[b, others].abs() < 1e-3).all(), dy


def scripted_attack(env: GRFEnv, step, t: int) -> torch.Tensor:
    """Pass to a winger who runs at goal and shoots; the others run at the goal too."""
    B = env.batch_size
    owner = owner_player(env, step.state)
    actions = torch.zeros(B, 3, dtype=torch.long)
    for b in range(B):
        for i in range(3):
            x, y = step.obs[b, i, 0].item(), step.obs[b, i, 1].item()
            has_ball = step.obs[b, i, -2] == 1 and owner[b] == env.players[i]
            target_y = 0.05 if y > 0 else -0.05
            if t <= 2:
                actions[b, i] = (SPRINT, 4, SHORT_PASS)[t] if i == 0 else SPRINT
            elif has_ball:
                actions[b, i] = SHOT if x >= 0.75 else toward(0.95 - x, target_y - y)
            elif x < 0.85:
                actions[b, i] = toward(0.9 - x, target_y - y)
    return actions


def scripted_goals(env: GRFEnv, check_step) -> tuple[int, list[float]]:
    """Scripted attacks until a goal (at most 3 batches): (goals, returns of the goal episodes).
    `check_step(step, new_goals, done_before)` asserts on every step."""
    B, goals, goal_returns = env.batch_size, 0, []
    for seed in range(3):
        step = env.reset(seed=seed)
        done = torch.zeros(B, dtype=torch.bool)
        ret = torch.zeros(B)
        for t in range(env.episode_limit):
            prev = step
            step = env.step(scripted_attack(env, step, t))
            # frozen environments repeat their last outputs with zero reward and no flags
            assert torch.equal(step.obs[done], prev.obs[done]) and (step.reward[done] == 0).all()
            assert not (step.terminated | step.truncated | step.won)[done].any()
            new = step.won & ~done
            assert step.terminated[new].all() and not step.truncated[new].any()
            check_step(step, new, done)
            ret += step.reward
            goals += int(new.sum())
            goal_returns += ret[new].tolist()
            done |= step.done
            if done.all():
                break
        if goals:
            break
    return goals, goal_returns


def test_scripted_goal_pays_the_authors_reward(env3v1: GRFEnv) -> None:
    """The default reward is the authors' (ptde-open FootballEnv: scoring,checkpoints summed over the
    controllers): a goal pays each of the n controllers 1 plus its uncollected checkpoints, a
    checkpoint 0.1 to the ball carrier's controller, so a goal episode returns exactly 2n."""
    n = env3v1.n_agents

    def check(step, new, done) -> None:
        if new.any():
            assert (step.reward[new] >= n - 1e-5).all() and (step.reward[new] <= 2 * n + 1e-5).all()
        other = ~new & ~done
        r = step.reward[other]
        assert (r >= 0).all() and (r <= 1.0 + 1e-5).all()  # checkpoints only: at most all 10 at once
        assert torch.allclose(r * 10, (r * 10).round(), atol=1e-4)  # multiples of 0.1

    goals, returns = scripted_goals(env3v1, check)
    assert goals >= 1, "no goal in 12 scripted episodes"
    assert np.allclose(returns, 2 * n, atol=1e-4), returns
    assert any(r > 0 for r in returns)


def test_scoring_counted_once_is_one_setting_away() -> None:
    """reward=scoring with reward_sum=false: +1 per goal, 0 on every other step."""
    env = GRFEnv(grf_config("3_vs_1_with_keeper", reward="scoring", reward_sum=False), batch_size=4, seed=0)
    try:

        def check(step, new, done) -> None:
            assert torch.equal(step.reward[new], torch.ones(int(new.sum())))
            assert (step.reward[~step.won] == 0).all()

        goals, returns = scripted_goals(env, check)
        assert goals >= 1 and np.allclose(returns, 1.0)
    finally:
        env.close()


@pytest.mark.parametrize("timeout_terminal", [False, True])
def test_the_episode_limit_truncates_or_with_the_authors_convention_terminates(timeout_terminal: bool) -> None:
    """PyMARL's convention truncates at the limit (the target bootstraps); the authors' football code
    ends the episode there as a terminal state (`timeout_terminal=true`)."""
    cfg = grf_config("run_pass_and_shoot_with_keeper", episode_limit=4, timeout_terminal=timeout_terminal)
    env = GRFEnv(cfg, batch_size=1, seed=0)
    try:
        env.reset(seed=0)
        for t in range(4):
            step = env.step(torch.full((1, 2), IDLE))
            last = t == 3
            assert bool(step.terminated[0]) == (last and timeout_terminal)
            assert bool(step.truncated[0]) == (last and not timeout_terminal)
            assert not step.won.any() and bool(step.done[0]) == last
    finally:
        env.close()


def test_killed_and_hung_workers_restart() -> None:
    env = GRFEnv(grf_config("3_vs_1_with_keeper", step_timeout_s=2.0), batch_size=2, seed=0)
    try:
        env.reset(seed=0)
        idle = torch.zeros(2, 3, dtype=torch.long)
        os.kill(env.worker_pids[1], signal.SIGKILL)
        step = env.step(idle)
        assert env.restarts == 1
        assert step.info["dropped"].tolist() == [False, True]
        assert step.done.tolist() == [False, True] and step.truncated[1] and step.reward[1] == 0
        step = env.step(idle)  # the dropped episode stays frozen and marked
        assert step.info["dropped"].tolist() == [False, True] and not step.done[1]

        step = env.reset(seed=1)  # the restarted worker serves the next batch
        assert not step.info["dropped"].any()
        pid = env.worker_pids[0]
        os.kill(pid, signal.SIGSTOP)  # hung: no answer within step_timeout_s
        try:
            step = env.step(idle)
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert env.restarts == 2
        assert step.info["dropped"].tolist() == [True, False] and step.done[0]
        step = env.reset()
        assert step.obs.shape == (2, 3, env.obs_dim) and not step.info["dropped"].any()
    finally:
        env.close()


def test_auto_reset_starts_the_next_episode_within_the_step() -> None:
    env = GRFEnv(grf_config("run_pass_and_shoot_with_keeper", episode_limit=3), batch_size=2, seed=0, auto_reset=True)
    try:
        start = env.reset(seed=0)
        idle = torch.full((2, 2), IDLE)
        steps = [env.step(idle) for _ in range(6)]
        for t, step in enumerate(steps):
            assert step.truncated.tolist() == [t % 3 == 2] * 2  # every 3 steps, never frozen in between
            assert not step.info["dropped"].any()
        end = steps[2]
        # the env shows the new episode's kick-off; final_obs holds where the old one ended
        assert not torch.equal(end.final_obs, end.obs)
        torch.testing.assert_close(end.obs, start.obs)  # idle play: every episode starts from the same set-up
        torch.testing.assert_close(steps[1].final_obs, steps[1].obs)  # mid-episode: no reset, the same
    finally:
        env.close()


def test_the_engines_rngs_round_trip_through_a_checkpoint_so_a_resumed_env_plays_the_same_episodes() -> None:
    """A resumed run starts new workers from the env's seed; the saved RNGs must make them play the
    episodes the killed run's workers would have played next, not the run's first ones again."""
    import io

    cfg = grf_config("counterattack_hard", episode_limit=20)

    def play(env: GRFEnv, gen: torch.Generator) -> torch.Tensor:  # [T, B, state_dim]
        env.reset()
        return torch.stack(
            [env.step(torch.randint(0, N_ACTIONS, (2, env.n_agents), generator=gen)).state for _ in range(20)]
        )

    env = GRFEnv(cfg, batch_size=2, seed=5)
    try:
        play(env, torch.Generator().manual_seed(0))
        buf = io.BytesIO()
        torch.save(env.rng_state(), buf)  # as checkpoints hold it, loaded weights_only
        gen = torch.Generator().manual_seed(1)
        ahead = [play(env, gen), play(env, gen)]
    finally:
        env.close()
    for restore in (False, True):
        again = GRFEnv(cfg, batch_size=2, seed=5)
        try:
            if restore:
                buf.seek(0)
                again.set_rng_state(torch.load(buf, weights_only=True))
            gen = torch.Generator().manual_seed(1)
            same = [torch.equal(play(again, gen), ep) for ep in ahead]
        finally:
            again.close()
        # from the seed alone the engines replay the run's first episode (the opponents move otherwise)
        assert same == ([True, True] if restore else [False, False])


def test_a_sigterm_to_the_whole_process_group_leaves_the_engines_rngs_to_the_parents_checkpoint() -> None:
    """A campaign's stop (and Ctrl-C, a scheduler) signals the training process's whole group; the
    parent then checkpoints, reading its engines' RNGs. The workers must outlive the signal: a worker
    killed by it is restarted to answer, and the checkpoint holds the restarted worker's RNG, not the
    run's (a resumed run would play other episodes)."""
    import subprocess
    import sys

    script = """
import io, signal, time, torch
from ptde.envs.football import GRFEnv, grf_config
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
env = GRFEnv(grf_config("3_vs_1_with_keeper", episode_limit=5), batch_size=2, seed=3)
env.reset()
before = io.BytesIO(); torch.save(env.rng_state(), before)
print("ready", flush=True)
while not stop:  # polled, not signal.pause(): a signal landing just before pause() would hang it
    time.sleep(0.05)
after = io.BytesIO(); torch.save(env.rng_state(), after)  # what a checkpoint saved on the signal holds
print("restarts", env.restarts, "same", before.getvalue() == after.getvalue(), flush=True)
env.close()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )  # its own process group, as the campaign starts a training process
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.killpg(proc.pid, signal.SIGTERM)  # the parent and its engine workers alike
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0
    assert out.split() == ["restarts", "0", "same", "True"]
