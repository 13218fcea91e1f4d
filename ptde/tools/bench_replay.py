"""The replay's memory per SMAC map, ragged against the padded layout (part of `make bench`).

For each map of conf/env/smac (under `ptde.cli.conf_dir()`, the folder the entry points compose
from; `--replay-maps` picks some): bytes per stored episode and resident size at capacity
(algo.buffer_size, 5000 by default) of
- the padded float32 layout PyMARL uses (and ptde did before ragged storage): exact, every
  element of it is written, so all of it is committed;
- ragged storage in float32 and float16 at a mean episode length taken from a real training run
  where one is given (`--replay-runs`: the mean `train/ep_length` of the episodes it collected
  over its last 20% of env steps) and else from random play (ε = 1) measured here, whose
  episodes differ from a trained policy's, shorter on some maps and longer on others
  (`length_source` says which was used); and at the episode limit, the bound the start-up
  check uses.
For one map (`--replay-rss-map`) a buffer is filled to capacity with episodes of that mean length
and its resident memory read from /proc/self/statm, to check the computed size against the OS.
"""

from __future__ import annotations

import csv
import gc
import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from ptde.cli import conf_dir
from ptde.data.buffer import EpisodeReplayBuffer, episode_bytes, padded_episode_bytes, replay_bound_bytes
from ptde.envs.base import EnvInfo
from ptde.envs.smac import SMACEnvConfig
from ptde.rollout import EpisodeBatch, run_episodes

MIB = 1024**2


def smac_maps() -> dict[str, int]:
    """map -> episode limit, from conf/env/smac: the maps and limits training runs use, read from
    the configs themselves so that a map added there is measured here too. An empty or missing
    folder raises rather than yielding no maps, which would leave the bench's section empty."""
    folder = conf_dir() / "env" / "smac"
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        d = yaml.safe_load(path.read_text())
        out[d["name"]] = int(d["episode_limit"])
    if not out:
        raise FileNotFoundError(f"no SMAC map configs (*.yaml) in {folder}")
    return out


def lengths_from_runs(run_dirs: list[str], tail: float = 0.2) -> dict[str, tuple[float, str]]:
    """map -> (mean episode length, where it comes from) of the given training runs: the mean
    `train/ep_length` (collected episodes) over the rows of the run's last `tail` of env steps, the
    episodes of its latest policy, which a full replay holds. The latest run of a map wins."""
    out: dict[str, tuple[float, str, float]] = {}
    for d in run_dirs:
        run = Path(d)
        res = json.loads((run / "results.json").read_text())
        with (run / "metrics.csv").open(newline="") as f:
            rows = [
                (float(r["env_steps"]), float(r["train/ep_length"]))
                for r in csv.DictReader(f)
                if r.get("train/ep_length")
            ]
        if not rows:
            continue
        end = rows[-1][0]
        recent = [length for steps, length in rows if steps >= (1 - tail) * end]
        if res["env"] not in out or end > out[res["env"]][2]:
            where = (
                f"training run {run} ({res['algo']}, seed {res['seed']}): collected episodes of its last "
                f"{tail:.0%} of {end:.0f} env steps"
            )
            out[res["env"]] = (sum(recent) / len(recent), where, end)
    return {k: (v[0], v[1]) for k, v in out.items()}


class _RandomPolicy:
    """Q = 0 everywhere: at epsilon = 1 run_episodes draws uniformly among available actions."""

    uses_state = False

    def act(self, inputs: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        return inputs.new_zeros(*inputs.shape[:3], self.n_actions), None

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions


def random_play_length(name: str, limit: int, episodes: int = 64) -> tuple[EnvInfo, float]:
    """The map's EnvInfo and the mean length of `episodes` random-play episodes."""
    from ptde.envs.smax import SMAXEnv

    env = SMAXEnv(SMACEnvConfig(name=name, episode_limit=limit), batch_size=16, seed=0)
    info = env.get_env_info()
    g = torch.Generator().manual_seed(0)
    lengths = [
        run_episodes(env, _RandomPolicy(info.n_actions), info.n_actions, 1.0, g).length for _ in range(episodes // 16)
    ]
    env.close()
    return info, torch.cat(lengths).float().mean().item()


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_resident(info: EnvInfo, capacity: int, length: float, dtype: torch.dtype) -> dict[str, float]:
    """Fill a buffer of `capacity` episodes of about `length` steps (lengths L and L + 1 mixed to
    that mean) with random data, then 20% more so rows are evicted and reused; resident memory
    it added (OS) against its `nbytes` and the computed `capacity x episode_bytes`."""
    gc.collect()
    before = resident_bytes()
    buf = EpisodeReplayBuffer(capacity, info, dtype)
    lo = int(length)
    frac = length - lo
    g = torch.Generator().manual_seed(0)
    B = 8
    n = 0
    while n < int(capacity * 1.2):
        lengths = (lo + (torch.rand(B, generator=g) < frac).long()).clamp(1, info.episode_limit)
        buf.insert(synthetic_episodes(info, lengths))
        n += B
    resident = resident_bytes() - before
    stored = buf.steps_stored / len(buf)
    out = {
        "episodes_inserted": float(n),
        "mean_stored_length": stored,
        "resident_os_mib": resident / MIB,
        "nbytes_mib": buf.nbytes / MIB,
        "computed_mib": capacity * episode_bytes(info, stored, dtype) / MIB,
    }
    del buf
    gc.collect()
    return out


def synthetic_episodes(info: EnvInfo, lengths: torch.Tensor) -> EpisodeBatch:
    """Episodes of the given lengths [B] with random obs and state, to fill a buffer by size alone."""
    B, T, n = len(lengths), int(lengths.max()), info.n_agents
    mask = (torch.arange(T) < lengths[:, None]).float()
    return EpisodeBatch(
        obs=torch.rand(B, T + 1, n, info.obs_dim),
        state=torch.rand(B, T + 1, info.state_dim),
        avail_actions=torch.ones(B, T + 1, n, info.n_actions, dtype=torch.bool),
        actions=torch.zeros(B, T, n, dtype=torch.long),
        reward=mask.clone(),
        terminated=torch.zeros(B, T),
        mask=mask,
        won=torch.zeros(B, dtype=torch.bool),
        episode_return=mask.sum(1),
        length=lengths,
    )


def bench_replay_memory(
    capacity: int, run_dirs: list[str], rss_map: str | None, maps: list[str] | None = None
) -> dict[str, Any]:
    """The replay section of bench/results.json: per SMAC map (all of conf/env/smac, or `maps`),
    bytes per episode and at `capacity` of the padded and ragged layouts, and for `rss_map` the
    resident memory of a filled buffer, so the computed sizes the start-up check and README rely on
    are checked against what the OS reports. A name in `maps` that is no SMAC config raises
    ValueError (a typo would otherwise measure nothing)."""
    real = lengths_from_runs(run_dirs)
    known = smac_maps()
    unknown = sorted(set(maps or []) - set(known))
    if unknown:
        raise ValueError(f"unknown SMAC map(s) {', '.join(unknown)}; conf/env/smac has {', '.join(known)}")
    out: dict[str, Any] = {"capacity": capacity, "rss_map": rss_map, "maps": {}}
    for name, limit in known.items():
        if maps and name not in maps:
            continue
        info, random_len = random_play_length(name, limit)
        length, source = real.get(name, (random_len, "random play (epsilon = 1) measured here, 64 episodes"))
        padded = padded_episode_bytes(info)
        m: dict[str, Any] = {
            "n_agents": info.n_agents,
            "obs_dim": info.obs_dim,
            "state_dim": info.state_dim,
            "n_actions": info.n_actions,
            "episode_limit": limit,
            "mean_episode_length": length,
            "length_source": source,
            "random_play_length": random_len,
            "padded_f32_episode_kib": padded / 1024,
            "padded_f32_capacity_mib": capacity * padded / MIB,
        }
        for dt_name, dt in (("f32", torch.float32), ("f16", torch.float16)):
            per = episode_bytes(info, length, dt)
            m[f"ragged_{dt_name}_episode_kib"] = per / 1024
            m[f"ragged_{dt_name}_capacity_mib"] = capacity * per / MIB
            m[f"ragged_{dt_name}_over_padded_f32"] = per / padded
            m[f"bound_{dt_name}_capacity_mib"] = replay_bound_bytes(capacity, info, dt) / MIB
        if name == rss_map:
            m["measured"] = {
                dt_name: measure_resident(info, capacity, length, dt)
                for dt_name, dt in (("f32", torch.float32), ("f16", torch.float16))
            }
        out["maps"][name] = m
        print(
            f"{name:>14}: L {length:6.1f}/{limit} ({'training run' if name in real else 'random play'}), padded f32"
            f" {m['padded_f32_capacity_mib']:8.0f} MiB,"
            f" ragged f32 {m['ragged_f32_capacity_mib']:7.0f} MiB ({m['ragged_f32_over_padded_f32']:.2f}),"
            f" ragged f16 {m['ragged_f16_capacity_mib']:7.0f} MiB ({m['ragged_f16_over_padded_f32']:.2f})",
            flush=True,
        )
    return out
