"""`python -m ptde.tools.bench [--grf]` (`make bench`): throughput and replay memory -> bench/results.json.

Measures, per SMAX map: env steps per second of collection alone (B = 8 parallel episodes, the
policy's forward included, ε = 1); collection of both paths with MAPPO's sampling actor at
B = 8 and 64 (`collection`: real env steps per second of whole-episode collection, where
finished envs freeze until the longest episode ends, and of step-based collection on auto-reset
envs, plus the episode path's share of frozen env slots); learner updates per second (batch 128 episodes of real
rollouts, cut to the longest sampled, and of full-length padded episodes) for QMIX and GIP-QMIX,
and the GIP hypernetwork ratio straightforward ÷ factored (forward + backward).
Timings are medians of repeated runs; nothing here is asserted by the test suite.
`--parts replay`: the replay's memory per SMAC map, ragged against padded (see ptde.tools.bench_replay).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ptde.config import DistillConfig, MAPPOConfig, ValueDecompositionConfig, VariantConfig
from ptde.config.resolved import to_container
from ptde.data.buffer import EpisodeReplayBuffer
from ptde.envs.smac import SMACEnvConfig
from ptde.envs.smax import SMAXEnv
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.nn.global_info import GIPModule, gip_embedding_reference
from ptde.rollout import run_episodes
from ptde.rollout.steps import collect_steps

LIMITS = {"3m": 60, "5m_vs_6m": 70, "3s_vs_5z": 250, "3s5z_vs_3s7z": 170}
PARTS = ["throughput", "collection", "replay"]  # what `--parts` may name; all by default


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


def bench_map(map_name: str, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    env = SMAXEnv(SMACEnvConfig(name=map_name, episode_limit=LIMITS[map_name]), batch_size=8, seed=0)
    info = env.get_env_info()
    learners = {v: ValueDecompositionLearner(make_cfg(map_name, v), info.__dict__) for v in ("none", "gip")}
    plain = learners["none"]
    buffer = EpisodeReplayBuffer(256, info)
    run_episodes(env, plain, info.n_actions, epsilon=1.0)  # compile the SMAX step first
    t = time.perf_counter()
    steps = 0
    while len(buffer) < 128:
        batch = run_episodes(env, plain, info.n_actions, epsilon=1.0)
        buffer.insert(batch)
        steps += int(batch.length.sum())
    out["collect_env_steps_per_s"] = steps / (time.perf_counter() - t)
    out["mean_episode_length"] = steps / len(buffer)
    g = torch.Generator().manual_seed(0)
    real = buffer.sample(128, g)
    T = info.episode_limit
    full = {
        k: torch.zeros(128, T + 1 if v.shape[1] == real["mask"].shape[1] + 1 else T, *v.shape[2:], dtype=v.dtype)
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
    n_agents: int, obs_dim: int, n_actions: int, state_dim: int, T: int, repeats: int
) -> dict[str, float]:
    """Factored vs straightforward GIP embedding, forward + backward, 128 episodes of T steps."""
    torch.manual_seed(0)
    d = obs_dim + n_actions + n_agents
    module = GIPModule(d, state_dim, 64, 64, 0.01)
    x = torch.randn(128, T, n_agents, d)
    s = torch.randn(128, T, state_dim)

    def run(fn: Callable[[], torch.Tensor]) -> None:
        module.zero_grad()
        fn().square().mean().backward()

    fact = median_time(lambda: run(lambda: module.embedding(x, s)), repeats)
    ref = median_time(lambda: run(lambda: gip_embedding_reference(module, x, s)), max(1, repeats // 2))
    return {"factored_s": fact, "straightforward_s": ref, "ratio": ref / fact, "T": float(T)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=["3m", "5m_vs_6m"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench/results.json")
    parser.add_argument("--collect-batches", nargs="+", type=int, default=[8, 64], help="B of the collection bench")
    parser.add_argument("--collect-maps", nargs="+", default=["3m"])
    parser.add_argument("--collect-steps", type=int, default=400, help="steps per env of the step-based path")
    parser.add_argument("--grf", action="store_true", help="also GRF env steps/s for B = 1, 2, 4 (needs gfootball)")
    parser.add_argument("--grf-steps", type=int, default=300)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    parser.add_argument("--replay-runs", nargs="*", default=[], help="run folders whose episode lengths to use")
    parser.add_argument("--replay-capacity", type=int, default=5000, help="episodes (algo.buffer_size)")
    parser.add_argument("--replay-rss-map", default="3s5z_vs_3s7z", help="map whose filled buffer is measured")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__},
        "maps": {},
        "gip_ratio": {},
        "collection": {},
    }
    if "replay" in args.parts:
        from ptde.tools.bench_replay import bench_replay_memory

        results["replay_memory"] = bench_replay_memory(args.replay_capacity, args.replay_runs, args.replay_rss_map)
    if "throughput" not in args.parts:
        args.maps, args.grf = [], False
    if "collection" not in args.parts:
        args.collect_maps = []
    for m in args.maps:
        results["maps"][m] = bench_map(m, args.repeats)
        print(m, json.dumps(results["maps"][m], indent=1))
    for m in args.collect_maps:
        results["collection"][m] = {f"B={b}": bench_collection(m, b, args.collect_steps) for b in args.collect_batches}
        print(m, "collection", json.dumps(results["collection"][m], indent=1))
    # shapes of the two maps the issue names; 3s5z_vs_3s7z at T=64 because the straightforward
    # form at its full 171 steps needs > 20 GB for 128 episodes
    gip_shapes = {
        "5m_vs_6m": dict(n_agents=5, obs_dim=140, n_actions=11, state_dim=11 * 4 + 5 * 11, T=70),
        "3s5z_vs_3s7z": dict(n_agents=8, obs_dim=231, n_actions=15, state_dim=228, T=64),
    }
    for name, shape in gip_shapes.items() if "throughput" in args.parts else []:
        results["gip_ratio"][name] = bench_gip_ratio(**shape, repeats=args.repeats)
        print(name, results["gip_ratio"][name])
    if args.grf:
        from ptde.envs.football import SCENARIOS, benchmark_football

        results["grf_env_steps_per_s"] = {
            name: {f"B={b}": benchmark_football(name, b, args.grf_steps) for b in (1, 2, 4)} for name in SCENARIOS
        }
        print(json.dumps(results["grf_env_steps_per_s"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
