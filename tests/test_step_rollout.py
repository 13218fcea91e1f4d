"""Step-based collection on auto-reset envs: episodes equal per-episode runs of the same seeds, the
policy state is zeroed at every reset and carried everywhere else, rollouts continue each other."""

import jax
import pytest
import torch
from conftest import compose_cfg

from ptde.envs.smac import SMACEnvConfig
from ptde.envs.smax import SMAXEnv, episode_chain_keys
from ptde.learners.mappo import MAPPOLearner
from ptde.rollout import run_episodes
from ptde.rollout.steps import collect_steps

B, STEPS = 4, 45


class CountingPolicy:
    """A deterministic policy whose carried state counts the steps of the current episode; agent i at
    episode step k takes its ((k + i) mod #available)-th available action. Played from a zero state,
    an episode is the same wherever it runs, so batched auto-reset episodes can be compared with
    per-episode runs, and a state that was not zeroed at a reset would change the actions."""

    uses_state = False

    def __init__(self, n_agents: int, n_actions: int) -> None:
        self.n, self.A = n_agents, n_actions

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.n, 1)

    def act(self, inputs, hidden):
        b = inputs.shape[0]
        if hidden is None:
            hidden = self.init_hidden(b)
        out = hidden.unsqueeze(1).expand(b, 1, self.n, self.A).clone()  # the count, read by select_actions
        return out, hidden + 1

    @staticmethod
    def select_actions(out, avail, epsilon, generator=None):
        count = out[..., 0].long()  # [b, n]
        agent = torch.arange(out.shape[1]).expand_as(count)
        n_avail = avail.sum(-1)  # [b, n]
        k = (count + agent) % n_avail
        order = torch.cumsum(avail.long(), dim=-1) - 1  # rank of each available action
        return ((order == k.unsqueeze(-1)) & avail).float().argmax(-1)


@pytest.fixture(scope="module")
def auto_rollouts():
    cfg = SMACEnvConfig(name="3m", episode_limit=15)
    env = SMAXEnv(cfg, batch_size=B, seed=5, auto_reset=True)
    policy = CountingPolicy(3, env.n_actions)
    first, carry = collect_steps(env, policy, env.n_actions, STEPS)
    second, _ = collect_steps(env, policy, env.n_actions, STEPS, carry)
    return cfg, policy, first, second


def _episodes_of(rollouts, b):
    """Env b's episodes as (first step, last step) over the concatenated rollouts."""
    starts = torch.cat([r.starts[b, :-1] for r in rollouts])
    ends = torch.cat([torch.maximum(r.terminated[b], r.truncated[b]) for r in rollouts]) > 0
    begin = starts.nonzero().squeeze(1).tolist()
    finish = ends.nonzero().squeeze(1).tolist()
    return list(zip(begin, finish, strict=False))[: len(finish)]


def test_auto_reset_episodes_equal_per_episode_runs_of_the_same_seeds(auto_rollouts):
    cfg, policy, first, second = auto_rollouts
    keys = episode_chain_keys(5, B)
    state = torch.cat([first.state[:, :-1], second.state[:, :-1]], dim=1)  # [B, 2T, S]
    reward = torch.cat([first.reward, second.reward], dim=1)
    terminated = torch.cat([first.terminated, second.terminated], dim=1)
    finished = [first.episodes, second.episodes]
    crossed = 0
    for b in range(B):
        one = SMAXEnv(cfg, batch_size=1, seed=0)  # a batch-of-one env on env b's key chain
        one.set_rng_state(torch.from_numpy(jax.device_get(keys[b]).copy()))
        spans = _episodes_of([first, second], b)
        assert len(spans) >= 2
        returns = torch.cat([e.returns[e.env_index == b] for e in finished])
        lengths = torch.cat([e.lengths[e.env_index == b] for e in finished])
        won = torch.cat([e.won[e.env_index == b] for e in finished])
        assert lengths.tolist() == [e - s + 1 for s, e in spans]
        for k, (s, e) in enumerate(spans):
            ref = run_episodes(one, policy, one.n_actions, epsilon=0.0)
            T = int(ref.length[0])
            assert T == e - s + 1, (b, k)
            torch.testing.assert_close(state[b, s : e + 1], ref.state[0, :T], rtol=0, atol=1e-6)
            torch.testing.assert_close(reward[b, s : e + 1], ref.reward[0, :T], rtol=0, atol=1e-6)
            assert terminated[b, e] == ref.terminated[0, T - 1]  # termination vs time-out, as the episode run
            assert returns[k].item() == pytest.approx(ref.episode_return[0].item(), abs=1e-5)
            assert bool(won[k]) == bool(ref.won[0])
            crossed += s < STEPS <= e
    assert crossed >= 1  # some episode ran on from the first rollout into the second


def test_the_episodes_end_both_ways(auto_rollouts):
    _, _, first, second = auto_rollouts
    assert (first.truncated + second.truncated).sum() >= 1  # the 15-step limit
    assert (first.terminated + second.terminated).sum() >= 1  # a battle won or lost
    # where an episode ended, the env already shows the next one; final_state holds where it ended
    ended = (first.terminated + first.truncated) > 0  # [B, T]
    b, t = ended.nonzero()[0]
    assert not torch.equal(first.final_state[b, t], first.state[b, t + 1])
    cont = ~ended
    torch.testing.assert_close(first.final_state[cont], first.state[:, 1:][cont])


def test_hidden_state_is_zeroed_at_a_reset_and_carried_otherwise(auto_rollouts):
    _, _, first, second = auto_rollouts
    for b in range(B):
        hidden = torch.cat([first.hidden[b, :, 0, 0], second.hidden[b, :, 0, 0]])  # the count before acting
        position = torch.zeros_like(hidden)
        for s, e in _episodes_of([first, second], b):
            position[s : e + 1] = torch.arange(e - s + 1, dtype=hidden.dtype)
        last_end = _episodes_of([first, second], b)[-1][1]
        position[last_end + 1 :] = torch.arange(hidden.shape[0] - last_end - 1, dtype=hidden.dtype)
        torch.testing.assert_close(hidden, position)
    assert (first.hidden[first.starts[:, :-1]] == 0).all()
    # carried across the rollout boundary: the second rollout's first state continues the first's
    assert torch.equal(second.starts[:, 0], first.starts[:, -1])
    running = ~second.starts[:, 0]
    torch.testing.assert_close(second.hidden[running, 0], first.hidden[running, -1] + 1)


def test_mappo_actor_state_in_training_equals_the_acting_state():
    """The GRU state the rollout carried while acting (zeroed at resets) is the state a training
    unroll with resets computes, so chunks may start from the stored states."""
    torch.manual_seed(0)
    cfg = compose_cfg("algo=mappo", "env=smac/3m", "env.episode_limit=15", f"env.batch_size_run={B}")
    env = SMAXEnv(SMACEnvConfig(name="3m", episode_limit=15), batch_size=B, seed=1, auto_reset=True)  # compiled above
    learner = MAPPOLearner(cfg, env.get_env_info().__dict__)
    rollout, _ = collect_steps(env, learner, env.n_actions, 50, generator=torch.Generator().manual_seed(0))
    assert rollout.starts[:, 1:-1].any()  # resets inside the rollout
    with torch.no_grad():
        _, carried = learner.actor.agent.unroll(rollout.inputs, None, rollout.starts[:, :-1])  # [B, T, n, H]
    start = rollout.starts[:, 1:-1]  # [B, T-1]
    expect = torch.where(start[..., None, None], torch.zeros_like(carried[:, :-1]), carried[:, :-1])
    torch.testing.assert_close(rollout.hidden[:, 1:], expect, rtol=0, atol=1e-5)
    assert (rollout.hidden[:, 1:][~start].abs().sum(-1) > 0).all()  # carried, never zero, within an episode
