"""The replay buffer kept beside the checkpoints, incrementally, so a resumed off-policy run
continues on the replay the killed one had (`trainer.save_buffer=true`, the default).

Putting the whole buffer into every checkpoint (up to a few GB) rewrites episodes that were already
saved; here each episode is written once. Files in `<run>/checkpoints/replay/`:

- `episodes_<first>_<end>.pt`: the episodes with ids [first, end) (`EpisodeReplayBuffer.live_ids`)
  as stored, with the rows they occupy. Written once, never changed; a checkpoint writes the
  episodes inserted since the previous one, in files of at most `file_bytes`.
- `index_<env steps>.pt`: one per checkpoint (a generation): the episode files that hold its live
  episodes and the buffer's `layout` (counters, free stack), so a restore rebuilds exactly the
  buffer of that checkpoint. Its name goes into the `.ckpt` (`ptde_replay`).

Crash safety: episode files, then the index (each written whole, `atomic_write`), then the `.ckpt`
files, then `prune`. A kill anywhere leaves the previous `.ckpt` pointing at an index whose
episode files are all on disk: nothing the previous generations need is deleted before the new
checkpoint is in place. `prune` keeps the newest `KEEP_GENERATIONS` generations (the newest
checkpoint and the one before it) and deletes episode files no kept generation needs: an
older checkpoint's replay is gone once its oldest episodes have been evicted from the buffer, and
resuming from it is refused with that reason (`unrestorable`), never silently refilled.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ptde.data.buffer import EpisodeReplayBuffer, step_bytes
from ptde.errors import ConfigError
from ptde.files import atomic_write

FOLDER = "replay"  # inside the run's checkpoints/ folder
FILE_BYTES = 64 * 1024**2  # most bytes of episode rows in one file: what a save or a restore holds at once
KEEP_GENERATIONS = 2  # the replay of the newest checkpoint and of the one before it
_INDEX = re.compile(r"index_(\d+)\.pt")


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


class ReplayStore:
    """The incremental episode store of one run folder's checkpoints (see the module docstring)."""

    def __init__(self, folder: Path, file_bytes: int = FILE_BYTES) -> None:
        self.folder = folder
        self.file_bytes = file_bytes
        self.files: list[tuple[str, int, int]] = []  # (name, first id, end id) of the current generation's files
        self.saved_up_to = 0  # episodes with smaller ids are on disk (or were evicted before a save)
        self.generation: str | None = None  # the current index file

    # ------------------------------------------------------------------ writing
    def write(self, buffer: EpisodeReplayBuffer, tag: int) -> dict[str, Any]:
        """Save `buffer` as generation `index_<tag>.pt`: the episodes not yet on disk, then the index.
        Returns what the `.ckpt` records (`ptde_replay`) so its restore finds this generation."""
        live = buffer.live_ids()
        name = f"index_{tag}.pt"
        record = {"index": name, "episodes_inserted": buffer.episodes_inserted}
        if name == self.generation and self.saved_up_to == live.stop:
            return record  # the same state saved again (a preemption save right after a periodic one)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files = [f for f in self.files if f[2] > live.start]  # files still holding a live episode
        for ids in self._file_ranges(buffer, range(max(self.saved_up_to, live.start), live.stop)):
            file = f"episodes_{ids.start}_{ids.stop}.pt"
            with atomic_write(self.folder / file) as tmp:
                torch.save(buffer.export_episodes(ids), tmp)
            self.files.append((file, ids.start, ids.stop))
        with atomic_write(self.folder / name) as tmp:
            torch.save({"files": [list(f) for f in self.files], "layout": buffer.layout()}, tmp)
        self.saved_up_to, self.generation = live.stop, name
        return record

    def _file_ranges(self, buffer: EpisodeReplayBuffer, ids: range) -> list[range]:
        """`ids` cut into consecutive ranges of at most `file_bytes` of rows each (at least one episode)."""
        row_bytes = step_bytes(buffer.info, buffer.dtype) + 4  # the fields' values and the row number
        out, start, size = [], ids.start, 0
        for e, L in zip(ids, buffer.length[torch.arange(ids.start, ids.stop) % buffer.capacity].tolist(), strict=True):
            episode = (L + 1) * row_bytes
            if size and size + episode > self.file_bytes:
                out.append(range(start, e))
                start, size = e, 0
            size += episode
        if start < ids.stop:
            out.append(range(start, ids.stop))
        return out

    def prune(self) -> None:
        """Delete what the kept generations do not need: older (and, after a resume, newer) index files,
        episode files no kept index lists, and temporary files a kill left. Call it once the `.ckpt`
        files of the current generation are in place."""
        if not self.folder.is_dir():
            return
        indexes = {int(m.group(1)): p for p in self.folder.iterdir() if (m := _INDEX.fullmatch(p.name))}
        current = int(_INDEX.fullmatch(self.generation).group(1)) if self.generation else -1
        kept = sorted(t for t in indexes if t <= current)[-KEEP_GENERATIONS:]
        needed = {self.generation}
        for tag in kept:
            needed.add(indexes[tag].name)
            if indexes[tag].name != self.generation:
                needed.update(f[0] for f in _load(indexes[tag])["files"])
        needed.update(f[0] for f in self.files)
        for p in self.folder.iterdir():
            if p.name not in needed:
                p.unlink()

    # ------------------------------------------------------------------ reading
    def unrestorable(self, record: dict[str, Any]) -> str | None:
        """Why the generation a `.ckpt` records cannot be restored, or None when it can."""
        index = self.folder / record["index"]
        if not index.is_file():
            return (
                f"{index} is gone (the store keeps the replay of the newest {KEEP_GENERATIONS} checkpoints "
                "only: an older one's episodes are mostly evicted from the buffer and deleted)"
            )
        saved = _load(index)
        if saved["layout"]["episodes_inserted"] != record["episodes_inserted"]:
            return f"{index} belongs to another run of this folder (its episode count differs from the checkpoint's)"
        missing = [f[0] for f in saved["files"] if not (self.folder / f[0]).is_file()]
        return f"episode files {', '.join(missing)} of {index} are gone" if missing else None

    def restore(self, buffer: EpisodeReplayBuffer, record: dict[str, Any]) -> None:
        """Rebuild in `buffer` (as built, empty) the buffer of the generation a `.ckpt` records, one
        episode file in memory at a time; later writes continue this generation."""
        if (why := self.unrestorable(record)) is not None:
            raise ConfigError(f"cannot restore the replay buffer: {why}")
        saved = _load(self.folder / record["index"])
        layout = saved["layout"]
        live = range(layout["episodes_inserted"] - layout["size"], layout["episodes_inserted"])
        for name, first, end in saved["files"]:
            ids = range(max(first, live.start), min(end, live.stop))
            if len(ids):
                buffer.import_episodes(_load(self.folder / name), ids)
        buffer.load_layout(layout)
        self.files = [tuple(f) for f in saved["files"]]
        self.saved_up_to, self.generation = live.stop, record["index"]


def store_folder(run_dir: Path) -> Path:
    """Where a run folder's replay store is."""
    return run_dir / "checkpoints" / FOLDER
