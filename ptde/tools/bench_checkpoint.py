"""What keeping the replay costs a checkpoint: the incremental replay store against the whole buffer
(part of `make bench`).

A replay at capacity on one SMAC map (3s5z_vs_3s7z, 5000 episodes by default), filled with
synthesized episodes: the map's real shapes (from its env), random obs and state, lengths drawn
uniformly around a typical mean (46 steps: QMIX on 3s5z_vs_3s7z over the last 20k steps of a
100k-step run, as `ptde.tools.bench --parts replay --replay-runs` measured it). Then, as in
training, one periodic checkpoint after a checkpoint interval's worth of new episodes (env steps /
mean length, inserted 8 at a time as `batch_size_run` does):
- the store (`ptde.data.replay_store`, `trainer.save_buffer=true`): bytes and seconds of the
  checkpoint's write (its new episode files and index, then the prune), what the store holds on
  disk after it, and the seconds to restore the buffer from it;
- the whole buffer (`EpisodeReplayBuffer.state_dict` through `torch.save`, what a checkpoint held
  when the replay was saved inside it): bytes and seconds of one write and of its load. The
  periodic checkpoint of that scheme wrote it twice (`env_steps_<n>.ckpt` and `last.ckpt`) and kept
  a copy in every periodic file; `whole_buffer_*` is one write.
Times include the gather from the buffer and the writes into the page cache (no fsync, as in
training). `python -m ptde.tools.bench_checkpoint` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import torch

from ptde.data.buffer import BUFFER_DTYPES, EpisodeReplayBuffer
from ptde.data.replay_store import ReplayStore
from ptde.envs.base import EnvInfo

TYPICAL_LENGTH = 46.0  # 3s5z_vs_3s7z, QMIX, last 20k of 100k env steps (README, the replay's memory)


def map_info(map_name: str) -> EnvInfo:
    """The map's shapes from its env (built and closed; SMAX compiles nothing before a step)."""
    from ptde.envs.smac import SMACEnvConfig
    from ptde.envs.smax import SMAXEnv
    from ptde.tools.bench_replay import smac_maps

    env = SMAXEnv(SMACEnvConfig(name=map_name, episode_limit=smac_maps()[map_name]), batch_size=1, seed=0)
    try:
        return env.get_env_info()
    finally:
        env.close()


def insert_synthetic(buffer: EpisodeReplayBuffer, episodes: int, mean_length: float, g: torch.Generator) -> None:
    """`episodes` synthesized episodes, 8 per insert, lengths uniform in [mean/2, 3 mean/2]."""
    from ptde.tools.bench_replay import synthetic_episodes

    lo, hi = max(1, round(mean_length / 2)), min(buffer.episode_limit, round(3 * mean_length / 2))
    for start in range(0, episodes, 8):
        lengths = torch.randint(lo, hi + 1, (min(8, episodes - start),), generator=g)  # [B]
        buffer.insert(synthetic_episodes(buffer.info, lengths))


def _folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def bench_checkpoint(
    map_name: str = "3s5z_vs_3s7z",
    capacity: int = 5000,
    checkpoint_interval: int = 200_000,
    mean_length: float = TYPICAL_LENGTH,
    dtype: str = "float32",
    folder: Path | None = None,
) -> dict[str, float]:
    """Bytes and seconds per periodic checkpoint of the replay, incremental store against the whole
    buffer (see the module docstring); numbers only. `folder`: where the files go (a temporary
    folder, removed after, by default)."""
    torch.manual_seed(0)  # synthetic_episodes draws obs and state from the global RNG
    g = torch.Generator().manual_seed(0)
    info = map_info(map_name)
    new_episodes = round(checkpoint_interval / mean_length)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        root = Path(tmp)
        buffer = EpisodeReplayBuffer(capacity, info, BUFFER_DTYPES[dtype])
        insert_synthetic(buffer, capacity + capacity // 5, mean_length, g)  # at capacity, rows reused
        store = ReplayStore(root / "replay")
        store.write(buffer, 1)  # the previous periodic checkpoint
        store.prune()
        insert_synthetic(buffer, new_episodes, mean_length, g)
        before = _folder_bytes(store.folder)
        t0 = time.perf_counter()
        record = store.write(buffer, 2)
        store.prune()
        store_seconds = time.perf_counter() - t0
        after = _folder_bytes(store.folder)
        written = {name: size for name, size in after.items() if name not in before}

        t0 = time.perf_counter()
        torch.save(buffer.state_dict(), root / "whole.pt")
        whole_seconds = time.perf_counter() - t0
        whole_bytes = (root / "whole.pt").stat().st_size
        out = {
            "n_agents": float(info.n_agents),
            "obs_dim": float(info.obs_dim),
            "state_dim": float(info.state_dim),
            "episode_limit": float(info.episode_limit),
            "capacity": float(capacity),
            "mean_stored_length": buffer.steps_stored / len(buffer),
            "checkpoint_interval_env_steps": float(checkpoint_interval),
            "new_episodes_per_checkpoint": float(new_episodes),
            "buffer_nbytes": float(buffer.nbytes),
            "store_bytes_per_checkpoint": float(sum(written.values())),
            "store_index_bytes": float(written.get(record["index"], 0)),
            "store_files_per_checkpoint": float(len(written)),
            "store_seconds_per_checkpoint": store_seconds,
            "store_disk_bytes": float(sum(after.values())),
            "whole_buffer_bytes": float(whole_bytes),
            "whole_buffer_seconds": whole_seconds,
        }
        out["store_over_whole_bytes"] = out["store_bytes_per_checkpoint"] / whole_bytes
        del buffer
        gc.collect()

        restored = EpisodeReplayBuffer(capacity, info, BUFFER_DTYPES[dtype])
        t0 = time.perf_counter()
        ReplayStore(root / "replay").restore(restored, record)
        out["store_restore_seconds"] = time.perf_counter() - t0
        del restored
        gc.collect()
        restored = EpisodeReplayBuffer(capacity, info, BUFFER_DTYPES[dtype])
        t0 = time.perf_counter()
        restored.load_state_dict(torch.load(root / "whole.pt", weights_only=True))
        out["whole_buffer_load_seconds"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--map", default="3s5z_vs_3s7z")
    p.add_argument("--capacity", type=int, default=5000)
    p.add_argument("--checkpoint-interval", type=int, default=200_000)
    p.add_argument("--mean-length", type=float, default=TYPICAL_LENGTH)
    p.add_argument("--dtype", default="float32", choices=sorted(BUFFER_DTYPES))
    a = p.parse_args(argv)
    figures = bench_checkpoint(a.map, a.capacity, a.checkpoint_interval, a.mean_length, a.dtype)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
