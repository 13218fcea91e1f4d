"""`python -m ptde.tools.bench [--grf]` (`make bench`): throughput and replay memory -> bench/results.json.

Measures, per SMAX map: env steps per second of collection alone (B = 8 parallel episodes, the
policy's forward included, ε = 1); collection of both paths with MAPPO's sampling actor at
B = 8 and 64 (`collection`: real env steps per second of whole-episode collection, where
finished envs freeze until the longest episode ends, and of step-based collection on auto-reset
envs, plus the episode path's share of frozen env slots); learner updates per second (batch 128 episodes of real
rollouts, cut to the longest sampled, and of full-length padded episodes) for QMIX and GIP-QMIX,
and the GIP hypernetwork ratio straightforward ÷ factored (forward + backward).
Timings are medians of repeated runs; the test suite asserts only that every part yields finite
figures (tests/test_bench.py runs each in a smoke setting), never their values.
`--parts replay`: the replay's memory per SMAC map, ragged against padded (see ptde.tools.bench_replay).
`--grf` (with the throughput part) or `--parts grf`: GRF env steps per second per academy scenario.
`--parts gru`: the agents' GRU over an update's real steps, Python loop against the C++ kernel
(ptde.tools.bench_gru). The learner updates run as a run's would, with `trainer.fused_gru`'s default.

A part that measures nothing (a map list that came out empty, a section without numbers, a
non-finite figure) makes the bench exit non-zero naming that part, and the output file is then
not written: bench/results.json is the project's performance record and must never come out
hollow. The smoke flags (`--replay-maps`, `--gip-maps`, `--batch-episodes`, `--grf-scenarios`,
`--grf-batches`) restrict a part to a few small cases.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ptde.config import DistillConfig, MAPPOConfig, TrainerConfig, ValueDecompositionConfig, VariantConfig
from ptde.config.resolved import to_container
from ptde.data.buffer import EpisodeReplayBuffer
from ptde.envs.smac import SMACEnvConfig
from ptde.envs.smax import SMAXEnv
from ptde.files import write_json_atomic
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.machine import cpu_description
from ptde.nn.global_info import GIPModule, gip_embedding_reference
from ptde.nn.ragged_gru import use_fused_kernel
from ptde.rollout import run_episodes
from ptde.rollout.steps import collect_steps
from ptde.tools.bench_speed import merge_speed

LIMITS = {"3m": 60, "5m_vs_6m": 70, "3s_vs_5z": 250, "3s5z_vs_3s7z": 170}
PARTS = ["throughput", "collection", "replay", "gru"]  # the parts run by default
# what `--parts` may name: football needs gfootball, checkpoint and speed take minutes, so only on request
ALL_PARTS = [*PARTS, "grf", "checkpoint", "speed"]
# where each part's figures land in the results: a dict of map or scenario -> its figures
SECTIONS: dict[str, list[tuple[str, ...]]] = {
    "throughput": [("maps",), ("gip_ratio",)],
    "collection": [("collection",)],
    "replay": [("replay_memory", "maps")],
    "grf": [("grf_env_steps_per_s",)],
    "checkpoint": [("checkpoint",)],
    "speed": [("speed", "algos")],
    "gru": [("ragged_gru",)],
}
# shapes of the two maps the GIP ratio is measured on; 3s5z_vs_3s7z at T=64 because the
# straightforward form at its full 171 steps needs > 20 GB for 128 episodes
GIP_SHAPES: dict[str, dict[str, int]] = {
    "5m_vs_6m": dict(n_agents=5, obs_dim=140, n_actions=11, state_dim=11 * 4 + 5 * 11, T=70),
    "3s5z_vs_3s7z": dict(n_agents=8, obs_dim=231, n_actions=15, state_dim=228, T=64),
}


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_cfg(map_name: str, variant: str, algo: Any = None) -> dict[str, Any]:
    """A run config of `algo` (default QMIX's schema) on the map, as composed configs hold it."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "algo": OmegaConf.structured(algo if algo is not None else ValueDecompositionConfig(name="qmix")),
            "env": OmegaConf.structured(SMACEnvConfig(name=map_name, episode_limit=LIMITS[map_name])),
            "variant": OmegaConf.structured(VariantConfig(name=variant, distill=DistillConfig())),
        }
    )
    return to_container(cfg)


def bench_map(map_name: str, repeats: int, episodes: int = 128) -> dict[str, float]:
    """Collection and learner-update speed on one map, batches of `episodes` episodes (the
    learner's batch size; smaller only to smoke-test the bench)."""
    out: dict[str, float] = {}
    env = SMAXEnv(SMACEnvConfig(name=map_name, episode_limit=LIMITS[map_name]), batch_size=8, seed=0)
    info = env.get_env_info()
    learners = {v: ValueDecompositionLearner(make_cfg(map_name, v), info.__dict__) for v in ("none", "gip")}
    plain = learners["none"]
    buffer = EpisodeReplayBuffer(2 * episodes, info)
    run_episodes(env, plain, info.n_actions, epsilon=1.0)  # compile the SMAX step first
    t = time.perf_counter()
    steps = 0
    while len(buffer) < episodes:
        batch = run_episodes(env, plain, info.n_actions, epsilon=1.0)
        buffer.insert(batch)
        steps += int(batch.length.sum())
    out["collect_env_steps_per_s"] = steps / (time.perf_counter() - t)
    out["mean_episode_length"] = steps / len(buffer)
    g = torch.Generator().manual_seed(0)
    real = buffer.sample(episodes, g)
    T = info.episode_limit
    full = {
        k: torch.zeros(episodes, T + 1 if v.shape[1] == real["mask"].shape[1] + 1 else T, *v.shape[2:], dtype=v.dtype)
        for k, v in real.items()
    }
    for k, v in real.items():
        full[k][:, : v.shape[1]] = v
    full["mask"][:] = 1.0
    full["avail_actions"][:] = True
    for variant, learner in learners.items():
        opt = torch.optim.Adam(list(learner.q_net.parameters()) + list(learner.mixer.parameters()), lr=1e-3)

        def update(batch: dict[str, torch.Tensor], learner=learner, opt=opt) -> None:
            loss, _ = learner.compute_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for name, batch in (("real", real), ("full", full)):
            sec = median_time(lambda b=batch: update(b), repeats)
            out[f"{'qmix' if variant == 'none' else 'qmix_gip'}_update_s_{name}"] = sec
    for name in ("real", "full"):
        out[f"gip_over_qmix_update_{name}"] = out[f"qmix_gip_update_s_{name}"] / out[f"qmix_update_s_{name}"]
    out["qmix_updates_per_s_real"] = 1.0 / out["qmix_update_s_real"]
    out["sampled_T_real"] = float(real["mask"].shape[1])
    env.close()
    return out


def bench_collection(map_name: str, batch_size: int, steps: int = 2000) -> dict[str, float]:
    """Real env steps per second of both collection paths with the same sampling MAPPO actor."""
    from ptde.learners.mappo import MAPPOLearner

    cfg = make_cfg(map_name, "none", MAPPOConfig(name="mappo"))
    env_cfg = SMACEnvConfig(name=map_name, episode_limit=LIMITS[map_name])
    out: dict[str, float] = {}
    episodes_env = SMAXEnv(env_cfg, batch_size=batch_size, seed=0)
    actor = MAPPOLearner(cfg, episodes_env.get_env_info().__dict__)
    n_actions = episodes_env.n_actions
    run_episodes(episodes_env, actor, n_actions, epsilon=1.0)  # compile first
    real = slots = 0
    t = time.perf_counter()
    while real < steps * batch_size:
        batch = run_episodes(episodes_env, actor, n_actions, epsilon=1.0)
        real += int(batch.length.sum())
        slots += batch.batch_size * batch.max_t
    out["episodes_env_steps_per_s"] = real / (time.perf_counter() - t)
    out["episodes_frozen_fraction"] = 1.0 - real / slots
    episodes_env.close()
    steps_env = SMAXEnv(env_cfg, batch_size=batch_size, seed=0, auto_reset=True)
    _, carry = collect_steps(steps_env, actor, n_actions, 5)  # compile first
    t = time.perf_counter()
    collect_steps(steps_env, actor, n_actions, steps, carry)
    out["steps_env_steps_per_s"] = steps * batch_size / (time.perf_counter() - t)
    out["steps_over_episodes"] = out["steps_env_steps_per_s"] / out["episodes_env_steps_per_s"]
    steps_env.close()
    return out


def bench_gip_ratio(
    n_agents: int, obs_dim: int, n_actions: int, state_dim: int, T: int, repeats: int, episodes: int = 128
) -> dict[str, float]:
    """Factored vs straightforward GIP embedding, forward + backward, `episodes` episodes of T steps."""
    torch.manual_seed(0)
    d = obs_dim + n_actions + n_agents
    module = GIPModule(d, state_dim, 64, 64, 0.01)
    x = torch.randn(episodes, T, n_agents, d)
    s = torch.randn(episodes, T, state_dim)

    def run(fn: Callable[[], torch.Tensor]) -> None:
        module.zero_grad()
        fn().square().mean().backward()

    fact = median_time(lambda: run(lambda: module.embedding(x, s)), repeats)
    ref = median_time(lambda: run(lambda: gip_embedding_reference(module, x, s)), max(1, repeats // 2))
    return {"factored_s": fact, "straightforward_s": ref, "ratio": ref / fact, "T": float(T)}


def _numbers(figures: Any) -> list[float]:
    """Every number in a (nested) section of figures; labels such as `length_source` are skipped."""
    if isinstance(figures, dict):
        return [x for v in figures.values() for x in _numbers(v)]
    if isinstance(figures, (int, float)) and not isinstance(figures, bool):
        return [float(figures)]
    return []


def measured_nothing(results: dict[str, Any], parts: list[str]) -> list[str]:
    """The problems of the asked `parts`' sections, each naming its part: an empty section (a map
    list that came out empty, as when the bench looked for the configs in the wrong folder), an
    entry without numbers or with a non-finite one, and the replay's `rss_map` not measured.
    Empty when every part measured something, which is all that may be written to the record."""
    problems = []
    for part in parts:
        for path in SECTIONS[part]:
            where = ".".join(path)
            section: Any = results
            for key in path:
                section = section.get(key) if isinstance(section, dict) else None
            if not isinstance(section, dict) or not section:
                problems.append(f"part '{part}' measured nothing: {where} names no map or scenario")
                continue
            for name, figures in section.items():
                numbers = _numbers(figures)
                if not numbers:
                    problems.append(f"part '{part}' measured nothing for {name}: {where}.{name} holds no numbers")
                elif not all(math.isfinite(x) for x in numbers):
                    problems.append(f"part '{part}': {where}.{name} holds a non-finite figure")
    replay = results.get("replay_memory")
    if "replay" in parts and isinstance(replay, dict) and replay.get("rss_map") and replay.get("maps"):
        rss_map = replay["rss_map"]
        if not _numbers(replay["maps"].get(rss_map, {}).get("measured")):
            problems.append(f"part 'replay' measured nothing for the resident size: {rss_map} is not among its maps")
    return problems


def main(argv: list[str] | None = None) -> None:
    """Run the asked parts and write their figures to `--out`, or exit non-zero naming the parts that
    measured nothing (see `measured_nothing`) without writing, so the record never holds a hollow section."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=["3m", "5m_vs_6m"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench/results.json")
    parser.add_argument("--batch-episodes", type=int, default=128, help="episodes per learner / GIP batch")
    parser.add_argument("--gip-maps", nargs="+", choices=list(GIP_SHAPES), default=list(GIP_SHAPES))
    parser.add_argument("--collect-batches", nargs="+", type=int, default=[8, 64], help="B of the collection bench")
    parser.add_argument("--collect-maps", nargs="+", default=["3m"])
    parser.add_argument("--collect-steps", type=int, default=400, help="steps per env of the step-based path")
    parser.add_argument("--grf", action="store_true", help="with the throughput part, also GRF env steps/s")
    parser.add_argument("--grf-steps", type=int, default=300)
    parser.add_argument("--grf-scenarios", nargs="+", default=None, help="GRF scenarios (default: all)")
    parser.add_argument("--grf-batches", nargs="+", type=int, default=[1, 2, 4], help="B of the GRF bench")
    parser.add_argument("--parts", nargs="+", choices=ALL_PARTS, default=PARTS)
    parser.add_argument("--gru-episodes", type=int, default=128, help="episodes of the gru part's update batch")
    parser.add_argument("--replay-runs", nargs="*", default=[], help="run folders whose episode lengths to use")
    parser.add_argument("--replay-capacity", type=int, default=5000, help="episodes (algo.buffer_size)")
    parser.add_argument("--replay-rss-map", default="3s5z_vs_3s7z", help="map whose filled buffer is measured")
    parser.add_argument("--replay-maps", nargs="+", default=None, help="SMAC maps of the replay part (default: all)")
    parser.add_argument("--checkpoint-map", default="3s5z_vs_3s7z", help="map of the checkpoint part")
    parser.add_argument("--speed-steps", type=int, default=200_000, help="env steps of each run of the speed part")
    parser.add_argument("--speed-base", default=None, help="commit the speed part compares with (default: before #29)")
    parser.add_argument("--speed-algos", nargs="+", default=["qmix", "qmix_gip"])
    parser.add_argument(
        "--speed-precisions", nargs="+", default=["32-true", "bf16-mixed"], help="this code's runs, one per precision"
    )
    args = parser.parse_args(argv)
    parts = list(dict.fromkeys(args.parts + (["grf"] if args.grf and "throughput" in args.parts else [])))
    # names that would measure nothing fail here, before minutes of the other parts
    if "replay" in parts and args.replay_maps and args.replay_rss_map not in ("", *args.replay_maps):
        parser.error(f"--replay-rss-map {args.replay_rss_map} is not among --replay-maps (pass '' to skip it)")
    if "grf" in parts:
        from ptde.envs.football import SCENARIOS

        unknown = sorted(set(args.grf_scenarios or []) - set(SCENARIOS))
        if unknown:
            parser.error(f"unknown GRF scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    results: dict[str, Any] = {
        "machine": {
            "cpus": torch.get_num_threads(),
            "cpu": cpu_description(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
    }
    if "replay" in parts:
        from ptde.tools.bench_replay import bench_replay_memory

        results["replay_memory"] = bench_replay_memory(
            args.replay_capacity, args.replay_runs, args.replay_rss_map, args.replay_maps
        )
    use_fused_kernel(TrainerConfig().fused_gru)  # the learners' updates as a run computes them
    if "throughput" in parts:
        results["maps"] = {}
        for m in args.maps:
            results["maps"][m] = bench_map(m, args.repeats, args.batch_episodes)
            print(m, json.dumps(results["maps"][m], indent=1))
    if "collection" in parts:
        results["collection"] = {}
        for m in args.collect_maps:
            results["collection"][m] = {
                f"B={b}": bench_collection(m, b, args.collect_steps) for b in args.collect_batches
            }
            print(m, "collection", json.dumps(results["collection"][m], indent=1))
    if "throughput" in parts:
        results["gip_ratio"] = {}
        for name in args.gip_maps:
            results["gip_ratio"][name] = bench_gip_ratio(
                **GIP_SHAPES[name], repeats=args.repeats, episodes=args.batch_episodes
            )
            print(name, results["gip_ratio"][name])
    if "grf" in parts:
        from ptde.envs.football import SCENARIOS, benchmark_football

        scenarios = args.grf_scenarios or list(SCENARIOS)
        results["grf_env_steps_per_s"] = {
            name: {f"B={b}": benchmark_football(name, b, args.grf_steps) for b in args.grf_batches}
            for name in scenarios
        }
        print(json.dumps(results["grf_env_steps_per_s"], indent=1))
    if "gru" in parts:
        from ptde.tools.bench_gru import bench_ragged_gru

        results["ragged_gru"] = {"3s_vs_5z": bench_ragged_gru(args.gru_episodes, args.repeats * 4)}
        print(json.dumps(results["ragged_gru"], indent=1))
    if "checkpoint" in parts:
        from ptde.tools.bench_checkpoint import bench_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            results["checkpoint"] = {args.checkpoint_map: bench_checkpoint(args.checkpoint_map, folder=Path(tmp))}
        print(json.dumps(results["checkpoint"], indent=1))
    if "speed" in parts:
        from ptde.tools.bench_speed import BASE, bench_speed

        measured = bench_speed(
            args.speed_steps,
            args.speed_base or BASE,
            algos=tuple(args.speed_algos),
            precisions=tuple(args.speed_precisions),
        )
        results["speed"] = measured
        print(json.dumps(measured, indent=1))
    problems = measured_nothing(results, parts)
    if problems:
        sys.exit(f"bench: {args.out} not written; " + "; ".join(problems))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the record keeps the sections of parts not run this time (a `--parts speed` run adds to it)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    if "speed" in results:  # the algos not measured this time keep their cells
        results["speed"] = merge_speed(previous.get("speed"), results["speed"])
    write_json_atomic(out, previous | results)  # strict JSON: an undefined figure is null
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
