"""FIFO replay over whole episodes, as PyMARL's ReplayBuffer: recurrent agents train on full
sequences, so the unit of storage and sampling is an episode.

PyMARL pads every stored episode to the episode limit; here only real steps are stored (ragged
storage), so the replay of a map whose episodes end well before the limit takes a fraction of
the memory. Sampling pads the sampled episodes to the longest of them, so the learner gets the
same batch as from a padded buffer.

Layout: one pool of step rows shared by all fields (`rows[name]` [max_rows, ...]); an episode of
L steps owns L + 1 rows (obs/state/avail have the final T+1 entry; actions/reward/terminated hold
0 in the last one), listed in `row_index[slot, :L+1]`. Row 0 is all zeros and never owned: every
padding position of `row_index` points at it, so a gather pads with zeros. An evicted episode's
rows go onto a free stack and are reused before new rows are taken past the high-water mark.
The pool is allocated once at its worst case (every episode at the limit) with `torch.empty`, so
memory pages are committed only as rows are first written: resident memory follows the real
episode lengths (at most the worst case, which is what the start-up check bounds), and no growth
ever copies the buffer.
"""

from __future__ import annotations

from typing import Any

import torch

from ptde.envs.base import EnvInfo
from ptde.rollout import EpisodeBatch

# per-step fields of an EpisodeBatch and whether they carry the extra final (T+1) entry
_FIELDS = {
    "obs": True,
    "state": True,
    "avail_actions": True,
    "actions": False,
    "reward": False,
    "terminated": False,
}
# algo.buffer_dtype -> storage type of obs and state
BUFFER_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def action_dtype(n_actions: int) -> torch.dtype:
    """The smallest integer type that holds every action index (upcast to int64 on sampling)."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if n_actions - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def _row_shapes(info: EnvInfo, dtype: torch.dtype) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Shape (without the row dim) and storage dtype of each field's rows."""
    n, A = info.n_agents, info.n_actions
    return {
        "obs": ((n, info.obs_dim), dtype),
        "state": ((info.state_dim,), dtype),
        "avail_actions": ((n, A), torch.bool),
        "actions": ((n,), action_dtype(A)),
        "reward": ((), torch.float32),
        "terminated": ((), torch.bool),
    }


def step_bytes(info: EnvInfo, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of one stored row (one step) over all fields."""
    total = 0
    for shape, dt in _row_shapes(info, dtype).values():
        total += torch.Size(shape).numel() * torch.empty((), dtype=dt).element_size()
    return total


def episode_bytes(info: EnvInfo, length: float, dtype: torch.dtype = torch.float32) -> float:
    """Bytes one stored episode of `length` steps takes: its L + 1 rows, its `row_index` line
    (T + 1 int32 entries, the one padded part) and its length."""
    return (length + 1) * step_bytes(info, dtype) + 4 * (info.episode_limit + 1) + 8


def replay_bound_bytes(capacity: int, info: EnvInfo, dtype: torch.dtype = torch.float32) -> int:
    """Most memory the buffer can commit: every stored episode at the episode limit, the zero row
    and a full free stack. The row pool is allocated at this size once and never grown or copied,
    so no moment of the run needs more."""
    max_rows = capacity * (info.episode_limit + 1) + 1
    return int(capacity * episode_bytes(info, info.episode_limit, dtype)) + step_bytes(info, dtype) + 4 * max_rows


def padded_episode_bytes(info: EnvInfo) -> int:
    """Bytes per episode of the padded float32 layout PyMARL (and this buffer before) used:
    obs/state/avail over T+1 steps, int64 actions and float reward/terminated/mask over T, all
    written (zero padding included), so all committed."""
    T, n, A = info.episode_limit, info.n_agents, info.n_actions
    return (T + 1) * (4 * n * info.obs_dim + 4 * info.state_dim + n * A) + T * (8 * n + 4 + 4 + 4)


class EpisodeReplayBuffer:
    """Ring of `capacity` episode slots; once full, the oldest episode is overwritten first.

    `dtype` is the storage type of obs and state (float32, float16 or bfloat16); sampled batches
    are always float32, with int64 actions, bool avail_actions and float reward/terminated/mask.
    """

    def __init__(self, capacity: int, info: EnvInfo, dtype: torch.dtype = torch.float32) -> None:
        self.capacity = capacity
        self.info = info
        self.dtype = dtype
        T = info.episode_limit
        self.episode_limit = T
        self.max_rows = capacity * (T + 1) + 1
        if self.max_rows > torch.iinfo(torch.int32).max:
            raise ValueError(f"buffer of {capacity} episodes of up to {T} steps has too many rows for int32 indices")
        # torch.empty: pages are committed only when a row is first written
        self.rows = {
            name: torch.empty(self.max_rows, *shape, dtype=dt) for name, (shape, dt) in _row_shapes(info, dtype).items()
        }
        for v in self.rows.values():
            v[0] = 0  # the zero row every padding position reads
        self.row_index = torch.empty(capacity, T + 1, dtype=torch.int32)  # [slot, t] -> row (0 past the episode)
        self.length = torch.zeros(capacity, dtype=torch.int64)  # [slot] real steps of the stored episode
        self.free = torch.empty(self.max_rows, dtype=torch.int32)  # stack of rows of evicted episodes
        self.n_free = 0
        self.max_free = 0  # deepest the free stack has been (its touched entries)
        self.high_water = 1  # rows [0, high_water) have been written at some point
        self.insert_index = 0  # next slot to write
        self.size = 0  # episodes stored
        self.episodes_inserted = 0
        self._half_max = torch.finfo(dtype).max if dtype == torch.float16 else None

    def __len__(self) -> int:
        return self.size

    def can_sample(self, batch_size: int) -> bool:
        return self.size >= batch_size

    @property
    def nbytes(self) -> int:
        """Bytes the buffer's layout occupies: rows up to the high-water mark, the written part of
        `row_index`, the touched part of the free stack and the lengths. This is the resident size
        (rows below the high-water mark stay committed when freed; they are reused first)."""
        rows = self.high_water * step_bytes(self.info, self.dtype)
        return rows + 4 * (self.size * (self.episode_limit + 1) + self.max_free) + 8 * self.capacity

    @property
    def steps_stored(self) -> int:
        return int(self.length[: self.size].sum())

    def memory_metrics(self) -> dict[str, float]:
        """What the training log reports of the replay: its resident size and its episodes' mean
        length (what the size follows)."""
        return {
            "train/replay_bytes": float(self.nbytes),
            "train/replay_episode_length": self.steps_stored / max(len(self), 1),
        }

    # ------------------------------------------------------------------ writing
    def _allocate(self, n: int) -> torch.Tensor:
        """`n` rows [n] int64: evicted rows first (in the order they were freed), then fresh ones."""
        k = min(n, self.n_free)
        reused = self.free[self.n_free - k : self.n_free].flip(0).long()
        self.n_free -= k
        fresh = torch.arange(self.high_water, self.high_water + n - k)
        self.high_water += n - k
        assert self.high_water <= self.max_rows, "more live rows than capacity x (limit + 1)"
        return torch.cat([reused, fresh])

    def _release(self, slot: int) -> None:
        rows = self.row_index[slot, : int(self.length[slot]) + 1]
        self.free[self.n_free : self.n_free + len(rows)] = rows.flip(0)
        self.n_free += len(rows)
        self.max_free = max(self.max_free, self.n_free)

    def _write(self, slots: list[int], lengths: torch.Tensor, steps: dict[str, torch.Tensor]) -> None:
        """Store episodes in `slots` (evicting what is there): `steps[name]` [Σ(L+1), ...] holds their
        rows one episode after the other, each L + 1 long."""
        for slot in slots:
            if slot < self.size:
                self._release(slot)
        self._place(slots, lengths, steps, self._allocate(int((lengths + 1).sum())))
        if len(slots):
            self.size = max(self.size, max(slots) + 1)

    def _place(
        self, slots: list[int], lengths: torch.Tensor, steps: dict[str, torch.Tensor], rows: torch.Tensor
    ) -> None:
        """Put episodes into `slots` at the given `rows` [Σ(L+1)] (no eviction, no allocation: a restore
        puts every episode back where it was)."""
        rows = rows.long()
        for name, values in steps.items():
            self.rows[name][rows] = values.to(self.rows[name].dtype)
        start = 0
        for slot, L in zip(slots, lengths.tolist(), strict=True):
            self.row_index[slot, : L + 1] = rows[start : start + L + 1].to(torch.int32)
            self.row_index[slot, L + 1 :] = 0
            self.length[slot] = L
            start += L + 1

    def insert(self, batch: EpisodeBatch) -> None:
        """Append B episodes, each with its real steps only (L + 1 rows of an L-step episode)."""
        B, T = batch.batch_size, batch.max_t
        if T > self.episode_limit:
            raise ValueError(f"episode of {T} steps exceeds the buffer's limit {self.episode_limit}")
        lengths = batch.mask.sum(1).long()  # [B]
        keep = torch.arange(T + 1) <= lengths[:, None]  # [B, T+1]: steps 0..L of each episode
        last = torch.arange(T + 1) == lengths[:, None]  # [B, T+1]: the final row, past the last action
        steps = {}
        for name, has_final in _FIELDS.items():
            src = getattr(batch, name)
            if not has_final:  # [B, T, ...] -> [B, T+1, ...] with 0 in the final row
                src = torch.cat([src, torch.zeros_like(src[:, :1])], 1)
                src = src.masked_fill(last.view(B, T + 1, *[1] * (src.dim() - 2)), 0)
            steps[name] = src[keep]  # [Σ(L+1), ...]
        if self._half_max is not None:
            for name in ("obs", "state"):
                peak = steps[name].abs().max().item() if steps[name].numel() else 0.0
                if peak > self._half_max:
                    raise ValueError(
                        f"{name} holds {peak:.4g}, past float16's range ({self._half_max:.0f}); "
                        "use algo.buffer_dtype=bfloat16 or float32"
                    )
        slots = [(self.insert_index + b) % self.capacity for b in range(B)]
        starts = torch.cat([torch.zeros(1, dtype=torch.long), (lengths + 1).cumsum(0)]).tolist()
        # at most `capacity` episodes per write, so no slot is written twice in one (the later one stays)
        for b0 in range(0, B, self.capacity):
            b1 = min(b0 + self.capacity, B)
            chunk = {k: v[starts[b0] : starts[b1]] for k, v in steps.items()}
            self._write(slots[b0:b1], lengths[b0:b1], chunk)
        self.insert_index = int((self.insert_index + B) % self.capacity)
        self.episodes_inserted += B

    # ------------------------------------------------------------------ reading
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Uniformly sample episodes without replacement, padded (with zeros, mask 0) to the longest
        sampled episode, so no time is spent on steps that are padding in every sampled episode."""
        if not self.can_sample(batch_size):
            raise ValueError(f"buffer holds {self.size} episodes, fewer than the batch size {batch_size}")
        idx = torch.randperm(self.size, generator=generator)[:batch_size]
        lengths = self.length[idx]  # [b]
        t_max = int(lengths.max().item())
        rows = self.row_index[idx, : t_max + 1].long()  # [b, t_max+1]
        out = {"mask": (torch.arange(t_max) < lengths[:, None]).float()}  # [b, t_max]
        for name, has_final in _FIELDS.items():
            v = self.rows[name][rows if has_final else rows[:, :t_max]]
            out[name] = v if name == "avail_actions" else v.to(torch.long if name == "actions" else torch.float32)
        return out

    # ------------------------------------------------------------------ episodes by id (the replay store)
    def live_ids(self) -> range:
        """Ids of the stored episodes, oldest first. Episodes are numbered in insertion order; FIFO
        keeps the newest `size` of them, episode `e` in slot `e % capacity`, so the stored ones are
        always one contiguous range and an episode's id says where it lives."""
        assert self.insert_index == self.episodes_inserted % self.capacity, "slots out of step with episode ids"
        return range(self.episodes_inserted - self.size, self.episodes_inserted)

    def export_episodes(self, ids: range) -> dict[str, Any]:
        """Stored episodes `ids` (a sub-range of `live_ids`) as stored: their lengths, the rows they
        occupy (kept so a restore rebuilds the same layout) and those rows of every field."""
        slots = torch.arange(ids.start, ids.stop) % self.capacity  # [n]
        lengths = self.length[slots]  # [n]
        keep = torch.arange(self.episode_limit + 1) <= lengths[:, None]  # [n, T+1]
        rows = self.row_index[slots][keep]  # [Σ(L+1)] int32, one episode after the other
        return {
            "first": ids.start,
            "length": lengths.clone(),
            "rows": rows,
            "steps": {name: v[rows.long()] for name, v in self.rows.items()},  # [Σ(L+1), ...]
        }

    def import_episodes(self, part: dict[str, Any], ids: range) -> None:
        """Put episodes `ids` of an `export_episodes` part back into their slots and rows (into a
        buffer being restored: nothing is evicted, the layout comes with `load_layout`)."""
        lengths = part["length"]  # [n]
        starts = torch.cat([torch.zeros(1, dtype=torch.long), (lengths + 1).cumsum(0)]).tolist()
        lo, hi = ids.start - part["first"], ids.stop - part["first"]  # positions within the part
        assert 0 <= lo <= hi <= len(lengths), f"episodes {ids} are not all in the part"
        r0, r1 = starts[lo], starts[hi]
        steps = {name: v[r0:r1] for name, v in part["steps"].items()}
        self._place([e % self.capacity for e in ids], lengths[lo:hi], steps, part["rows"][r0:r1])

    def layout(self) -> dict[str, Any]:
        """What besides the episodes a restore needs to be this buffer exactly: the counters, and the
        free stack and high-water mark, which decide where future episodes go and `nbytes` (logged)."""
        return {
            "episodes_inserted": self.episodes_inserted,
            "size": self.size,
            "insert_index": self.insert_index,
            "high_water": self.high_water,
            "max_free": self.max_free,
            "free": self.free[: self.n_free].clone(),  # [n_free] int32
        }

    def load_layout(self, layout: dict[str, Any]) -> None:
        """Set the `layout` of the buffer whose episodes `import_episodes` put back."""
        self.episodes_inserted, self.size = layout["episodes_inserted"], layout["size"]
        self.insert_index, self.high_water = layout["insert_index"], layout["high_water"]
        self.n_free, self.max_free = len(layout["free"]), layout["max_free"]
        self.free[: self.n_free] = layout["free"]

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The stored steps only (no padding), with the rows they occupy and the free stack, so a
        loaded buffer has the same layout and reports the same `nbytes` as this one."""
        n = self.size
        lengths = self.length[:n]
        live = self.row_index[:n][torch.arange(self.episode_limit + 1) <= lengths[:, None]].long()  # slot order
        return {
            "layout": "ragged",
            "dtype": str(self.dtype).removeprefix("torch."),
            "steps": {name: v[live] for name, v in self.rows.items()},
            "rows": live.to(torch.int32),
            "length": lengths.clone(),
            "free": self.free[: self.n_free].clone(),
            "max_free": self.max_free,
            "high_water": self.high_water,
            "insert_index": self.insert_index,
            "size": self.size,
            "episodes_inserted": self.episodes_inserted,
        }

    def load_state_dict(self, sd: dict) -> None:
        """Load a `state_dict` of this buffer, or of the padded buffer of earlier versions
        (`storage`: [size, T(+1), ...] arrays and a mask), whose padding is dropped here."""
        self.size = self.n_free = self.max_free = 0
        self.high_water = 1
        n = sd["size"]
        if "storage" in sd:  # the padded layout
            st = sd["storage"]
            lengths = st["mask"].sum(1).long()
            T1 = st["obs"].shape[1]
            keep = torch.arange(T1) <= lengths[:, None]
            last = torch.arange(T1) == lengths[:, None]
            steps = {}
            for name, has_final in _FIELDS.items():
                src = st[name] if has_final else torch.cat([st[name], torch.zeros_like(st[name][:, :1])], 1)
                if not has_final:
                    src = src.masked_fill(last.view(n, T1, *[1] * (src.dim() - 2)), 0)
                steps[name] = src[keep]
            self._write(list(range(n)), lengths, steps)
        else:
            self.high_water = sd["high_water"]
            self._place(list(range(n)), sd["length"], sd["steps"], sd["rows"])
            self.free[: len(sd["free"])] = sd["free"]
            self.n_free, self.max_free = len(sd["free"]), sd["max_free"]
        self.insert_index = sd["insert_index"]
        self.size = n
        self.episodes_inserted = sd["episodes_inserted"]
