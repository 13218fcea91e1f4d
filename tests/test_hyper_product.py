"""GIP's chunked state-contracted product against the two-product form it replaces."""

import pytest
import torch

from ptde.nn.global_info import GIPModule, gip_embedding_reference
from ptde.nn.hyper_product import hyper_product


def two_products(u: torch.Tensor, s: torch.Tensor, m: torch.Tensor, z: int) -> torch.Tensor:
    P, _, H = u.shape
    return torch.bmm(u, (s @ m).view(P, z, H).transpose(1, 2))


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_every_chunking_gives_the_two_product_values_and_gradients(chunk):
    g = torch.Generator().manual_seed(0)
    P, n, H, S, z = 7, 3, 5, 4, 6  # chunk 3: two full chunks and a ragged one
    u = torch.randn(P, n, H, dtype=torch.float64, generator=g, requires_grad=True)
    s = torch.randn(P, S, dtype=torch.float64, generator=g, requires_grad=True)
    m = torch.randn(S, H * z, dtype=torch.float64, generator=g, requires_grad=True)
    out = hyper_product(u, s, m, z, chunk=chunk)
    ref = two_products(u, s, m, z)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn(P, n, z, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad((out * w).sum(), (u, s, m))
    for a, b in zip(grads, torch.autograd.grad((ref * w).sum(), (u, s, m)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda u, s, m: hyper_product(u, s, m, z, chunk=chunk), (u, s, m))


def test_one_chunk_in_bf16_gives_the_two_product_numbers():
    """One chunk keeps s·M from the forward and takes the weight gradient from one product: the
    forward and d_u are the two-product form's own bf16 numbers, d_m its bf16 product in float32."""
    g = torch.Generator().manual_seed(1)
    P, n, H, S, z = 256, 10, 64, 150, 64  # learning to rank's update: 128 one-step episodes, 2 rows each
    u = torch.randn(P, n, H, generator=g).bfloat16().requires_grad_(True)
    s = torch.randn(P, S, generator=g)
    m = (0.1 * torch.randn(S, z * H, generator=g)).requires_grad_(True)
    w = torch.randn(P, n, z, generator=g).bfloat16()
    out = hyper_product(u, s, m, z)
    d_u, d_m = torch.autograd.grad((out * w).sum(), (u, m))
    u2, m2 = u.detach().clone().requires_grad_(True), m.detach().bfloat16().requires_grad_(True)
    ref = two_products(u2, s.bfloat16(), m2, z)
    ref_u, ref_m = torch.autograd.grad((ref * w).sum(), (u2, m2))
    assert torch.equal(out, ref) and torch.equal(d_u, ref_u)
    assert d_m.dtype == torch.float32
    torch.testing.assert_close(d_m, ref_m.float(), rtol=1e-2, atol=1e-2)


def test_a_state_without_gradient_gets_none_and_the_weight_gradient_keeps_its_dtype():
    u = torch.randn(600, 2, 8, requires_grad=True)  # 600 steps: three chunks of the default size
    s = torch.randn(600, 5)
    m = torch.randn(5, 8 * 4, requires_grad=True)
    out = hyper_product(u, s, m, 4)
    d_u, d_m = torch.autograd.grad(out.sum(), (u, m))
    ref_u, ref_m = torch.autograd.grad(two_products(u, s, m, 4).sum(), (u, m))
    torch.testing.assert_close(d_u, ref_u)
    torch.testing.assert_close(d_m, ref_m, rtol=1e-4, atol=1e-3)
    assert d_m.dtype == torch.float32


def test_gip_under_bf16_autocast_stays_within_bf16_of_float32_and_its_gradients_are_float32():
    torch.manual_seed(0)
    gip = GIPModule(30, 40, z_dim=64, hyper_hidden_dim=64, var_floor=0.01)
    inputs, state = torch.randn(2, 300, 3, 30), torch.randn(2, 300, 40)  # 600 steps: several chunks
    exact = gip_embedding_reference(gip, inputs, state)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        e = gip.embedding(inputs, state)
    assert e.dtype == torch.bfloat16
    err = (e.float() - exact).abs().max() / exact.abs().max()
    assert err < 0.02, err
    e.float().sum().backward()
    used = [*gip.hyper_w_in.parameters(), *gip.hyper_w_out.parameters(), *gip.hyper_b.parameters()]
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in used)
