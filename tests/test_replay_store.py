"""The incremental replay store (`ptde.data.replay_store`): a checkpoint writes only the episodes
inserted since the previous one; a restore rebuilds exactly the buffer of its checkpoint (layout
and logged size included); a kill during a write leaves the previous generation whole; an older
generation whose files are gone is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ptde.data.replay_store as replay_store
from ptde.data.buffer import EpisodeReplayBuffer
from ptde.data.replay_store import ReplayStore
from ptde.envs.base import EnvInfo
from ptde.errors import ConfigError
from ptde.tools.bench_replay import synthetic_episodes

INFO = EnvInfo(n_agents=2, obs_dim=3, state_dim=4, n_actions=5, episode_limit=6)


def fill(buf: EpisodeReplayBuffer, batches: int, g: torch.Generator, B: int = 3) -> None:
    """`batches` inserts of B episodes of random lengths (so evicted rows are reused unevenly)."""
    for _ in range(batches):
        buf.insert(synthetic_episodes(INFO, torch.randint(1, INFO.episode_limit + 1, (B,), generator=g)))


def assert_same_buffer(a: EpisodeReplayBuffer, b: EpisodeReplayBuffer) -> None:
    """Same episodes in the same slots and rows, same free stack and counters, same samples."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        if isinstance(v, dict):
            assert all(torch.equal(v[n], sb[k][n]) for n in v), k
        elif isinstance(v, torch.Tensor):
            assert torch.equal(v, sb[k]), k
        else:
            assert v == sb[k], k
    assert a.nbytes == b.nbytes and a.memory_metrics() == b.memory_metrics()
    x, y = a.sample(4, torch.Generator().manual_seed(1)), b.sample(4, torch.Generator().manual_seed(1))
    assert all(torch.equal(x[f], y[f]) for f in x)


def files(folder: Path, kind: str = "episodes") -> list[tuple[int, ...]]:
    return sorted(tuple(int(x) for x in p.stem.split("_")[1:]) for p in folder.glob(f"{kind}_*.pt"))


def restored(folder: Path, record: dict, capacity: int = 12) -> EpisodeReplayBuffer:
    buf = EpisodeReplayBuffer(capacity, INFO)
    ReplayStore(folder).restore(buf, record)
    return buf


def test_a_checkpoint_writes_only_the_episodes_inserted_since_the_previous_one(tmp_path):
    buf, g, store = EpisodeReplayBuffer(12, INFO), torch.Generator().manual_seed(0), ReplayStore(tmp_path)
    store.write(buf, 0)  # an empty buffer: an index and no episodes
    assert files(tmp_path) == [] and files(tmp_path, "index") == [(0,)]
    previous_end, previous_live = 0, range(0)
    for tag in range(1, 6):
        fill(buf, 2, g)  # 6 new episodes per checkpoint, a buffer of 12: evictions from the third on
        before = set(files(tmp_path))
        store.write(buf, tag)
        store.prune()
        new = sorted(set(files(tmp_path)) - before)
        assert new == [(previous_end, buf.episodes_inserted)]  # only what was inserted since
        # the files the newest two generations need, no more: a file goes once its episodes are
        # evicted from both
        assert files(tmp_path, "index") == [(tag - 1,), (tag,)]
        assert all(end > min(previous_live.start, buf.live_ids().start) for _, end in files(tmp_path))
        assert files(tmp_path)[0][0] <= (previous_live.start if tag > 1 else 0)
        previous_end, previous_live = buf.episodes_inserted, buf.live_ids()


def test_every_kept_generation_restores_exactly_its_buffer_and_goes_on_the_same_way(tmp_path):
    buf, g = EpisodeReplayBuffer(12, INFO), torch.Generator().manual_seed(1)
    store = ReplayStore(tmp_path, file_bytes=400)  # a few episodes per file: several files per checkpoint
    snapshots = []
    for tag in range(1, 5):
        fill(buf, 3, g)
        record = store.write(buf, tag)
        store.prune()
        snapshot = EpisodeReplayBuffer(12, INFO)
        snapshot.load_state_dict(buf.state_dict())
        snapshots.append((record, snapshot))
    assert len(files(tmp_path)) > 2 * 4
    for record, snapshot in snapshots[-2:]:  # the newest checkpoint and the one before it
        assert_same_buffer(restored(tmp_path, record), snapshot)
    again = restored(tmp_path, snapshots[-1][0])
    for b in (again, buf):  # the same episodes into both (synthetic values come from the global RNG)
        torch.manual_seed(9)
        fill(b, 4, torch.Generator().manual_seed(9))
    assert_same_buffer(again, buf)  # where future episodes go (free stack, high water) came back too


def test_more_episodes_than_the_capacity_between_checkpoints_writes_only_the_live_ones(tmp_path):
    buf, g, store = EpisodeReplayBuffer(12, INFO), torch.Generator().manual_seed(2), ReplayStore(tmp_path)
    fill(buf, 2, g)
    store.write(buf, 1)
    fill(buf, 7, g)  # 21 episodes: the 6 saved and 9 more were evicted before the next checkpoint
    record = store.write(buf, 2)
    store.prune()
    # the new file holds the live episodes only; the previous checkpoint's file stays for its generation
    assert files(tmp_path) == [(0, 6), (buf.live_ids().start, buf.episodes_inserted)]
    assert_same_buffer(restored(tmp_path, record), buf)


@pytest.mark.parametrize("where", ["episode file", "index"])
def test_a_kill_during_a_write_leaves_the_previous_generation_whole(tmp_path, monkeypatch, where):
    buf, g, store = EpisodeReplayBuffer(12, INFO), torch.Generator().manual_seed(3), ReplayStore(tmp_path)
    fill(buf, 3, g)
    first = store.write(buf, 1)
    store.prune()
    at_first = EpisodeReplayBuffer(12, INFO)
    at_first.load_state_dict(buf.state_dict())
    fill(buf, 3, g)

    real_save = torch.save

    def killed(obj, f, *args, **kwargs):
        if ("layout" in obj) == (where == "index"):
            Path(f).write_bytes(b"half a file")  # what the kill leaves: the temporary file, cut short
            raise KeyboardInterrupt("killed")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(replay_store.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write(buf, 2)
    monkeypatch.setattr(replay_store.torch, "save", real_save)
    assert list(tmp_path.glob("*.tmp")) and not (tmp_path / "index_2.pt").exists()

    # the resumed process: the previous checkpoint's generation, exactly; then the same writes again
    again, resumed = EpisodeReplayBuffer(12, INFO), ReplayStore(tmp_path)
    resumed.restore(again, first)
    resumed.prune()
    assert_same_buffer(again, at_first)
    assert not list(tmp_path.glob("*.tmp")) and files(tmp_path, "index") == [(1,)]
    fill(again, 3, torch.Generator().manual_seed(4))
    second = resumed.write(again, 2)
    assert files(tmp_path)[-1] == (first["episodes_inserted"], again.episodes_inserted)
    assert_same_buffer(restored(tmp_path, second), again)


def test_an_older_generation_is_refused_with_the_reason(tmp_path):
    buf, g, store = EpisodeReplayBuffer(12, INFO), torch.Generator().manual_seed(5), ReplayStore(tmp_path)
    records = []
    for tag in range(1, 4):
        fill(buf, 2, g)
        records.append(store.write(buf, tag))
        store.prune()
    assert "index_1.pt is gone" in ReplayStore(tmp_path).unrestorable(records[0])
    with pytest.raises(ConfigError, match="cannot restore the replay buffer"):
        restored(tmp_path, records[0])
    assert ReplayStore(tmp_path).unrestorable(records[1]) is None
    other = {**records[2], "episodes_inserted": 5}  # a checkpoint of another run in this folder
    assert "another run" in ReplayStore(tmp_path).unrestorable(other)


def test_the_checkpoint_bench_compares_the_store_with_the_whole_buffer(tmp_path):
    """`ptde.tools.bench_checkpoint` on a tiny replay: numbers only, and a checkpoint after fewer new
    episodes than the capacity writes less than the whole buffer."""
    pytest.importorskip("jaxmarl")
    from ptde.tools.bench_checkpoint import bench_checkpoint

    figures = bench_checkpoint("3m", capacity=40, checkpoint_interval=460, mean_length=23.0, folder=tmp_path)
    assert all(isinstance(v, float) for v in figures.values())
    assert figures["new_episodes_per_checkpoint"] == 20 and figures["capacity"] == 40
    assert 0 < figures["store_bytes_per_checkpoint"] < figures["whole_buffer_bytes"]
    assert figures["store_over_whole_bytes"] < 0.8 and figures["store_seconds_per_checkpoint"] > 0
    assert list(tmp_path.iterdir()) == []  # its files are gone
