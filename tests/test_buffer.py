"""EpisodeReplayBuffer: FIFO order, ragged storage padded on sampling, the padded buffer's batches
(tests/padded_buffer.py) on real SMAX episodes, half-precision storage, checkpoints, memory."""

import copy

import pytest
import torch
from conftest import compose_cfg
from padded_buffer import PaddedReplayBuffer

from ptde.data.buffer import (
    _FIELDS,
    EpisodeReplayBuffer,
    episode_bytes,
    padded_episode_bytes,
    replay_bound_bytes,
    step_bytes,
)
from ptde.envs.base import EnvInfo
from ptde.rollout import EpisodeBatch
from ptde.tools.bench_replay import synthetic_episodes

INFO = EnvInfo(n_agents=2, obs_dim=3, state_dim=4, n_actions=5, episode_limit=6)
FINAL = ("obs", "state", "avail_actions")  # fields with the extra T+1 entry


def stored_episode(buf: EpisodeReplayBuffer, slot: int) -> dict[str, torch.Tensor]:
    """The episode in `slot` as stored (L + 1 rows of obs/state/avail, L of the rest, storage dtypes)."""
    length = int(buf.length[slot])
    rows = buf.row_index[slot, : length + 1].long()
    return {name: buf.rows[name][rows if has_final else rows[:length]] for name, has_final in _FIELDS.items()}


def make_batch(ids: list[int], lengths: list[int]) -> EpisodeBatch:
    """Episodes whose every obs entry equals the episode id, so we can see which is stored where;
    past its end an episode holds 99 (what a finished env returns), as run_episodes' batches do."""
    B, T = len(ids), max(lengths)
    mask = torch.zeros(B, T)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    ident = torch.tensor(ids, dtype=torch.float32)
    after = torch.arange(T + 1) > torch.tensor(lengths)[:, None]  # [B, T+1]: past the final entry
    obs = ident.view(B, 1, 1, 1).expand(B, T + 1, 2, 3).clone()
    obs[after] = 99.0
    return EpisodeBatch(
        obs=obs,
        state=ident.view(B, 1, 1).expand(B, T + 1, 4).clone(),
        avail_actions=torch.ones(B, T + 1, 2, 5, dtype=torch.bool),
        actions=torch.full((B, T, 2), 4, dtype=torch.long),
        reward=mask.clone(),
        terminated=torch.zeros(B, T),
        mask=mask,
        won=torch.zeros(B, dtype=torch.bool),
        episode_return=mask.sum(1),
        length=mask.sum(1).long(),
    )


def stored_ids(buf: EpisodeReplayBuffer) -> list[float]:
    return [stored_episode(buf, s)["obs"][0, 0, 0].item() for s in range(len(buf))]


def test_fifo_overwrites_oldest_first():
    buf = EpisodeReplayBuffer(capacity=5, info=INFO)
    buf.insert(make_batch([0, 1, 2], [2, 3, 4]))
    buf.insert(make_batch([3, 4, 5], [1, 1, 1]))  # wraps: 5 overwrites slot 0 (episode 0)
    assert len(buf) == 5 and buf.insert_index == 1
    assert stored_ids(buf) == [5.0, 1.0, 2.0, 3.0, 4.0]
    buf.insert(make_batch([6], [2]))  # next oldest is episode 1 in slot 1
    assert stored_ids(buf) == [5.0, 6.0, 2.0, 3.0, 4.0]
    assert buf.episodes_inserted == 7


def test_only_real_steps_are_stored_and_evicted_rows_are_reused():
    buf = EpisodeReplayBuffer(capacity=3, info=INFO)
    buf.insert(make_batch([1, 2, 3], [2, 5, 1]))
    ep = stored_episode(buf, 1)
    assert ep["obs"].shape == (6, 2, 3) and ep["actions"].shape == (5, 2)  # L + 1 and L entries
    assert buf.steps_stored == 8 and buf.high_water == 1 + 3 + 6 + 2  # zero row + L + 1 rows each
    assert buf.memory_metrics() == {"train/replay_bytes": float(buf.nbytes), "train/replay_episode_length": 8 / 3}
    buf.insert(make_batch([4, 5], [3, 1]))  # evicts episodes 1 (3 rows) and 2 (6 rows)
    assert stored_ids(buf) == [4.0, 5.0, 3.0]
    assert buf.high_water == 12 and buf.n_free == 9 - 4 - 2  # fresh rows only once the freed ones are used
    buf.insert(make_batch([6, 7, 8], [6, 6, 6]))  # into slots 2, 0, 1; needs 21 rows, 3 + 8 are free
    assert stored_ids(buf) == [7.0, 8.0, 6.0] and buf.n_free == 0
    assert buf.high_water == 12 + 21 - 11
    for slot, ident in enumerate([7.0, 8.0, 6.0]):
        assert (stored_episode(buf, slot)["obs"] == ident).all()  # nothing of the evicted episodes is left


def test_sample_pads_with_zeros_and_masks_the_padding():
    buf = EpisodeReplayBuffer(capacity=8, info=INFO)
    buf.insert(make_batch([1, 2, 3, 4], [2, 3, 2, 3]))
    assert buf.can_sample(4) and not buf.can_sample(5)
    batch = buf.sample(4, torch.Generator().manual_seed(0))
    assert list(batch) == ["mask", "obs", "state", "avail_actions", "actions", "reward", "terminated"]
    assert batch["mask"].shape == (4, 3)  # cut to the longest sampled episode
    assert batch["obs"].shape == (4, 4, 2, 3) and batch["state"].shape == (4, 4, 4)
    assert batch["actions"].shape == (4, 3, 2) and batch["actions"].dtype == torch.long
    assert batch["obs"].dtype == torch.float32 and batch["avail_actions"].dtype == torch.bool
    assert sorted(batch["obs"][:, 0, 0, 0].tolist()) == [1.0, 2.0, 3.0, 4.0]  # without replacement
    assert batch["mask"].sum().item() == 10
    for b in range(4):
        L = int(batch["mask"][b].sum())
        assert batch["mask"][b].tolist() == [1.0] * L + [0.0] * (3 - L)
        assert (batch["obs"][b, L + 1 :] == 0).all() and (batch["obs"][b, : L + 1] > 0).all()
        assert not batch["avail_actions"][b, L + 1 :].any() and (batch["actions"][b, L:] == 0).all()
        assert (batch["actions"][b, :L] == 4).all() and (batch["reward"][b, L:] == 0).all()


def test_state_dict_round_trips_layout_and_samples():
    a = EpisodeReplayBuffer(capacity=4, info=INFO)
    for i in range(3):
        a.insert(make_batch([3 * i, 3 * i + 1, 3 * i + 2], [2, 3 + i, 1]))
    b = EpisodeReplayBuffer(capacity=4, info=INFO)
    b.load_state_dict(a.state_dict())
    assert (len(b), b.insert_index, b.episodes_inserted, b.nbytes) == (4, a.insert_index, 9, a.nbytes)
    for k in range(3):
        x, y = a.sample(3, torch.Generator().manual_seed(k)), b.sample(3, torch.Generator().manual_seed(k))
        assert all(torch.equal(x[f], y[f]) for f in x)
    a.insert(make_batch([20, 21], [6, 2]))  # and both go on the same way
    b.insert(make_batch([20, 21], [6, 2]))
    assert stored_ids(a) == stored_ids(b) and a.nbytes == b.nbytes
    assert torch.equal(a.row_index, b.row_index)


def test_float16_storage_halves_obs_and_samples_float32():
    batch = make_batch([1, 2], [3, 6])
    batch.obs = batch.obs + 1 / 3  # not exact in float16
    half = EpisodeReplayBuffer(capacity=2, info=INFO, dtype=torch.float16)
    full = EpisodeReplayBuffer(capacity=2, info=INFO)
    half.insert(batch)
    full.insert(batch)
    assert half.rows["obs"].dtype == torch.float16 and half.rows["state"].dtype == torch.float16
    g = torch.Generator()
    h, f = half.sample(2, g.manual_seed(0)), full.sample(2, g.manual_seed(0))
    assert h["obs"].dtype == torch.float32
    assert torch.equal(h["obs"], f["obs"].half().float()) and not torch.equal(h["obs"], f["obs"])
    assert torch.equal(h["reward"], f["reward"]) and torch.equal(h["actions"], f["actions"])
    assert step_bytes(INFO, torch.float16) == step_bytes(INFO) - 2 * (2 * 3 + 4)
    big = make_batch([70000], [2])
    with pytest.raises(ValueError, match="float16's range.*buffer_dtype=bfloat16"):
        half.insert(big)
    bf = EpisodeReplayBuffer(capacity=2, info=INFO, dtype=torch.bfloat16)
    bf.insert(big)  # bfloat16 has float32's range
    assert stored_episode(bf, 0)["obs"][0, 0, 0].item() == 70144.0  # the nearest bfloat16


def test_nbytes_follows_real_steps_and_the_bound_holds_at_the_limit():
    info = EnvInfo(n_agents=3, obs_dim=30, state_dim=48, n_actions=9, episode_limit=60)
    short = EpisodeReplayBuffer(capacity=20, info=info)
    for i in range(6):  # wraps: 48 episodes through 20 slots
        short.insert(synthetic_episodes(info, torch.tensor([10 + i] * 8)))
    per_episode = episode_bytes(info, short.steps_stored / len(short))
    assert short.nbytes <= 1.25 * 20 * per_episode  # what real steps take (+ freed rows not yet reused)
    assert short.nbytes < 0.3 * replay_bound_bytes(20, info)
    full = EpisodeReplayBuffer(capacity=20, info=info)
    for _ in range(4):
        full.insert(synthetic_episodes(info, torch.tensor([60] * 8)))
    assert 0.98 * replay_bound_bytes(20, info) <= full.nbytes <= replay_bound_bytes(20, info)
    # the layout PyMARL (and this buffer before) used: float32, int64 actions, everything padded
    assert padded_episode_bytes(info) == 61 * (4 * 90 + 4 * 48 + 27) + 60 * (24 + 12)


# ---------------------------------------------------------------------------- real SMAX episodes
@pytest.fixture(scope="module")
def smax_episodes():
    """6 collections of 8 random-policy episodes of SMAX 3m, with their env info."""
    pytest.importorskip("jaxmarl")
    from ptde.envs.build import build_envs
    from ptde.learners import build_learner
    from ptde.rollout import run_episodes

    torch.manual_seed(0)
    cfg = compose_cfg("algo=qmix", "env=smac/3m", "env.batch_size_run=8", "trainer.test_episodes=8")
    env, _, info = build_envs(cfg, seed=0)
    learner = build_learner(cfg, info.__dict__)
    g = torch.Generator().manual_seed(0)
    batches = [run_episodes(env, learner, info.n_actions, epsilon=1.0, generator=g) for _ in range(6)]
    env.close()
    return batches, info


def both_buffers(batches, info, capacity, dtype=torch.float32):
    old, new = PaddedReplayBuffer(capacity, info), EpisodeReplayBuffer(capacity, info, dtype)
    for b in batches:
        old.insert(b)
        new.insert(b)
    return old, new


def zero_past_the_end(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The padded buffer's batch with every episode's entries past its own end set to 0. It stored
    what a finished env returned until the rest of its collection ended (and the actions taken
    there); all masked, but not zero."""
    lengths = batch["mask"].sum(1).long()
    out = {}
    for name, v in batch.items():
        t = torch.arange(v.shape[1])
        past = t[None, :] > lengths[:, None] if name in FINAL else t[None, :] >= lengths[:, None]
        out[name] = v.masked_fill(past.view(*past.shape, *[1] * (v.dim() - 2)), 0)
    return out


def test_same_batches_as_the_padded_buffer_on_real_smax_episodes(smax_episodes):
    batches, info = smax_episodes
    old, new = both_buffers(batches, info, capacity=20)  # 48 episodes through 20 slots: evictions
    assert torch.cat([b.length for b in batches]).unique().numel() > 3  # episodes of many lengths
    g_old, g_new = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    differs_past_the_end = False
    for _ in range(20):
        a, b = old.sample(16, g_old), new.sample(16, g_new)
        assert list(a) == list(b)
        for name in a:
            assert a[name].shape == b[name].shape and a[name].dtype == b[name].dtype, name
        for name in ("mask", "reward", "terminated"):
            assert torch.equal(a[name], b[name]), name  # padding masks included
        expected = zero_past_the_end(a)
        for name in b:
            assert torch.equal(expected[name], b[name]), name
        differs_past_the_end |= any(not torch.equal(a[name], b[name]) for name in a)
    assert differs_past_the_end  # the comparison covers episodes that ended before their collection did
    assert torch.equal(g_old.get_state(), g_new.get_state())  # the same draws: the same sampling order


def test_legacy_padded_state_dict_loads_into_the_ragged_buffer(smax_episodes):
    batches, info = smax_episodes
    old, new = both_buffers(batches[:5], info, capacity=32)
    loaded = EpisodeReplayBuffer(32, info)
    loaded.load_state_dict(old.state_dict())
    assert (len(loaded), loaded.insert_index, loaded.episodes_inserted) == (32, old.insert_index, 40)
    assert loaded.steps_stored == new.steps_stored
    for k in range(3):
        x, y = new.sample(16, torch.Generator().manual_seed(k)), loaded.sample(16, torch.Generator().manual_seed(k))
        assert all(torch.equal(x[f], y[f]) for f in x)


def test_float16_batches_are_the_float32_ones_rounded(smax_episodes):
    batches, info = smax_episodes
    _, f32 = both_buffers(batches[:4], info, capacity=32)
    _, f16 = both_buffers(batches[:4], info, capacity=32, dtype=torch.float16)
    a, b = f32.sample(16, torch.Generator().manual_seed(0)), f16.sample(16, torch.Generator().manual_seed(0))
    for name in a:
        want = a[name].half().float() if name in ("obs", "state") else a[name]
        assert torch.equal(want, b[name]), name
    assert (a["obs"] - b["obs"]).abs().max() < 1e-3  # SMAX features are in [-1, 1]: float16 keeps 3 digits
    assert f16.nbytes < 0.6 * f32.nbytes


@pytest.mark.parametrize("algo", ["qmix", "qmix_gip", "vdn_giu", "qplex", "ctds", "copa", "csrl"])
def test_learners_compute_identical_losses_and_gradients_from_both_buffers(smax_episodes, algo):
    """The entries the padded buffer held past an episode's end never reach a loss or a gradient."""
    from ptde.learners import build_learner

    batches, info = smax_episodes
    old, new = both_buffers(batches[:4], info, capacity=32)
    cfg = compose_cfg(f"algo={algo}", "env=smac/3m", "algo.update_chunk=8")
    torch.manual_seed(0)
    learner = build_learner(cfg, info.__dict__)
    grads = []
    for buf in (old, new):
        batch = buf.sample(24, torch.Generator().manual_seed(1))
        net = copy.deepcopy(learner)
        torch.manual_seed(5)  # GIP samples z ~ N(mu, sigma)
        loss, stats = net.compute_loss(batch)
        loss.backward()
        grads.append((loss.detach(), stats, [p.grad.clone() for p in net.parameters() if p.grad is not None]))
    (la, sa, ga), (lb, sb, gb) = grads
    assert torch.equal(la, lb) and sa == sb
    assert len(ga) == len(gb) > 0 and all(torch.equal(x, y) for x, y in zip(ga, gb, strict=True))


class MeasuredPaddedBuffer(PaddedReplayBuffer):
    """The reference with the two figures the env-interaction callback logs of a buffer."""

    @property
    def nbytes(self) -> int:
        return sum(v[: self.size].nbytes for v in self.storage.values())

    @property
    def steps_stored(self) -> int:
        return int(self.storage["mask"][: self.size].sum())

    memory_metrics = EpisodeReplayBuffer.memory_metrics


def test_training_is_bit_identical_with_the_padded_buffer(tmp_path, monkeypatch):
    """A short QMIX-GIP run (evicting episodes) ends with the same networks and the same log rows
    whether its replay is ragged or the padded buffer: a drop-in replacement."""
    import csv

    pytest.importorskip("jaxmarl")
    from ptde.data.datamodule import ReplayDataModule
    from ptde.experiment.runner import run
    from ptde.learners.value_decomposition import ValueDecompositionLearner

    cfg = compose_cfg(
        "algo=qmix_gip", "env=smac/3m", "stage=1", "logger=csv", "trainer.max_env_steps=900",
        "trainer.test_interval=450", "trainer.log_interval=150", "trainer.checkpoint_interval=100000",
        "trainer.test_episodes=4", "trainer.progress_bar=false", "trainer.torch_threads=1",
        "algo.batch_size=8", "algo.buffer_size=16", "algo.target_update_interval=16",
    )  # fmt: skip
    run(cfg, tmp_path / "ragged")

    def padded_data(cfg, info, seed):
        buffer = MeasuredPaddedBuffer(cfg["algo"]["buffer_size"], info)
        return buffer, ReplayDataModule(buffer, cfg["algo"]["batch_size"], seed=seed)

    monkeypatch.setattr(ValueDecompositionLearner, "build_data", staticmethod(padded_data))
    run(cfg, tmp_path / "padded")

    a, b = (torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True) for r in ("ragged", "padded"))
    assert a["ptde_counters"] == b["ptde_counters"] and a["ptde_counters"]["episodes"] > 16
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k

    def rows(run_dir):
        with (run_dir / "metrics.csv").open(newline="") as f:
            return [{k: v for k, v in r.items() if k not in ("fps", "train/replay_bytes")} for r in csv.DictReader(f)]

    got, want = rows(tmp_path / "ragged"), rows(tmp_path / "padded")
    assert got == want and any(r.get("train/td_loss") for r in got)


# ---------------------------------------------------------------------------- start-up memory check
def test_available_memory_is_at_most_memavailable():
    from ptde.data.memory import available_memory

    avail, source = available_memory()
    with open("/proc/meminfo") as f:
        meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    assert 0 < avail <= meminfo["MemAvailable"] * 1.05 and source  # 5%: memory moves between the two reads


def test_a_replay_that_cannot_fit_fails_at_start_up_naming_size_limit_and_knobs(tmp_path):
    from conftest import run_module

    from ptde.data.buffer import replay_bound_bytes
    from ptde.data.replay_store import FILE_BYTES
    from ptde.envs.build import probe_env_info

    pytest.importorskip("jaxmarl")
    run_dir = tmp_path / "run"
    proc = run_module(
        "ptde.train", "env=smac/3s5z_vs_3s7z", "algo.buffer_size=50000000", "trainer.save_buffer=true",
        "logger=csv", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    info = probe_env_info(compose_cfg("env=smac/3s5z_vs_3s7z")["env"])
    need = (replay_bound_bytes(50_000_000, info) + FILE_BYTES) / 1024**3  # + one file of the replay store
    msg = proc.stderr
    assert f"needs up to {need:.2f} GiB" in msg and "GiB of memory is available (" in msg
    for knob in ("algo.buffer_size", "algo.buffer_dtype=float16"):
        assert knob in msg, knob
    assert not run_dir.exists()  # nothing written: no run folder, no wandb run


def test_the_start_up_bound_is_the_worst_case_of_the_buffer_a_run_builds():
    """The check bounds what `build_data` allocates: obs/state in algo.buffer_dtype at the limit."""
    from ptde.data.buffer import replay_bound_bytes
    from ptde.data.memory import replay_need_bytes
    from ptde.data.replay_store import FILE_BYTES
    from ptde.learners.value_decomposition import ValueDecompositionLearner

    cfg = compose_cfg("env=smac/3m", "algo.buffer_size=30", "algo.buffer_dtype=float16")
    info = EnvInfo(n_agents=3, obs_dim=30, state_dim=48, n_actions=9, episode_limit=cfg["env"]["episode_limit"])
    buffer, _ = ValueDecompositionLearner.build_data(cfg, info, seed=0)
    assert buffer.rows["obs"].dtype == torch.float16 and buffer.capacity == 30
    for _ in range(5):
        buffer.insert(synthetic_episodes(info, torch.tensor([info.episode_limit] * 8)))
    assert (
        buffer.nbytes
        <= replay_need_bytes(cfg["algo"], info, save_buffer=False)
        == replay_bound_bytes(30, info, torch.float16)
    )
    # a checkpoint or a restore holds one file of the replay store besides the buffer (at most the buffer)
    bound = replay_bound_bytes(30, info, torch.float16)
    assert replay_need_bytes(cfg["algo"], info, save_buffer=True) == bound + min(FILE_BYTES, bound)
