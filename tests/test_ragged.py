"""The update's real-steps-only computation (issue 29): the ragged GRU, the ragged Q network and the
mixer on the loss's positions compute the same function as the padded forms they replace, and
`trainer.precision=bf16-mixed` stays close to float32."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import compose_cfg, learner_and_real_batch, run_module

from ptde.errors import ConfigError
from ptde.learners.precision import resolve_precision
from ptde.machine import cpu_has_bf16
from ptde.nn.policy import build_agent_inputs, previous_actions_onehot
from ptde.nn.ragged_gru import RaggedLayout, ragged_gru, use_fused_kernel


@pytest.fixture(params=["python", "fused"])
def gru_kernel(request):
    """Each test of the GRU's maths once with the Python time loop, once with the C++ one."""
    fused = request.param == "fused"
    assert use_fused_kernel(fused) == fused, "the C++ kernel did not build (g++ and torch's headers are needed)"
    yield request.param
    use_fused_kernel(False)


def test_ragged_gru_is_the_gru_on_each_sequence(gru_kernel) -> None:
    torch.manual_seed(0)
    gru = torch.nn.GRU(8, 6, batch_first=True).double()
    lengths = torch.tensor([7, 3, 5, 1, 7])
    x = torch.randn(5, 7, 1, 8, dtype=torch.double)
    layout = RaggedLayout.of(lengths, 7, 1)
    h = layout.scatter(ragged_gru(gru, layout.gather(x), layout.counts))[:, :, 0]  # [5, 7, 6]
    for i, n in enumerate(lengths.tolist()):
        ref, _ = gru(x[i : i + 1, :n, 0])
        assert torch.allclose(h[i, :n], ref[0], atol=1e-12)
        assert (h[i, n:] == 0).all()


def test_ragged_gru_gradients_are_exact(gru_kernel) -> None:
    torch.manual_seed(1)
    gru = torch.nn.GRU(4, 3, batch_first=True).double()
    lengths = torch.tensor([2, 5, 5, 3])
    layout = RaggedLayout.of(lengths, 5, 2)  # two agents per episode-step
    x = layout.gather(torch.randn(4, 5, 2, 4, dtype=torch.double)).requires_grad_()
    params = (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    assert torch.autograd.gradcheck(lambda x, *_: ragged_gru(gru, x, layout.counts), (x, *params))


def test_acting_step_is_the_grus_step_bit_for_bit() -> None:
    """Acting runs the agents' GRU one step at a time through its cell (`RNNAgent.encode`, T = 1):
    the same numbers as `nn.GRU` on that step, so a rollout acts as it did through nn.GRU."""
    from ptde.nn.agents import RNNAgent

    torch.manual_seed(2)
    agent = RNNAgent(input_dim=20, hidden_dim=64, n_actions=9)
    x = torch.randn(8, 1, 3, 20)  # [B, T=1, n, d]
    hidden = torch.randn(8, 3, 64)
    with torch.no_grad():
        for h0 in (None, hidden):
            h, h_last = agent.encode(x, h0)
            assert h.shape == (8, 1, 3, 64) and h_last.shape == (8, 3, 64)
            inner = torch.relu(agent.fc1(x.permute(0, 2, 1, 3).reshape(24, 1, 20)))
            ref, ref_last = agent.rnn(inner, None if h0 is None else h0.reshape(1, 24, 64))
            assert torch.equal(h_last, ref_last.view(8, 3, 64))
            assert torch.equal(h[:, 0], ref[:, 0].view(8, 3, 64))
            assert not torch.equal(h_last, torch.zeros_like(h_last))


@pytest.mark.parametrize("dtype", ["32-true", "bf16-mixed"])
def test_fused_gru_kernel_agrees_with_the_python_loop(dtype: str) -> None:
    """An update-sized batch (128 episodes of 30-110 steps, 3 agents, H=64): the C++ loop's states
    and gradients equal the Python loop's to float rounding (float32), and to bf16 rounding under
    autocast, where the C++ gates are the more exact (float between bf16 loads and stores)."""
    if dtype == "bf16-mixed" and not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16")
    g = torch.Generator().manual_seed(0)
    layout = RaggedLayout.of(torch.randint(30, 111, (128,), generator=g), 110, 3)
    torch.manual_seed(0)
    gru = torch.nn.GRU(64, 64)
    x = torch.randn(sum(layout.counts), 64, generator=g)
    weights = torch.linspace(-1, 1, 64)
    results = []
    for fused in (False, True):
        use_fused_kernel(fused)
        xx = x.clone().requires_grad_()
        gru.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16-mixed"):
            h = ragged_gru(gru, xx, layout.counts)
        (h.float() * weights).sum().backward()
        results.append([h.float(), xx.grad, *(p.grad.clone() for p in gru.parameters())])
    use_fused_kernel(False)
    tol = 1e-5 if dtype == "32-true" else 2e-2
    for a, b in zip(*results, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
        assert ((a - b).norm() / a.norm()).item() < tol


@pytest.mark.parametrize("case", ["no compiler", "unwritable cache"])
def test_without_the_kernel_the_python_loop_runs(case: str, tmp_path) -> None:
    """No C++ compiler, or no cache folder to build in (and nothing cached): `use_fused_kernel(True)`
    says False, one log line says why, and the GRU still runs."""
    code = (
        "import torch; from ptde.nn.ragged_gru import use_fused_kernel, ragged_gru\n"
        "assert use_fused_kernel(True) is False\n"
        "print(ragged_gru(torch.nn.GRU(3, 2), torch.randn(4, 3), [2, 1, 1]).shape)\n"
    )
    if case == "no compiler":
        env, reason = {"XDG_CACHE_HOME": str(tmp_path), "CXX": "no-such-compiler"}, "no C++ compiler (no-such-compiler)"
    else:
        (tmp_path / "file").write_text("")  # a file where the cache folder would go
        env, reason = {"XDG_CACHE_HOME": str(tmp_path / "file")}, "could not build the ragged_gru kernel"
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch.Size([4, 2])" in proc.stdout
    assert reason in proc.stderr
    assert not list(tmp_path.rglob("*.so"))


@pytest.mark.parametrize("algo", ["qmix", "qmix_gip", "qmix_giu"])
def test_ragged_network_and_mixer_match_the_padded_forward(algo: str) -> None:
    """At every position the loss reads, the ragged forward gives the padded forward's Q (z = μ, so
    no sampling), and the loss and its gradients agree."""
    learner, batch = learner_and_real_batch(algo)
    net = learner.q_net
    assert net.ragged
    obs, state, mask = batch["obs"], batch["state"], batch["mask"]
    inputs = build_agent_inputs(obs, previous_actions_onehot(batch["actions"], learner.info.n_actions, obs.shape[1]))
    lengths = mask.sum(1).long() + 1
    observed = torch.arange(obs.shape[1]) < lengths.unsqueeze(1)  # [B, T+1]
    net_state = state if net.uses_state else None
    q_ragged, _, _ = net(inputs, net_state, sample_z=False, lengths=lengths)
    q_padded, _, _ = net(inputs, net_state, sample_z=False)
    assert torch.allclose(q_ragged[observed], q_padded[observed], atol=1e-5)
    assert (q_ragged[~observed] == 0).all()
    # the mixer on the loss's positions equals the mixer on the padded batch there
    agent_qs = q_padded[:, :-1].gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
    avail, acts = batch["avail_actions"][:, :-1], batch["actions"].unsqueeze(-1)
    full = learner.mix(learner.mixer, agent_qs, state[:, :-1], acts, q_padded[:, :-1], avail)
    picked = learner.mix(learner.mixer, agent_qs, state[:, :-1], acts, q_padded[:, :-1], avail, mask > 0)
    assert torch.allclose(full[mask > 0], picked[mask > 0], atol=1e-5) and (picked[mask == 0] == 0).all()


def test_ragged_loss_equals_the_chunked_padded_loss() -> None:
    """The learner's loss with the ragged network equals the padded, length-chunked computation it
    replaces (plain QMIX: nothing is sampled), and so do the gradients."""
    learner, batch = learner_and_real_batch("qmix")
    loss_ragged, _ = learner.compute_loss(batch)
    grads_ragged = torch.autograd.grad(loss_ragged, list(learner.q_net.parameters()))
    type(learner.q_net).ragged = property(lambda self: False)  # the padded path, chunked by length
    try:
        loss_padded, _ = learner.compute_loss(batch)
        grads_padded = torch.autograd.grad(loss_padded, list(learner.q_net.parameters()))
    finally:
        del type(learner.q_net).ragged
    assert loss_ragged.item() == pytest.approx(loss_padded.item(), rel=1e-5)
    for a, b in zip(grads_ragged, grads_padded, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_mixed_loss_is_close_to_float32_and_learns(gru_kernel) -> None:
    learner, batch = learner_and_real_batch("qmix", "trainer.precision=bf16-mixed")
    assert learner.precision == "bf16-mixed"
    loss_bf16, _ = learner.compute_loss(batch)
    learner.precision = "32-true"
    loss_fp32, _ = learner.compute_loss(batch)
    assert loss_bf16.dtype == torch.float32
    assert loss_bf16.item() == pytest.approx(loss_fp32.item(), rel=0.05)
    learner.precision = "bf16-mixed"
    opt = torch.optim.Adam(list(learner.q_net.parameters()) + list(learner.mixer.parameters()), lr=1e-3)
    losses = []
    for _ in range(40):
        loss, _ = learner.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_precision_choices_are_checked() -> None:
    with pytest.raises(ConfigError, match="32-true, bf16-mixed"):
        resolve_precision("16-mixed", "cpu")
    cfg = compose_cfg("trainer.precision=bf16-mixed")
    assert cfg["trainer"]["precision"] == "bf16-mixed"


def test_same_command_twice_gives_the_same_metrics(tmp_path, tiny_overrides) -> None:
    """Results are deterministic for a seed and code path: two runs of one command, one metrics.csv
    (but the wall-clock columns)."""
    import csv

    rows = []
    for name in ("a", "b"):
        proc = run_module("ptde.train", "algo=qmix_gip", "stage=1", *tiny_overrides, f"hydra.run.dir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        with open(tmp_path / name / "metrics.csv") as f:
            rows.append([{k: v for k, v in r.items() if k not in ("fps", "wall_time_s")} for r in csv.DictReader(f)])
    assert len(rows[0]) > 3 and rows[0] == rows[1]
