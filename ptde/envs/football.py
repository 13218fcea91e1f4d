"""Google Research Football (GRF) academy scenarios, B engines in worker processes.

The official engine (gfootball 2.10.2, `ptde/envs/install_grf.sh`) is single-threaded C++ with a
Python wrapper, so B engines run in B worker processes (socket pairs to each). Everything the learner
sees follows the paper's Table 8, built from the engine's `raw` observation:
- observation of agent i: its player's absolute position and speed; every left- and right-team
  player's position and speed relative to it; the ball's absolute position; the ball-owning team
  one-hot [nobody, left, right];
- state: per team (left then right) all absolute positions, speeds, tired factors and role
  one-hots (10 GRF roles); the ball's position, speed and rotation; the owning team one-hot and the
  owning player's index one-hot (last slot: nobody).
Reward, by default as the authors' code has it (chenyiqun/ptde-open `envs/gfootball/FootballEnv.py`:
`rewards='scoring,checkpoints'`, step reward `sum(rewards)` over the controlled players): gfootball
pays every controller +1 when the left team scores and 0.1 per checkpoint to the controller of the
ball carrier (at a goal, each controller also gets its checkpoints not yet collected), and the step
reward is the SUM over the controllers, so a goal pays n_agents and an episode that ends in a goal
returns exactly 2·n_agents. `reward=scoring` drops the checkpoints; `reward_sum=false` counts the
goal once instead of once per controller (the project's convention before the authors' was adopted:
both settings together give +1 per goal). All of it times `reward_scale`. `won` means the left team
scored. All 19 default actions are always available.

Stable agent identity. With k controllers on a team that has more controllable players, the engine
picks and re-picks which players the controllers hold (measured on 30 random episodes of the stock
scenarios: 3_vs_1 starts with the goalkeeper controlled, counterattack_hard with two own-half
midfielders, and controllers move 1-2 times per episode), so "agent i" would be a different
player from step to step. Here agent i is always the left team's player `agent_players[i]`: the
worker rebuilds the scenario with only those players controllable (the rest, keeper included, are
played by the engine's AI, as they are in the stock scenarios when not controlled), which puts the
engine in its fixed mode (controller j holds the j-th controllable player, no switching); actions
are still routed through the `active` index of every controller in the raw observation, so a
re-ordering by the engine could not scramble identities either.

Episodes: `terminated` when the scenario ends (goal, ball out of play, possession change, as the
academy rules say), `truncated` at `episode_limit`, so the TD target bootstraps there (PyMARL's
convention for a time limit). `timeout_terminal=true` ends it as terminal instead, as the authors'
code does: their FootballEnv returns `done` at its `time_limit` without PyMARL's `episode_limit`
flag, so their runner stores a terminal step and the target does not bootstrap. A finished
environment is frozen (its outputs repeat, its reward is 0) until the whole batch of B is over, as
PyMARL's parallel runner does; with `auto_reset=True` its worker is reset within the same `step`
instead (the engine draws the new episode's seed), and `final_obs`/`final_state` hold where the old
episode ended.

Engine failures: a worker that dies or does not answer within `step_timeout_s` is killed and
restarted; its episode is dropped (ends as truncated with reward 0, `info["dropped"]` marks it for
the rest of the batch so callers exclude it) and `restarts` counts restarts over the env's life.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import random
import socket
import subprocess
import sys
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import MISSING

from ptde.envs.info import EnvAdapter
from ptde.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from ptde.envs.base import PitchFrame, Step

# torch and ptde.envs.base (which imports torch) are imported inside the main-side functions: the
# worker processes load this module without them (see _WORKER_BOOT), which saves each worker
# ~2.5 s of start-up and ~150 MB.

log = logging.getLogger(__name__)

N_ACTIONS = 19  # gfootball's default action set
N_ROLES = 10  # GRF player roles GK, CB, LB, RB, DM, CM, LM, RM, AM, CF


@dataclass
class GRFEnvConfig:
    """A GRF academy scenario with the left team's field players as agents."""

    family: str = "grf"
    name: str = MISSING  # scenario without the academy_ prefix, e.g. 3_vs_1_with_keeper
    episode_limit: int = MISSING  # steps before truncation (the engine's own limit is 400)
    n_agents: int = MISSING  # the first n of the scenario's agent players (SCENARIOS[name].agent_players)
    batch_size_run: int = 8  # parallel environments while training
    test_batch_size: int = 8  # engine workers for greedy test episodes (more than the cores gains nothing)
    # gfootball reward spec: scoring,checkpoints (the authors' setting) | scoring
    reward: str = "scoring,checkpoints"
    # true: step reward = sum of the controllers' rewards, a goal pays n_agents (the authors'
    # FootballEnv, PyMARL2-style); false: the goal counted once (checkpoints still summed)
    reward_sum: bool = True
    reward_scale: float = 1.0
    # false: the episode limit truncates (the target bootstraps); true: it is a terminal state, as
    # in the authors' code (chenyiqun/ptde-open FootballEnv + gfootball_parallel_runner)
    timeout_terminal: bool = False
    step_timeout_s: float = 30.0  # a worker silent this long on a step is treated as hung
    reset_timeout_s: float = 120.0  # covers starting the engine in a fresh worker
    max_restarts_per_call: int = 3  # consecutive worker restarts in one reset() before giving up


@dataclass(frozen=True)
class Scenario:
    """How one academy scenario is set up: engine module, team sizes and the agents' players."""

    level: str  # gfootball.scenarios module (or one of ptde's own, see CUSTOM_SCENARIOS)
    n_left: int  # left-team players including the keeper
    n_right: int
    agent_players: tuple[int, ...]  # left-team indices the agents control; agent i -> agent_players[i]


SCENARIOS: dict[str, Scenario] = {
    # keeper 0 is AI-played; the three attackers 1-3 are the agents
    "3_vs_1_with_keeper": Scenario("academy_3_vs_1_with_keeper", 4, 2, (1, 2, 3)),
    # not in gfootball 2.10.2: ptde's definition below (3_vs_1_with_keeper plus a second defender)
    "3_vs_2_with_keeper": Scenario("academy_3_vs_2_with_keeper", 4, 3, (1, 2, 3)),
    # 11 vs 11; the four attackers in the opponent's half (CM, LM with the ball, RM, CF) are agents
    "counterattack_easy": Scenario("academy_counterattack_easy", 11, 11, (7, 8, 9, 10)),
    "counterattack_hard": Scenario("academy_counterattack_hard", 11, 11, (7, 8, 9, 10)),
    # the scenario has two field players (the ball carrier is player 2)
    "run_pass_and_shoot_with_keeper": Scenario("academy_run_pass_and_shoot_with_keeper", 3, 2, (1, 2)),
}
DEFAULT_EPISODE_LIMIT = 150  # PyMARL2 / CDS academy setting


def _build_3_vs_2_with_keeper(builder: Any) -> None:
    """academy_3_vs_1_with_keeper with two centre-backs (side by side) instead of one."""
    from gfootball.scenarios import Team, e_PlayerRole_CB, e_PlayerRole_CM, e_PlayerRole_GK

    cfg = builder.config()
    cfg.game_duration = 400
    cfg.deterministic = False
    cfg.offsides = False
    cfg.end_episode_on_score = True
    cfg.end_episode_on_out_of_play = True
    cfg.end_episode_on_possession_change = True
    builder.SetBallPosition(0.62, 0.0)
    builder.SetTeam(Team.e_Left)
    builder.AddPlayer(-1.0, 0.0, e_PlayerRole_GK)
    builder.AddPlayer(0.6, 0.0, e_PlayerRole_CM)
    builder.AddPlayer(0.7, 0.2, e_PlayerRole_CM)
    builder.AddPlayer(0.7, -0.2, e_PlayerRole_CM)
    builder.SetTeam(Team.e_Right)
    builder.AddPlayer(-1.0, 0.0, e_PlayerRole_GK)
    builder.AddPlayer(-0.75, 0.1, e_PlayerRole_CB)
    builder.AddPlayer(-0.75, -0.1, e_PlayerRole_CB)


CUSTOM_SCENARIOS = {"academy_3_vs_2_with_keeper": _build_3_vs_2_with_keeper}


def scenario_of(name: str) -> Scenario:
    key = name.removeprefix("academy_")
    if key not in SCENARIOS:
        raise ValueError(f"unknown GRF scenario {name!r}; valid: {', '.join(sorted(SCENARIOS))}")
    return SCENARIOS[key]


def check_config(env: dict[str, Any]) -> None:
    """A scenario ptde does not know fails before any run folder (and before an engine starts)."""
    try:
        scenario_of(env["name"])
    except ValueError as exc:
        raise ConfigError(f"env.name={env['name']!r}: {exc}") from None


def grf_config(name: str, **overrides: Any) -> GRFEnvConfig:
    """A complete config for a scenario (all its agent players, the default limit)."""
    spec = scenario_of(name)
    kwargs: dict[str, Any] = {
        "name": name.removeprefix("academy_"),
        "episode_limit": DEFAULT_EPISODE_LIMIT,
        "n_agents": len(spec.agent_players),
    }
    kwargs.update(overrides)
    return GRFEnvConfig(**kwargs)


def obs_dim_of(spec: Scenario) -> int:
    return 4 + 4 * (spec.n_left + spec.n_right) + 3 + 3


def state_dim_of(spec: Scenario) -> int:
    per_player = 2 + 2 + 1 + N_ROLES
    return per_player * (spec.n_left + spec.n_right) + 9 + 3 + max(spec.n_left, spec.n_right) + 1


# --------------------------------------------------------------------------- worker side (numpy)
def featurize(raw: dict[str, Any], players: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table 8 observation [n, obs_dim] and state [state_dim] from one raw observation."""
    lp = np.asarray(raw["left_team"], np.float32)  # [nl, 2]
    ld = np.asarray(raw["left_team_direction"], np.float32)  # [nl, 2]
    rp = np.asarray(raw["right_team"], np.float32)  # [nr, 2]
    rd = np.asarray(raw["right_team_direction"], np.float32)  # [nr, 2]
    ball = np.asarray(raw["ball"], np.float32)  # [3]
    owner = np.zeros(3, np.float32)  # [nobody, left, right]
    owner[int(raw["ball_owned_team"]) + 1] = 1.0
    n = len(players)
    own_p, own_v = lp[players], ld[players]  # [n, 2]

    def relative(pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
        rel = np.concatenate([pos[None] - own_p[:, None], vel[None] - own_v[:, None]], axis=-1)  # [n, m, 4]
        return rel.reshape(n, -1)

    obs = np.concatenate(
        [own_p, own_v, relative(lp, ld), relative(rp, rd), np.tile(ball, (n, 1)), np.tile(owner, (n, 1))],
        axis=1,
    )

    def team(pos: np.ndarray, vel: np.ndarray, side: str) -> list[np.ndarray]:
        tired = np.asarray(raw[f"{side}_team_tired_factor"], np.float32)  # [m]
        roles = np.eye(N_ROLES, dtype=np.float32)[np.asarray(raw[f"{side}_team_roles"], np.int64)]  # [m, 10]
        return [pos.reshape(-1), vel.reshape(-1), tired, roles.reshape(-1)]

    owner_player = np.zeros(max(len(lp), len(rp)) + 1, np.float32)  # last slot: nobody
    owner_player[int(raw["ball_owned_player"]) if raw["ball_owned_team"] != -1 else -1] = 1.0
    state = np.concatenate(
        team(lp, ld, "left")
        + team(rp, rd, "right")
        + [
            ball,
            np.asarray(raw["ball_direction"], np.float32),
            np.asarray(raw["ball_rotation"], np.float32),
            owner,
            owner_player,
        ]
    )
    return obs.astype(np.float32), state.astype(np.float32)


def route_actions(actions: np.ndarray, active: list[int], players: np.ndarray) -> list[int]:
    """Per-controller actions: controller j gets the action of the agent whose player it holds.

    `actions` [n] is in agent order (agent i plays `players[i]`), `active` [n] is the player each
    controller holds. A controller holding none of the agents' players (cannot happen with the
    fixed player set) idles.
    """
    agent_of = {int(p): i for i, p in enumerate(players)}
    return [int(actions[agent_of[a]]) if a in agent_of else 0 for a in active]


def _register_scenario(level: str, players: tuple[int, ...]) -> str:
    """Register `gfootball.scenarios.ptde_<level>`: the scenario with only `players` controllable."""
    from gfootball.scenarios import Team

    if level in CUSTOM_SCENARIOS:
        build = CUSTOM_SCENARIOS[level]
    else:
        build = importlib.import_module(f"gfootball.scenarios.{level}").build_scenario

    class FixedPlayersBuilder:
        """Forwards to the engine's builder; left players outside `players` are made uncontrollable."""

        def __init__(self, inner: Any) -> None:
            self._inner, self._left, self._index = inner, False, 0

        def SetTeam(self, team: Any) -> None:
            self._left = team == Team.e_Left
            self._inner.SetTeam(team)

        def AddPlayer(self, x, y, role, lazy=False, controllable=True) -> None:
            if self._left:
                controllable = controllable and self._index in players
                self._index += 1
            self._inner.AddPlayer(x, y, role, lazy, controllable)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    name = f"ptde_{level}"
    module = types.ModuleType(f"gfootball.scenarios.{name}")
    module.build_scenario = lambda builder: build(FixedPlayersBuilder(builder))
    sys.modules[module.__name__] = module
    return name


def _worker_entry() -> None:
    """`python -c` entry of a worker: argv = fd, level, players (comma-separated), reward, seed."""
    fd, level, players, reward, seed = sys.argv[1:6]
    conn = Connection(int(fd))
    try:
        _worker_main(conn, level, tuple(int(p) for p in players.split(",")), reward, int(seed))
    finally:
        conn.close()


def _worker_main(conn: Connection, level: str, players: tuple[int, ...], reward: str, seed: int) -> None:
    """One engine. Commands: ("reset", seed | None), ("step", actions [n]), ("rng", None),
    ("set_rng", state), ("close", None)."""
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        with contextlib.redirect_stderr(io.StringIO()):  # gym 0.25's "unmaintained" banner
            import gfootball.env as football_env
        warnings.filterwarnings("ignore")  # after the import: gym's logger resets the filters

        env = football_env.create_environment(
            env_name=_register_scenario(level, players),
            representation="raw",
            rewards=reward,
            number_of_left_players_agent_controls=len(players),
            render=False,
            write_goal_dumps=False,
            write_full_episode_dumps=False,
        )
        idx = np.asarray(players)
        active: list[int] = []
        while True:
            cmd, data = conn.recv()
            if cmd == "reset":
                if data is not None:
                    random.seed(data)  # the engine draws each episode's seed from `random`
                    np.random.seed(data % 2**32)
                raw = env.reset()
                active = [int(o["active"]) for o in raw]
                obs, state = featurize(raw[0], idx)
                conn.send(("ok", (obs, state, np.asarray(active))))
            elif cmd == "step":
                raw, rew, done, info = env.step(route_actions(data, active, idx))
                active = [int(o["active"]) for o in raw]
                obs, state = featurize(raw[0], idx)
                score = raw[0]["score"]
                won = bool(score[0] > score[1])
                time_up = int(raw[0]["steps_left"]) <= 0 and score[0] == score[1]  # engine's 400 steps
                # every controller gets the scoring reward, checkpoint rewards go to the controller
                # holding the ball carrier; the sum over controllers is the authors' step reward
                # (a goal pays n), the parent counts the goal once when reward_sum is off
                reward = float(np.sum(np.asarray(rew)))
                score_reward = float(info["score_reward"])
                conn.send(("ok", (obs, state, reward, score_reward, bool(done), won, time_up, np.asarray(active))))
            elif cmd == "rng":  # what draws the next episodes' engine seeds
                conn.send(("ok", (random.getstate(), np.random.get_state())))
            elif cmd == "set_rng":
                random.setstate(data[0])
                np.random.set_state(data[1])
                conn.send(("ok", None))
            elif cmd == "close":
                env.close()
                return
            else:
                raise ValueError(f"unknown command {cmd!r}")
    except (EOFError, BrokenPipeError):  # the parent is gone
        return
    except Exception:  # report anything to the parent, which restarts us
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass


# --------------------------------------------------------------------------- main side (torch)
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# Load this module in a worker without running ptde/__init__.py and ptde/envs/__init__.py (they
# import torch): empty package modules pointing at the source folders stand in for them.
# First, the worker ignores SIGTERM and SIGINT: the parent owns its life (`close`, or SIGKILL when
# it hangs; EOF when the parent dies). A signal sent to the whole process group (a campaign's stop,
# Ctrl-C in a terminal, a scheduler) must reach only the parent, which checkpoints on it: a worker
# killed first would be restarted to read its RNGs, and the checkpoint would hold the restarted
# worker's RNG instead of the run's (a resumed run would play other episodes).
_WORKER_BOOT = """
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
import sys, types
for name in ("ptde", "ptde.envs"):
    pkg = types.ModuleType(name)
    pkg.__path__ = [{root!r} + "/" + name.replace(".", "/")]
    sys.modules[name] = pkg
from ptde.envs.football import _worker_entry
_worker_entry()
"""


class _Worker:
    """A worker process and the parent's end of a socket pair to it.

    A fresh interpreter (`python -c`), not multiprocessing: it never forks a parent that holds
    torch/JAX threads, never re-imports the caller's `__main__` (so scripts need no main guard),
    and does not depend on the caller's multiprocessing start method.
    """

    def __init__(self, level: str, players: tuple[int, ...], reward: str, seed: int) -> None:
        parent, child = socket.socketpair()
        args = [str(child.fileno()), level, ",".join(map(str, players)), reward, str(seed)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT.format(root=str(_PACKAGE_ROOT)), *args],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the engine and gym print; errors come back over the socket
        )
        child.close()  # so the parent sees EOF when the worker dies
        self.conn = Connection(parent.detach())

    def send(self, cmd: str, data: Any) -> bool:
        try:
            self.conn.send((cmd, data))
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False

    def recv(self, deadline: float) -> tuple[Any, str]:
        """(payload, "") on success, else (None, why)."""
        try:
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                return None, "timed out"
            kind, payload = self.conn.recv()
        except (EOFError, ConnectionResetError, OSError) as e:
            try:
                code = self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            return None, f"died ({type(e).__name__}, exit code {code})"
        if kind != "ok":
            return None, f"raised:\n{payload}"
        return payload, ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.conn.close()

    def close(self) -> None:
        if self.proc.poll() is None and self.send("close", None):
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class GRFEnv(EnvAdapter):
    """B GRF academy episodes in B worker processes; see the module docstring."""

    def __init__(self, cfg: Any, batch_size: int, seed: int = 0, auto_reset: bool = False) -> None:
        self.cfg = cfg
        self.auto_reset = auto_reset
        self.spec = scenario_of(cfg.name)
        if not 1 <= cfg.n_agents <= len(self.spec.agent_players):
            raise ValueError(f"GRF {cfg.name}: n_agents must be 1..{len(self.spec.agent_players)}, got {cfg.n_agents}")
        self.batch_size = batch_size
        self.n_agents = int(cfg.n_agents)
        self.players = tuple(self.spec.agent_players[: self.n_agents])
        self.n_actions = N_ACTIONS
        self.obs_dim = obs_dim_of(self.spec)
        self.state_dim = state_dim_of(self.spec)
        self.episode_limit = int(cfg.episode_limit)
        self.restarts = 0  # workers restarted over this env's life
        self._seed = seed
        seeds = np.random.SeedSequence(seed).generate_state(batch_size)
        self._workers = [self._start(int(s)) for s in seeds]
        B, n = batch_size, self.n_agents
        self._obs = np.zeros((B, n, self.obs_dim), np.float32)
        self._state = np.zeros((B, self.state_dim), np.float32)
        self._active = np.zeros((B, n), np.int64)
        self._t = np.zeros(B, np.int64)
        self._done = np.ones(B, bool)
        self._dropped = np.zeros(B, bool)
        self._ready = False
        self._closed = False

    def _start(self, seed: int) -> _Worker:
        return _Worker(self.spec.level, self.players, str(self.cfg.reward), seed)

    def _restart(self, b: int, why: str) -> None:
        log.warning("GRF worker %d %s; restarting it", b, why)
        self._workers[b].kill()
        self.restarts += 1
        self._workers[b] = self._start(int(np.random.SeedSequence([self._seed, b, self.restarts]).generate_state(1)[0]))

    def _ask(self, b: int, cmd: str, data: Any) -> Any:
        """One command to worker `b` between episodes and its answer, restarting it once on failure."""
        for attempt in range(2):
            if self._workers[b].send(cmd, data):
                payload, why = self._workers[b].recv(time.monotonic() + float(self.cfg.reset_timeout_s))
                if why == "":
                    return payload
            else:
                why = "died (broken pipe)"
            if attempt == 0:
                self._restart(b, f"failed on {cmd}: {why}")
        raise RuntimeError(f"GRF worker {b} failed on {cmd} twice: {why}")

    def rng_state(self) -> dict[str, Any]:
        """What decides the next episodes: each worker's python and numpy RNGs (the engine draws an
        episode's seed from `random` at its reset) and the restart count (a restarted worker's seed),
        saved in checkpoints so a resumed run plays the episodes the uninterrupted one would have.
        Read between episodes, as checkpoints are; a worker mid-episode would restart its episode.
        Plain values and tensors only (checkpoints load weights_only)."""
        import torch

        workers = []
        for b in range(self.batch_size):
            py, (kind, key, pos, has_gauss, gauss) = self._ask(b, "rng", None)
            workers.append(
                {"python": py, "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss)}
            )
        return {"workers": workers, "restarts": self.restarts}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        if len(state["workers"]) != self.batch_size:
            raise ValueError(f"saved RNGs of {len(state['workers'])} GRF workers, this env has {self.batch_size}")
        self.restarts = int(state["restarts"])
        for b, w in enumerate(state["workers"]):
            version, internal, gauss_next = w["python"]
            kind, key, pos, has_gauss, gauss = w["numpy"]
            numpy_state = (kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss)
            self._ask(b, "set_rng", ((version, tuple(internal), gauss_next), numpy_state))

    @property
    def active_players(self) -> torch.Tensor:
        """The player each engine controller holds, [B, n_agents] (the agents' players, for checks)."""
        import torch

        return torch.from_numpy(self._active.copy())

    def reset(self, seed: int | None = None) -> Step:
        if self._closed:
            raise RuntimeError("GRFEnv is closed")
        B = self.batch_size
        seeds: list[int | None] = [None] * B
        if seed is not None:
            seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(B)]
        self._reset_workers(list(range(B)), seeds)
        self._t[:] = 0
        self._done[:] = False
        self._dropped[:] = False
        self._ready = True
        zeros = np.zeros(B, bool)
        return self._pack(np.zeros(B, np.float32), zeros, zeros, zeros)

    def _reset_workers(self, pending: list[int], seeds: list[int | None]) -> None:
        """Reset workers `pending` (seeds indexed by env), restarting any that fail."""
        for _attempt in range(int(self.cfg.max_restarts_per_call) + 1):
            for b in pending:
                self._workers[b].send("reset", seeds[b])
            deadline = time.monotonic() + float(self.cfg.reset_timeout_s)
            failed = []
            for b in pending:
                payload, why = self._workers[b].recv(deadline)
                if payload is None:
                    self._restart(b, f"failed on reset: {why}")
                    failed.append(b)
                    continue
                self._obs[b], self._state[b], self._active[b] = payload
            pending = failed
            if not pending:
                break
        else:
            raise RuntimeError(f"GRF workers {pending} failed to reset {self.cfg.max_restarts_per_call + 1} times")

    def step(self, actions: torch.Tensor) -> Step:
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        B = self.batch_size
        acts = np.asarray(actions.detach().cpu(), dtype=np.int64).reshape(B, self.n_agents)
        reward = np.zeros(B, np.float32)
        terminated = np.zeros(B, bool)
        truncated = np.zeros(B, bool)
        won = np.zeros(B, bool)
        running = np.flatnonzero(~self._done)
        failed: dict[int, str] = {}
        for b in running:
            if not self._workers[b].send("step", acts[b]):
                failed[b] = "died (broken pipe)"
        deadline = time.monotonic() + float(self.cfg.step_timeout_s)
        for b in running:
            if b in failed:
                continue
            payload, why = self._workers[b].recv(deadline)
            if payload is None:
                failed[b] = why
                continue
            self._obs[b], self._state[b], rew, score_rew, done, scored, time_up, self._active[b] = payload
            self._t[b] += 1
            if not self.cfg.reward_sum:  # the goal once, not once per controller
                rew -= (len(self.players) - 1) * score_rew
            reward[b] = rew * float(self.cfg.reward_scale)
            out_of_time = bool(self._t[b] >= self.episode_limit or time_up)
            terminated[b] = (done and not time_up) or (out_of_time and self.cfg.timeout_terminal)
            truncated[b] = out_of_time and not terminated[b]
            won[b] = scored
        for b, why in failed.items():
            # drop the broken episode: it ends here (truncated, reward 0); the new worker starts
            # at the next reset()
            self._restart(b, f"failed on step: {why}")
            self._dropped[b] = True
            truncated[b] = True
        self._done |= terminated | truncated
        if not self.auto_reset:
            return self._pack(reward, terminated, truncated, won)
        # auto-reset: the ended episodes' workers start the next one now
        ended = np.flatnonzero(terminated | truncated)
        final_obs, final_state, dropped = self._obs.copy(), self._state.copy(), self._dropped.copy()
        if ended.size:
            self._reset_workers(ended.tolist(), [None] * B)
            self._t[ended] = 0
            self._done[ended] = False
            self._dropped[ended] = False
        import torch

        step = self._pack(reward, terminated, truncated, won, dropped)
        step.final_obs, step.final_state = torch.from_numpy(final_obs), torch.from_numpy(final_state)
        return step

    def _pack(
        self,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        won: np.ndarray,
        dropped: np.ndarray | None = None,
    ) -> Step:
        import torch

        from ptde.envs.base import Step

        dropped = self._dropped if dropped is None else dropped
        return Step(
            obs=torch.from_numpy(self._obs.copy()),  # [B, n, obs_dim]
            state=torch.from_numpy(self._state.copy()),  # [B, state_dim]
            avail_actions=torch.ones(self.batch_size, self.n_agents, self.n_actions, dtype=torch.bool),
            reward=torch.from_numpy(reward),  # [B]
            terminated=torch.from_numpy(terminated),
            truncated=torch.from_numpy(truncated),
            won=torch.from_numpy(won),
            info={"dropped": torch.from_numpy(dropped.copy())},  # [B] bool
        )

    def frame(self, index: int = 0) -> PitchFrame:
        """Player and ball positions of engine `index` now, read back from the Table 8 state (which
        holds the raw observation's absolute positions), for rendering an episode as a pitch plot."""
        from ptde.envs.base import PitchFrame

        s = self._state[index]
        nl, nr = self.spec.n_left, self.spec.n_right
        per_player = 2 + 2 + 1 + N_ROLES
        ball_at = per_player * (nl + nr)
        return PitchFrame(
            t=int(self._t[index]),
            left=s[: 2 * nl].reshape(nl, 2).copy(),
            right=s[per_player * nl : per_player * nl + 2 * nr].reshape(nr, 2).copy(),
            ball=s[ball_at : ball_at + 3].copy(),
            agents=list(self.players),
        )

    @property
    def worker_pids(self) -> list[int | None]:
        return [w.proc.pid for w in self._workers]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            w.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def benchmark_football(scenario: str, batch_size: int, steps: int, seed: int = 0) -> float:
    """Environment transitions per second under uniformly random actions.

    Runs `steps` batched step() calls (resets included, worker start-up excluded) and counts only
    the transitions of environments still running, so frozen finished episodes do not inflate it.
    """
    import torch

    env = GRFEnv(grf_config(scenario), batch_size=batch_size, seed=seed)
    try:
        gen = torch.Generator().manual_seed(seed)
        env.reset()
        done = torch.zeros(batch_size, dtype=torch.bool)
        transitions = 0
        start = time.perf_counter()
        for _ in range(steps):
            if bool(done.all()):
                env.reset()
                done[:] = False
            actions = torch.randint(0, N_ACTIONS, (batch_size, env.n_agents), generator=gen)
            transitions += int((~done).sum())
            done |= env.step(actions).done
        return transitions / (time.perf_counter() - start)
    finally:
        env.close()
