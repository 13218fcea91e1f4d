// The ragged GRU's time loop (ptde/nn/ragged_gru.py) with each step's gate arithmetic fused.
//
// Why: the Python loop spends each step on ~10 small ATen ops (sigmoid, tanh, lerp, copies), each a
// pass over a [rows, H] block plus dispatch; here a step is one matrix product (at::addmm, bf16 on
// the matrix units under autocast) and one pass of float arithmetic written so that gcc vectorises it
// (-O3 -ffast-math: exp and tanh come from glibc's vector math library). Storage stays in the input
// projection's dtype (float, double or bfloat16); the gate arithmetic runs in float (double for
// double). Same maths as PyTorch's GRU: gate order r, z, n; n = tanh(x_n + r * (W_hn h + b_hn));
// h' = n + z * (h - n).

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Storage <-> compute. bfloat16 is the top half of a float; stores round to nearest even.
template <typename S>
struct Num {
  using C = float;
  static inline C load(const S* p, int64_t j) { return static_cast<C>(p[j]); }
  static inline void store(S* p, int64_t j, C v) { p[j] = static_cast<S>(v); }
};

template <>
struct Num<double> {
  using C = double;
  static inline C load(const double* p, int64_t j) { return p[j]; }
  static inline void store(double* p, int64_t j, C v) { p[j] = v; }
};

template <>
struct Num<at::BFloat16> {
  using C = float;
  static inline float load(const at::BFloat16* p, int64_t j) {
    uint32_t bits = static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(p)[j]) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  static inline void store(at::BFloat16* p, int64_t j, float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even (values here are finite)
    reinterpret_cast<uint16_t*>(p)[j] = static_cast<uint16_t>(bits >> 16);
  }
};

template <typename C>
inline C sigmoid(C v) {
  return C(1) / (C(1) + std::exp(-v));
}

std::vector<int64_t> offsets_of(at::IntArrayRef counts) {
  std::vector<int64_t> off(counts.size() + 1, 0);
  for (size_t t = 0; t < counts.size(); ++t) off[t + 1] = off[t] + counts[t];
  return off;
}

// One step's gates for n rows: x [n, 3H] input projection, gh [n, 3H] = W_hh h (b [3H] = b_hh added
// here: addmm's bias broadcast was a copy of its own), hp [n, H] the previous state -> out [n, H];
// when gates/ghn are given, r z n [n, 3H] and W_hn h + b_hn [n, H].
template <typename S>
void step_forward(const S* x, const S* gh, const S* b, const S* hp, S* out, S* gates, S* ghn, int64_t n, int64_t H) {
  using N = Num<S>;
  using C = typename N::C;
  for (int64_t i = 0; i < n; ++i) {
    const S* xi = x + i * 3 * H;
    const S* gi = gh + i * 3 * H;
    const S* hi = hp + i * H;
    S* oi = out + i * H;
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      C r = sigmoid<C>(N::load(xi, j) + (N::load(gi, j) + N::load(b, j)));
      C z = sigmoid<C>(N::load(xi, H + j) + (N::load(gi, H + j) + N::load(b, H + j)));
      C gn = N::load(gi, 2 * H + j) + N::load(b, 2 * H + j);
      C nn = std::tanh(N::load(xi, 2 * H + j) + r * gn);
      C h = N::load(hi, j);
      N::store(oi, j, nn + z * (h - nn));
      if (gates != nullptr) {
        S* gti = gates + i * 3 * H;
        N::store(gti, j, r);
        N::store(gti, H + j, z);
        N::store(gti, 2 * H + j, nn);
        N::store(ghn + i * H, j, gn);
      }
    }
  }
}

// xp [R, 3H], h0 [N, H], w_hh [3H, H], b_hh [3H] (all one dtype) -> out [R, H], and when `save`
// gates [R, 3H] (r, z, n) and ghn [R, H] (W_hn h + b_hn) for the backward (else empty).
std::tuple<at::Tensor, at::Tensor, at::Tensor> forward(
    const at::Tensor& xp, const at::Tensor& h0, const at::Tensor& w_hh, const at::Tensor& b_hh,
    at::IntArrayRef counts, bool save) {
  TORCH_CHECK(xp.device().is_cpu() && xp.is_contiguous() && h0.is_contiguous(), "ragged_gru: contiguous CPU tensors");
  const int64_t H = h0.size(1), R = xp.size(0);
  const auto off = offsets_of(counts);
  TORCH_CHECK(off.back() == R, "ragged_gru: counts sum to ", off.back(), " rows, xp has ", R);
  at::Tensor out = at::empty({R, H}, xp.options());
  at::Tensor gates = save ? at::empty({R, 3 * H}, xp.options()) : at::Tensor();
  at::Tensor ghn = save ? at::empty({R, H}, xp.options()) : at::Tensor();
  at::Tensor gh = at::empty({counts.empty() ? 0 : counts[0], 3 * H}, xp.options());
  const at::Tensor w_t = w_hh.t();
  const at::Tensor b = b_hh.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xp.scalar_type(), "ragged_gru_forward", [&] {
    for (size_t t = 0; t < counts.size(); ++t) {
      const int64_t n = counts[t], row = off[t];
      at::Tensor hp = t == 0 ? h0.narrow(0, 0, n) : out.narrow(0, off[t - 1], n);  // [n, H]
      at::Tensor g = gh.narrow(0, 0, n);
      at::mm_out(g, hp, w_t);  // [n, 3H]
      step_forward<scalar_t>(
          xp.data_ptr<scalar_t>() + row * 3 * H, g.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), hp.data_ptr<scalar_t>(),
          out.data_ptr<scalar_t>() + row * H, save ? gates.data_ptr<scalar_t>() + row * 3 * H : nullptr,
          save ? ghn.data_ptr<scalar_t>() + row * H : nullptr, n, H);
    }
  });
  return {out, gates, ghn};
}

// One step of the backward for n rows. g = dh_acc + dh_mm + d_out is the gradient reaching each
// state; writes d_pre [n, 3H] (pre-activations, input side), d_gh [n, 3H] (hidden side: the n gate
// times r), dh_acc = g * z (the direct path h -> h'; the W_hh path is added by the caller's product)
// and adds d_gh's column sums to d_b [3H] (b_hh's gradient). Both accumulate in float (double for double).
template <typename S>
void step_backward(const S* d_out, const S* gates, const S* ghn, const S* hp, typename Num<S>::C* dh_acc, const S* dh_mm,
                   S* d_pre, S* d_gh, typename Num<S>::C* d_b, int64_t n, int64_t H) {
  using N = Num<S>;
  using C = typename N::C;
  for (int64_t i = 0; i < n; ++i) {
    const S* gt = gates + i * 3 * H;
    S* dp = d_pre + i * 3 * H;
    S* dg = d_gh + i * 3 * H;
    C* acc = dh_acc + i * H;
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      C g = C(acc[j]) + N::load(dh_mm + i * H, j) + N::load(d_out + i * H, j);
      C r = N::load(gt, j), z = N::load(gt, H + j), nn = N::load(gt, 2 * H + j);
      C d_an = g * (C(1) - z) * (C(1) - nn * nn);
      C d_r = d_an * N::load(ghn + i * H, j) * r * (C(1) - r);
      C d_z = g * (N::load(hp + i * H, j) - nn) * z * (C(1) - z);
      N::store(dp, j, d_r);
      N::store(dp, H + j, d_z);
      N::store(dp, 2 * H + j, d_an);
      N::store(dg, j, d_r);
      N::store(dg, H + j, d_z);
      N::store(dg, 2 * H + j, d_an * r);
      d_b[j] += d_r;
      d_b[H + j] += d_z;
      d_b[2 * H + j] += d_an * r;
      acc[j] = g * z;
    }
  }
}

// The gradients of forward's inputs from d_out [R, H] -> d_xp [R, 3H], d_h0 [N, H], d_w [3H, H],
// d_b [3H] (float, double for double).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
    const at::Tensor& d_out_in, const at::Tensor& h0, const at::Tensor& w_hh, const at::Tensor& out,
    const at::Tensor& gates, const at::Tensor& ghn, at::IntArrayRef counts) {
  const int64_t H = h0.size(1), R = out.size(0), N0 = counts.empty() ? 0 : counts[0];
  const auto off = offsets_of(counts);
  const at::Tensor d_out = d_out_in.contiguous();
  at::Tensor d_pre = at::empty({R, 3 * H}, out.options());
  at::Tensor d_gh = at::empty({R, 3 * H}, out.options());
  at::Tensor h_prev = at::empty({R, H}, out.options());
  const auto acc_type = out.options().dtype(out.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  at::Tensor dh_acc = at::zeros({N0, H}, acc_type);  // g * z of the later step (float, double for double)
  at::Tensor dh_mm = at::zeros({N0, H}, out.options());  // d_gh W_hh of the later step
  at::Tensor d_b = at::zeros({3 * H}, acc_type);
  const int64_t es = out.element_size();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, out.scalar_type(), "ragged_gru_backward", [&] {
    for (int64_t t = static_cast<int64_t>(counts.size()) - 1; t >= 0; --t) {
      const int64_t n = counts[t], row = off[t];
      const at::Tensor hp = t == 0 ? h0.narrow(0, 0, n) : out.narrow(0, off[t - 1], n);  // [n, H]
      std::memcpy(h_prev.data_ptr<scalar_t>() + row * H, hp.data_ptr<scalar_t>(), n * H * es);
      step_backward<scalar_t>(
          d_out.data_ptr<scalar_t>() + row * H, gates.data_ptr<scalar_t>() + row * 3 * H,
          ghn.data_ptr<scalar_t>() + row * H, hp.data_ptr<scalar_t>(), dh_acc.data_ptr<typename Num<scalar_t>::C>(),
          dh_mm.data_ptr<scalar_t>(), d_pre.data_ptr<scalar_t>() + row * 3 * H,
          d_gh.data_ptr<scalar_t>() + row * 3 * H, d_b.data_ptr<typename Num<scalar_t>::C>(), n, H);
      at::Tensor mm = dh_mm.narrow(0, 0, n);
      at::mm_out(mm, d_gh.narrow(0, row, n), w_hh);  // [n, H] through W_hh
    }
  });
  at::Tensor d_h0 = dh_acc.to(out.scalar_type()).add_(dh_mm);
  at::Tensor d_w = at::mm(d_gh.t(), h_prev);  // [3H, H]
  return {d_pre, d_h0, d_w, d_b};
}

}  // namespace

TORCH_LIBRARY(ptde_ragged_gru, m) {
  m.def("forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor b_hh, int[] counts, bool save) -> (Tensor, Tensor, Tensor)");
  m.def("backward(Tensor d_out, Tensor h0, Tensor w_hh, Tensor out, Tensor gates, Tensor ghn, int[] counts) -> (Tensor, Tensor, Tensor, Tensor)");
  m.impl("forward", c10::DispatchKey::CPU, TORCH_FN(forward));
  m.impl("backward", c10::DispatchKey::CPU, TORCH_FN(backward));
}
