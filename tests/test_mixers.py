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


def test_qmix_stacked_first_layers_give_the_layer_by_layer_numbers():
    """QMixer runs its four hypernetworks' first layers as one product; Q_tot and every gradient
    equal, bit for bit, the mixer written layer by layer (PyMARL2's QMixer)."""
    torch.manual_seed(3)
    mixer = QMixer(n_agents=3, state_dim=81)
    qs = torch.randn(4, 1200, 3, requires_grad=True)
    state = torch.randn(4, 1200, 81)

    def layer_by_layer(qs, state):
        q, s = qs.reshape(-1, 1, 3), state.reshape(-1, 81)
        w1 = mixer.hyper_w1(s).abs().view(-1, 3, 32)
        hidden = torch.nn.functional.elu(torch.bmm(q, w1) + mixer.hyper_b1(s).view(-1, 1, 32))
        w2 = mixer.hyper_w2(s).abs().view(-1, 32, 1)
        return (torch.bmm(hidden, w2) + mixer.hyper_b2(s).view(-1, 1, 1)).view(4, 1200)

    out, ref = mixer(qs, state), layer_by_layer(qs, state)
    assert torch.equal(out, ref)
    g = torch.randn_like(out)
    params = [qs, *mixer.parameters()]
    grads, ref_grads = torch.autograd.grad(out, params, g), torch.autograd.grad(ref, params, g)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads, strict=True))
    assert all(a.abs().sum() > 0 for a in grads)


def test_vdn_sums_agents():
    qs = torch.tensor([[[1.0, 2.0, 3.5]]])
    assert VDNMixer()(qs, torch.zeros(1, 1, 4)).item() == 6.5


def _qplex_q_tot(mixer, qs, state, joint, avail):
    """Q_tot of one joint action per row. qs [N, n, A], joint [N, n] -> [N]."""
    n_actions = qs.shape[-1]
    chosen = qs.gather(-1, joint.unsqueeze(-1)).squeeze(-1)  # [N, n]
    max_q = qs.masked_fill(~avail, float("-inf")).amax(-1)  # [N, n]
    onehot = torch.nn.functional.one_hot(joint, n_actions).float()
    return mixer(chosen.unsqueeze(1), state.unsqueeze(1), onehot.unsqueeze(1), max_q.unsqueeze(1)).squeeze(1)


def test_qplex_greedy_joint_action_is_every_agent_s_greedy_action():
    """IGM: over all joint actions of available actions, argmax Q_tot = per-agent argmax Q_i."""
    import itertools

    from ptde.nn.mixers import QPLEXMixer

    torch.manual_seed(0)
    n, A, S = 3, 5, 12
    mixer = QPLEXMixer(n_agents=n, n_actions=A, state_dim=S)
    joints = torch.tensor(list(itertools.product(range(A), repeat=n)))  # [A^n, n]
    not_affine = 0
    for trial in range(25):
        qs = torch.randn(n, A) * 3
        state = torch.randn(S) * 2
        avail = torch.rand(n, A) > 0.3
        avail[:, trial % A] = True  # at least one action each
        ok = avail[torch.arange(n).unsqueeze(0), joints].all(-1)  # [A^n] joint actions all available
        cand = joints[ok]
        N = cand.shape[0]
        q_tot = _qplex_q_tot(mixer, qs.expand(N, n, A), state.expand(N, S), cand, avail.expand(N, n, A))
        greedy = qs.masked_fill(~avail, float("-inf")).argmax(-1)  # [n]
        assert torch.equal(cand[q_tot.argmax()], greedy), trial
        # the greedy joint action's value is the max; every other one is strictly lower
        best = q_tot.max()
        assert (q_tot[(cand != greedy).any(-1)] < best).all()
        # λ_i(s, a) depends on the joint action: Q_tot is no affine function of the chosen Q_i (as VDN's is)
        chosen = qs.expand(N, n, A).gather(-1, cand.unsqueeze(-1)).squeeze(-1)  # [N, n]
        features = torch.cat([chosen, torch.ones(N, 1)], dim=-1).double()
        fit = torch.linalg.lstsq(features, q_tot.detach().double().unsqueeze(-1)).solution
        residual = (features @ fit).squeeze(-1) - q_tot.detach().double()
        not_affine += int(residual.abs().max() > 1e-3)
    assert not_affine == 25


def test_qplex_value_part_carries_the_gradient_and_depends_on_state():
    from ptde.nn.mixers import QPLEXMixer

    torch.manual_seed(2)
    mixer = QPLEXMixer(n_agents=3, n_actions=4, state_dim=6)
    qs = torch.randn(8, 5, 3, requires_grad=True)
    state = torch.randn(8, 5, 6)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 4, (8, 5, 3)), 4).float()
    max_q = qs.detach() + torch.rand(8, 5, 3)
    q_tot = mixer(qs, state, onehot, max_q)
    assert q_tot.shape == (8, 5)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad > 0).all()  # dQ_tot/dQ_i = w_i(s) > 0 through V_tot (the advantage is detached)
    assert not torch.allclose(q_tot, mixer(qs, torch.randn(8, 5, 6), onehot, max_q))


def test_qplex_learner_fits_a_fixed_batch_of_real_episodes():
    """algo=qplex builds the duplex mixer into the value-decomposition learner; with targets frozen,
    updates on one real SMAX batch drive the TD loss down."""
    from conftest import fit_fixed_batch, learner_and_real_batch

    from ptde.nn.mixers import QPLEXMixer

    learner, batch = learner_and_real_batch("qplex")
    assert learner.algo["mixer"] == "qplex" and learner.algo["num_kernel"] == 4
    assert isinstance(learner.mixer, QPLEXMixer) and isinstance(learner.target_mixer, QPLEXMixer)
    losses = fit_fixed_batch(learner, batch)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.3 * losses[0], losses[::10]
