"""Does the replay buffer fit? Checked at start-up, so a run that would not fit fails in its first
second naming the knobs that shrink it, instead of being killed by the kernel's OOM killer once
the buffer has filled up, half an hour in."""

from __future__ import annotations

from pathlib import Path

from ptde.data.buffer import BUFFER_DTYPES, replay_bound_bytes
from ptde.data.replay_store import FILE_BYTES
from ptde.envs.base import EnvInfo

GIB = 1024**3


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_room() -> tuple[int, str] | None:
    """Limit minus usage of this process's memory cgroup (a container, a Slurm job), v2 or v1."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            limit, usage = _read_int(base / "memory.max"), _read_int(base / "memory.current")
        elif "memory" in controllers.split(","):  # cgroup v1
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            limit, usage = _read_int(base / "memory.limit_in_bytes"), _read_int(base / "memory.usage_in_bytes")
        else:
            continue
        if limit is not None and usage is not None and limit < 2**60:  # v1 writes "no limit" as ~2^63
            return limit - usage, f"cgroup limit {limit / GIB:.1f} GiB minus {usage / GIB:.1f} GiB in use"
    return None


def available_memory() -> tuple[int, str]:
    """Bytes this process can still allocate and where the figure comes from: MemAvailable of
    /proc/meminfo, or less where the process's cgroup has a lower limit."""
    avail, source = None, "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail, source = int(line.split()[1]) * 1024, "MemAvailable of /proc/meminfo"
    except OSError:
        pass
    room = _cgroup_room()
    if room is not None and (avail is None or room[0] < avail):
        avail, source = room
    return (avail if avail is not None else 2**63), source


def replay_need_bytes(algo: dict, info: EnvInfo, save_buffer: bool) -> int:
    """Upper bound of the memory the replay of an off-policy run takes: its worst case (every
    episode at the episode limit), plus with trainer.save_buffer=true one file of the replay store,
    the most of it a checkpoint (or a restore) holds besides the buffer."""
    bound = replay_bound_bytes(algo["buffer_size"], info, BUFFER_DTYPES[str(algo["buffer_dtype"])])
    return bound + (min(FILE_BYTES, bound) if save_buffer else 0)


def replay_fit_error(algo: dict, info: EnvInfo, save_buffer: bool) -> str | None:
    """Why the replay cannot fit into the available memory, or None when it fits."""
    need = replay_need_bytes(algo, info, save_buffer)
    avail, source = available_memory()
    if need <= avail:
        return None
    per_episode = need / algo["buffer_size"]
    fits = max(int(avail // per_episode), 0)
    copy = ", plus one file of the replay store of trainer.save_buffer=true" if save_buffer else ""
    dtype = str(algo["buffer_dtype"])
    hint = " or algo.buffer_dtype=float16 (halves obs and state)" if dtype == "float32" else ""
    return (
        f"the replay buffer needs up to {need / GIB:.2f} GiB (algo.buffer_size={algo['buffer_size']} episodes of up "
        f"to {info.episode_limit} steps, algo.buffer_dtype={dtype}{copy}) but only {avail / GIB:.2f} GiB of memory "
        f"is available ({source}); shrink it with algo.buffer_size (at most {fits} fits){hint}"
    )
