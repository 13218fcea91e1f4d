"""Mixers: QMIX is monotonic in every agent's Q; VDN is the sum."""

import torch

from ptde.nn.mixers import QMixer, VDNMixer


def test_qmix_is_monotonic_in_each_agent_q():
    torch.manual_seed(0)
    mixer = QMixer(n_agents=5, state_dim=30, embed_dim=32, hypernet_embed=64)
    qs = torch.randn(16, 10, 5, requires_grad=True)
    state = torch.randn(16, 10, 30) * 3
    q_tot = mixer(qs, state)
    assert q_tot.shape == (16, 10)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad >= 0).all()
    assert (grad > 0).float().mean() > 0.5  # not trivially zero


def test_qmix_depends_on_state_and_increasing_a_q_never_lowers_q_tot():
    torch.manual_seed(1)
    mixer = QMixer(n_agents=3, state_dim=8)
    qs = torch.randn(64, 1, 3)
    state = torch.randn(64, 1, 8)
    base = mixer(qs, state)
    for i in range(3):
        bumped = qs.clone()
        bumped[..., i] += torch.rand(64, 1) * 5
        assert (mixer(bumped, state) >= base - 1e-6).all()
    assert not torch.allclose(mixer(qs, state), mixer(qs, torch.randn(64, 1, 8)))


def test_vdn_sums_agents():
    qs = torch.tensor([[[1.0, 2.0, 3.5]]])
    assert VDNMixer()(qs, torch.zeros(1, 1, 4)).item() == 6.5
