"""Floors for the GRF academy scenarios: how often a goal comes without any learning.

For each scenario, over `--episodes` episodes each:

- random: the project's own env (`ptde.envs.football.GRFEnv`, `grf_config(name)`: episode_limit 150,
  the authors' reward `scoring,checkpoints` summed over the controllers, agents on the scenario's
  `agent_players`, every other left player played by the engine's AI) with uniformly random actions
  over all 19 actions, B engines, run through `ptde.rollout.run_episodes`. Each batch of B is reset
  with its own seed, actions come from a seeded torch.Generator.
- builtin_ai: the stock gfootball scenario with no agent controllers at all
  (`create_environment(..., number_of_left_players_agent_controls=0)`, stepped with an empty action
  list), so every left player, keeper included, is played by the engine's built-in AI (at the
  engine's default left_team_difficulty 1.0; the scenario's opponents play at 0.6 as always). Same
  150-step limit (a time-out is not a goal) and the scenario's own end rules (goal, out of play,
  possession change). Before each episode Python's `random` is seeded, as the project's worker does,
  because the engine draws each episode's seed from it. Half the episodes run with the engine's
  `reverse_team_processing` off and half with it on (see below). With no controllers the raw observation list
  is empty, so the score is read from the engine's `score_reward` (the step change of
  score[0] - score[1]): their sum over the episode is score[0] - score[1] at its end, and a score
  means the left team scored.

`reverse_team_processing`: gfootball means it to be a coin flip per episode (the parity of the
episode's engine seed), but stores it in the env's config at the first reset, so it is fixed for an
env's whole life; and it changes the engine's play a lot (3_vs_1_with_keeper under the built-in AI
runs ~140 steps without it and ~70 with it). The built-in AI floor therefore runs half its episodes
under each value; the random floor reports the value of each of its B workers (fixed by the
worker's seed; `reverse_of_worker`) and both floors give the score rate under each value.

A score rate is the fraction of episodes with a left-team goal; its standard error is
sqrt(p (1 - p) / n). Writes floors.json and floors.md next to this file and prints the table.

    .venv/bin/python benchmarks/grf/floors.py
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import math
import random
import shlex
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptde.envs.football import DEFAULT_EPISODE_LIMIT, N_ACTIONS, GRFEnv, grf_config, scenario_of
from ptde.rollout.episodes import run_episodes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCENARIOS = ("3_vs_1_with_keeper", "counterattack_hard")


class RandomActor:
    """Uniformly random over the available actions (all 19 in GRF), from a seeded generator."""

    uses_state = False

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def act(self, inputs: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        B, _, n, _ = inputs.shape
        return torch.zeros(B, 1, n, self.n_actions), None

    def select_actions(
        self, out: torch.Tensor, avail: torch.Tensor, epsilon: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        B, n, A = avail.shape
        probs = avail.float().reshape(B * n, A)
        return torch.multinomial(probs, 1, generator=generator).reshape(B, n)


def rate_stats(won: np.ndarray) -> dict[str, float]:
    n = len(won)
    p = float(np.mean(won)) if n else 0.0
    return {"score_rate": p, "score_rate_se": math.sqrt(p * (1 - p) / n) if n else 0.0}


class SeededGRFEnv(GRFEnv):
    """GRFEnv whose argument-less reset() (what run_episodes calls) uses `next_seed`."""

    next_seed: int | None = None

    def reset(self, seed: int | None = None):
        return super().reset(self.next_seed if seed is None else seed)


def random_floor(scenario: str, episodes: int, batch_size: int, seed: int) -> dict[str, Any]:
    """`episodes` episodes of the project's env under uniformly random actions (dropped ones replaced)."""
    cfg = grf_config(scenario)
    gen = torch.Generator().manual_seed(seed)
    actor = RandomActor(N_ACTIONS)
    won, ret, length, timed_out, reverse, dropped = [], [], [], [], [], 0
    worker_reverse = [reverse_of_worker(int(w)) for w in np.random.SeedSequence(seed).generate_state(batch_size)]
    start = time.perf_counter()
    env = SeededGRFEnv(cfg, batch_size=batch_size, seed=seed)
    try:
        i = 0
        while len(won) < episodes:
            # reset(seed) gives each of the B engines its own seed drawn from the batch's seed
            env.next_seed = int(np.random.SeedSequence([seed, 1, i]).generate_state(1)[0])
            i += 1
            batch = run_episodes(env, actor, N_ACTIONS, epsilon=0.0, generator=gen)
            keep = torch.ones(batch.batch_size, dtype=torch.bool)
            if batch.dropped is not None:
                keep &= ~batch.dropped
                dropped += int(batch.dropped.sum())
            last = (batch.length - 1).clamp(min=0)
            ended = batch.terminated.gather(1, last[:, None])[:, 0] > 0  # a real end, not a time-out
            won += batch.won[keep].tolist()
            ret += batch.episode_return[keep].tolist()
            length += batch.length[keep].tolist()
            timed_out += (~ended)[keep].tolist()
            reverse += torch.tensor(worker_reverse)[keep].tolist()
        restarts = env.restarts
    finally:
        env.close()
    won_a, rev_a = np.asarray(won[:episodes], bool), np.asarray(reverse[:episodes], bool)
    return {
        **rate_stats(won_a),
        "mean_return": float(np.mean(ret[:episodes])),
        "mean_length": float(np.mean(length[:episodes])),
        "timeout_rate": float(np.mean(timed_out[:episodes])),
        "episodes": len(won_a),
        "by_reverse_team_processing": by_flag(won_a, np.asarray(length[:episodes]), rev_a),
        "worker_reverse_team_processing": worker_reverse,
        "dropped_episodes": dropped,
        "worker_restarts": restarts,
        "n_agents": cfg.n_agents,
        "agent_players": list(scenario_of(scenario).agent_players[: cfg.n_agents]),
        "reward": cfg.reward,
        "reward_sum": cfg.reward_sum,
        "batch_size": batch_size,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def reverse_of_worker(worker_seed: int) -> bool:
    """The engine's `reverse_team_processing` in a GRFEnv worker started with `worker_seed`.

    gfootball sets it from the parity of the first episode's `game_engine_random_seed` and then
    keeps it in the env's config for the env's whole life (scenario_builder: it is stored with
    `config[...] =`, not as a per-episode scenario value). The worker seeds `random` and then
    creates the env, which draws two seeds (create_environment builds two Configs): the second's
    parity is the worker's flag for as long as it lives.
    """
    rng = random.Random(worker_seed)
    rng.randint(0, 2000000000)
    return bool(rng.randint(0, 2000000000) % 2)


def by_flag(won: np.ndarray, length: np.ndarray, flag: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        str(v).lower(): {
            **rate_stats(won[flag == v]),
            "mean_length": float(np.mean(length[flag == v])),
            "episodes": int(np.sum(flag == v)),
        }
        for v in (False, True)
        if np.any(flag == v)
    }


def builtin_ai_floor(scenario: str, episodes: int, episode_limit: int, seed: int) -> dict[str, Any]:
    """`episodes` episodes of the stock scenario with every left player played by the engine's AI,
    half of them with the engine's `reverse_team_processing` off and half with it on."""
    with contextlib.redirect_stderr(io.StringIO()):  # gym 0.25's "unmaintained" banner
        import gfootball.env as football_env
        from gfootball.env import config as football_config
    warnings.filterwarnings("ignore")  # after the import: gym's logger resets the filters

    level = scenario_of(scenario).level
    seeds = np.random.SeedSequence([seed, 2]).generate_state(episodes)
    won, conceded, length, timed_out, reverse = [], [], [], [], []
    start = time.perf_counter()
    scenario_cfg = football_config.Config({"level": level}).ScenarioConfig()
    halves = ((False, range(episodes // 2)), (True, range(episodes // 2, episodes)))
    for rev, ks in halves:
        # gfootball fixes this flag for an env's whole life from its first seed; it changes the
        # engine's play markedly (3_vs_1_with_keeper episodes run twice as long without it), so
        # each value gets half the episodes, as a fresh env per episode would on average
        env = football_env.create_environment(
            env_name=level,
            representation="raw",
            rewards="scoring",
            number_of_left_players_agent_controls=0,
            render=False,
            write_goal_dumps=False,
            write_full_episode_dumps=False,
            other_config_options={"reverse_team_processing": rev},
        )
        try:
            for k in ks:
                random.seed(int(seeds[k]))  # the engine draws the episode's seed from `random`
                obs = env.reset()
                assert len(obs) == 0, "expected no controlled players"
                diff, done, t = 0, False, 0
                while not done and t < episode_limit:
                    _, _, done, info = env.step([])
                    diff += int(info["score_reward"])  # step change of score[0] - score[1]
                    t += 1
                won.append(diff > 0)
                conceded.append(diff < 0)
                length.append(t)
                timed_out.append(not done)
                reverse.append(rev)
        finally:
            env.close()
    won_a = np.asarray(won, bool)
    return {
        **rate_stats(won_a),
        "mean_length": float(np.mean(length)),
        "timeout_rate": float(np.mean(timed_out)),
        "conceded_rate": float(np.mean(conceded)),
        "episodes": len(won_a),
        "by_reverse_team_processing": by_flag(won_a, np.asarray(length), np.asarray(reverse, bool)),
        "left_players_controlled_by_agents": 0,
        "left_team_difficulty": round(float(scenario_cfg.left_team_difficulty), 3),
        "right_team_difficulty": round(float(scenario_cfg.right_team_difficulty), 3),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def git_commit() -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout)
    except OSError:
        return {"commit": None, "dirty": None}
    return {"commit": head or None, "dirty": dirty}


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    first = next(iter(result["scenarios"].values()))
    ai_meta = first["builtin_ai"]
    flags = first["random"]["worker_reverse_team_processing"]
    reverse_note = f"{sum(flags)} of {len(flags)} on"
    lines = [
        "# GRF floors: random policy and gfootball's built-in AI",
        "",
        f"Made by `{meta['command']}` on {meta['date']} (commit {meta['commit']}"
        f"{', uncommitted changes present' if meta['dirty'] else ''}; gfootball {meta['gfootball']}), "
        f"{meta['wall_s']:.0f} s.",
        "",
        "| scenario | policy | score rate ± SE | mean return | mean length | time-outs | episodes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in result["scenarios"].items():
        for policy, label in (("random", "random"), ("builtin_ai", "built-in AI")):
            r = row[policy]
            ret = f"{r['mean_return']:.3f}" if "mean_return" in r else "—"
            lines.append(
                f"| {name} | {label} | {r['score_rate']:.3f} ± {r['score_rate_se']:.3f} | {ret} "
                f"| {r['mean_length']:.1f} | {r['timeout_rate']:.3f} | {r['episodes']} |"
            )
    lines += [
        "",
        f"Episode limit {meta['episode_limit']} steps (a time-out is not a goal); a score is a left-team goal; "
        "SE = sqrt(p(1-p)/n).",
        "",
        "By the engine's `reverse_team_processing` (fixed per env for its life, see floors.py): score rate ± SE, "
        "mean length, episodes.",
        "",
        "| scenario | policy | off | on |",
        "|---|---|---|---|",
    ]
    for name, row in result["scenarios"].items():
        for policy, label in (("random", "random"), ("builtin_ai", "built-in AI")):
            cells = []
            for flag in ("false", "true"):
                f = row[policy]["by_reverse_team_processing"].get(flag)
                cells.append(
                    f"{f['score_rate']:.3f} ± {f['score_rate_se']:.3f}, {f['mean_length']:.1f}, {f['episodes']}"
                    if f
                    else "—"
                )
            lines.append(f"| {name} | {label} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "- **random**: the project's `GRFEnv` (`grf_config(name)`), uniformly random actions over all 19 for the "
        "agents (3_vs_1_with_keeper: left players 1-3; counterattack_hard: 7-10), every other left player "
        f"played by the engine's AI; B = {meta['batch_size']} engines (workers' reverse_team_processing: "
        f"{reverse_note}), each batch reset with its own seed. "
        "Mean return in the authors' reward (`scoring,checkpoints`, summed over the controllers: "
        "a goal episode returns 2·n_agents).",
        "- **built-in AI**: the stock scenario created with `number_of_left_players_agent_controls=0` and "
        "stepped with an empty action list, so all left players (keeper included) are the engine's AI "
        f"(left_team_difficulty {ai_meta['left_team_difficulty']}, the engine default; opponents "
        f"{ai_meta['right_team_difficulty']} as in the scenario), half the episodes with reverse_team_processing "
        "off, half on. No controllers, so no return in the authors' reward.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="engines for the random policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args()
    torch.set_num_threads(1)

    start = time.perf_counter()
    rows: dict[str, Any] = {}
    for name in args.scenarios:
        rnd = random_floor(name, args.episodes, args.batch_size, args.seed)
        print(f"{name} random: {rnd['score_rate']:.3f} ± {rnd['score_rate_se']:.3f} ({rnd['wall_s']} s)", flush=True)
        ai = builtin_ai_floor(name, args.episodes, DEFAULT_EPISODE_LIMIT, args.seed)
        print(f"{name} built-in AI: {ai['score_rate']:.3f} ± {ai['score_rate_se']:.3f} ({ai['wall_s']} s)", flush=True)
        rows[name] = {"random": rnd, "builtin_ai": ai}

    argv = [sys.argv[0], *sys.argv[1:]]
    result = {
        "meta": {
            "command": f".venv/bin/python {shlex.join(argv)}",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            **git_commit(),
            "gfootball": metadata.version("gfootball"),
            "episodes": args.episodes,
            "episode_limit": DEFAULT_EPISODE_LIMIT,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        "scenarios": rows,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "floors.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    table = markdown(result)
    (args.out_dir / "floors.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
