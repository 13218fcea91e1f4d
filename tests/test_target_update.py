"""The target networks' two schedules: PyMARL2's hard copy every `target_update_interval` episodes,
and the soft (Polyak) update after every update with `target_update_tau` > 0."""

import pytest
import torch
from conftest import compose_cfg, fit_fixed_batch, learner_and_real_batch

from ptde.config.resolved import validate
from ptde.errors import ConfigError


def _params(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in modules for t in m.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_soft_and_hard_target_updates():
    learner, batch = learner_and_real_batch("qmix", "algo.target_update_tau=0.25")
    fit_fixed_batch(learner, batch, steps=5)  # the online nets move away from their targets
    target, online = _params(learner.target_q_net, learner.target_mixer), _params(learner.q_net, learner.mixer)
    assert any(not torch.equal(t, o) for t, o in zip(target, online, strict=True))

    learner.update_targets_on_schedule()  # soft: every update, whatever the episode count
    after = _params(learner.target_q_net, learner.target_mixer)
    for t, o, a in zip(target, online, after, strict=True):
        torch.testing.assert_close(a, 0.75 * t + 0.25 * o)
    assert learner.counters.last_target_update_episode == 0

    learner.algo["target_update_tau"] = 0.0  # hard: a copy once 200 episodes have passed
    learner.counters.episodes = 199
    learner.update_targets_on_schedule()
    assert _same(after, _params(learner.target_q_net, learner.target_mixer))
    learner.counters.episodes = 200
    learner.update_targets_on_schedule()
    assert _same(_params(learner.target_q_net, learner.target_mixer), online)
    assert learner.counters.last_target_update_episode == 200


def test_a_tau_outside_0_1_is_refused_naming_the_key():
    assert compose_cfg("algo=qmix")["algo"]["target_update_tau"] == 0.0  # the default: PyMARL2's hard updates
    with pytest.raises(ConfigError, match=r"algo.target_update_tau=1.5 must be in \[0, 1\]"):
        validate(compose_cfg("algo=qmix", "env=smac/3m", "algo.target_update_tau=1.5"))
