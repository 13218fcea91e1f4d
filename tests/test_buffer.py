"""EpisodeReplayBuffer: FIFO order, padding masks, sampling cut to the longest episode."""

import torch

from ptde.data.buffer import EpisodeReplayBuffer
from ptde.envs.base import EnvInfo
from ptde.rollout import EpisodeBatch

INFO = EnvInfo(n_agents=2, obs_dim=3, state_dim=4, n_actions=5, episode_limit=6)


def make_batch(ids: list[int], lengths: list[int]) -> EpisodeBatch:
    """Episodes whose every obs entry equals the episode id, so we can see which is stored where."""
    B, T = len(ids), max(lengths)
    mask = torch.zeros(B, T)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    ident = torch.tensor(ids, dtype=torch.float32)
    return EpisodeBatch(
        obs=ident.view(B, 1, 1, 1).expand(B, T + 1, 2, 3).clone(),
        state=ident.view(B, 1, 1).expand(B, T + 1, 4).clone(),
        avail_actions=torch.ones(B, T + 1, 2, 5, dtype=torch.bool),
        actions=torch.ones(B, T, 2, dtype=torch.long),
        reward=mask.clone(),
        terminated=torch.zeros(B, T),
        mask=mask,
        won=torch.zeros(B, dtype=torch.bool),
        episode_return=mask.sum(1),
        length=mask.sum(1).long(),
    )


def test_fifo_overwrites_oldest_first():
    buf = EpisodeReplayBuffer(capacity=5, info=INFO)
    buf.insert(make_batch([0, 1, 2], [2, 3, 4]))
    buf.insert(make_batch([3, 4, 5], [1, 1, 1]))  # wraps: 5 overwrites slot 0 (episode 0)
    assert len(buf) == 5 and buf.insert_index == 1
    stored = buf.storage["obs"][:, 0, 0, 0].tolist()
    assert stored == [5.0, 1.0, 2.0, 3.0, 4.0]
    buf.insert(make_batch([6], [2]))  # next oldest is episode 1 in slot 1
    assert buf.storage["obs"][:, 0, 0, 0].tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]


def test_padding_is_masked_and_zeroed():
    buf = EpisodeReplayBuffer(capacity=4, info=INFO)
    buf.insert(make_batch([7, 8], [2, 5]))
    m = buf.storage["mask"][:2]
    assert m.tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]]
    # steps past the batch's longest episode hold zeros, not stale data from an older episode
    buf.storage["obs"][2:].fill_(99.0)
    buf.insert(make_batch([9, 10], [1, 1]))
    assert (buf.storage["obs"][2, 2:] == 0).all() and (buf.storage["obs"][2, :2] == 9).all()
    assert not buf.storage["avail_actions"][2, 2:].any()
    assert (buf.storage["reward"][0, 2:] == 0).all()


def test_sample_is_cut_to_longest_sampled_episode():
    buf = EpisodeReplayBuffer(capacity=8, info=INFO)
    buf.insert(make_batch([1, 2, 3, 4], [2, 3, 2, 3]))
    assert buf.can_sample(4) and not buf.can_sample(5)
    batch = buf.sample(4, torch.Generator().manual_seed(0))
    assert batch["mask"].shape == (4, 3)
    assert batch["obs"].shape == (4, 4, 2, 3) and batch["state"].shape == (4, 4, 4)
    assert batch["actions"].shape == (4, 3, 2)
    assert sorted(batch["obs"][:, 0, 0, 0].tolist()) == [1.0, 2.0, 3.0, 4.0]  # without replacement
    assert batch["mask"].sum().item() == 10


def test_state_dict_round_trip():
    a = EpisodeReplayBuffer(capacity=4, info=INFO)
    a.insert(make_batch([1, 2, 3], [2, 3, 1]))
    b = EpisodeReplayBuffer(capacity=4, info=INFO)
    b.load_state_dict(a.state_dict())
    assert (len(b), b.insert_index, b.episodes_inserted) == (3, 3, 3)
    assert torch.equal(a.storage["obs"][:3], b.storage["obs"][:3])
