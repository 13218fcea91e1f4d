// TD(λ) targets (ptde/learners/returns.py) in one pass over the batch.
//
// Why: the Python loop spends each of an update's T time steps on ~10 small ATen ops over [B]
// columns (slices, where, four multiplies, three adds, a copy), about 15 ms an update at T = 250.
// Here each episode's backward recursion is a plain loop. The arithmetic is the Python loop's, in
// its order, each operation rounded to the storage type, and this file is built without fast-math
// and without FMA contraction (ptde/nn/cpp_kernels.py), so the targets equal the Python loop's bit
// for bit: G_t = r_t + (γ(1 - term_t)) · ((1 - λ) Q_{t+1} + λ G'_{t+1}), G' = G where the episode
// goes on after t + 1, else Q.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cstdint>

namespace {

template <typename T>
void run(const T* reward, const T* term, const T* mask, const T* q, T* out, int64_t B, int64_t steps, double gamma,
         double td_lambda) {
  // the Python loop's scalars, as ATen casts a Python float for a T tensor
  const T g_gamma = static_cast<T>(gamma);
  const T g_keep = static_cast<T>(1.0 - td_lambda);
  const T g_lambda = static_cast<T>(td_lambda);
  const T one = static_cast<T>(1.0);
  for (int64_t b = 0; b < B; ++b) {
    const T* r = reward + b * steps;
    const T* d = term + b * steps;
    const T* m = mask + b * steps;
    const T* qb = q + b * (steps + 1);
    T* o = out + b * steps;
    T g = qb[steps];
    for (int64_t t = steps - 1; t >= 0; --t) {
      const T q_next = qb[t + 1];
      const T next_mask = t + 1 < steps ? m[t + 1] : static_cast<T>(0);
      const T g_next = next_mask > 0 ? g : q_next;
      const T discount = g_gamma * (one - d[t]);
      const T mixed = g_keep * q_next + g_lambda * g_next;
      g = r[t] + discount * mixed;
      o[t] = g;
    }
  }
}

at::Tensor targets(const at::Tensor& reward, const at::Tensor& terminated, const at::Tensor& mask,
                   const at::Tensor& target_q, double gamma, double td_lambda) {
  TORCH_CHECK(reward.dim() == 2 && target_q.dim() == 2, "td_lambda: reward [B, T] and target_q [B, T+1]");
  const int64_t B = reward.size(0), steps = reward.size(1);
  TORCH_CHECK(target_q.size(0) == B && target_q.size(1) == steps + 1, "td_lambda: target_q must be [B, T+1]");
  TORCH_CHECK(terminated.sizes() == reward.sizes() && mask.sizes() == reward.sizes(),
              "td_lambda: terminated and mask must be [B, T]");
  const auto dtype = reward.scalar_type();
  TORCH_CHECK(terminated.scalar_type() == dtype && mask.scalar_type() == dtype && target_q.scalar_type() == dtype,
              "td_lambda: one floating dtype for all inputs");
  auto r = reward.contiguous(), d = terminated.contiguous(), m = mask.contiguous(), q = target_q.contiguous();
  auto out = at::empty_like(r);
  AT_DISPATCH_FLOATING_TYPES(dtype, "td_lambda", [&] {
    run<scalar_t>(r.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(),
                  out.data_ptr<scalar_t>(), B, steps, gamma, td_lambda);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(ptde_td_lambda, m) {
  m.def("targets(Tensor reward, Tensor terminated, Tensor mask, Tensor target_q, float gamma, float td_lambda) -> Tensor");
  m.impl("targets", c10::DispatchKey::CPU, TORCH_FN(targets));
}
