// One per-fold minibatch step for a group of probes on CPU: an XLA FFI handler.
//
// For probe g, its minibatch is the first n rows r = idx[g, w] of its window, and
//   z = x_r . p_g,  dz = sigmoid(z) - y_r (classification) or 2 (z - y_r) (regression)
//   grad = sum_w dz x_r / n,  loss[g] = sum_w loss(z, y_r) / n
// then AdamW (neuco_jax.engine's maths) updates p_g and its moments. Each row
// is read once from the cache (the dot brings it into L1 for the gradient),
// where the XLA step gathers the rows into a buffer and reads that twice, and
// the optimiser runs while the gradient is still in cache. Probes are split
// over XLA's intra-op thread pool.
//
// Operands: x (slots, width), y (slots,), idx (group, window) int32, n () int32,
// params, mu, nu (group, width), lr, c1, c2 (group,) with c = 1 - beta**t.
// Results: params, mu, nu (aliased to the operands by the caller), loss (group,).
// A second handler computes each probe's held-out logits the same way (HeldoutLogits).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using neuco::ParallelFor;

namespace {

// AdamW constants (neuco_jax.engine: torch's defaults). 1 - beta is formed in double, as the
// engine's Python floats are: 1.0f - 0.999f would be off by 1.3e-5 relative.
constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEps = 1e-8f, kWeightDecay = 0.01f;
constexpr float kOneMinusBeta1 = static_cast<float>(1.0 - 0.9), kOneMinusBeta2 = static_cast<float>(1.0 - 0.999);

struct Step {
  const float* x;
  const float* y;
  const int32_t* idx;
  int64_t n;  // rows of the minibatch: the first n of each probe's window
  const float* params_in;
  const float* mu_in;
  const float* nu_in;
  const float* lr;
  const float* c1;  // Adam's bias corrections 1 - beta**t, per probe
  const float* c2;
  float* params;
  float* mu;
  float* nu;
  float* loss;
  int64_t width, group, window, slots;
};

// One SIMD register of floats (AVX-512: 16, else 8), loaded from any address.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
#else
constexpr int kLanes = 8;
#endif
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float)), aligned(4)));
constexpr int kRows = 4;  // rows of a minibatch worked on together: p and the gradient are loaded once for them

inline Vec Load(const float* a) { return *reinterpret_cast<const Vec*>(a); }

// The sum of a vector's lanes as a tree (halves added pairwise): 4 dependent adds, not 15.
inline float HorizontalSum(Vec v) {
  float t[kLanes];
  std::memcpy(t, &v, sizeof(t));
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int i = 0; i < width; ++i) t[i] += t[i + width];
  }
  return t[0];
}

// z[j] = x[j] . p for kRows rows, two independent vector sums per row.
inline void Dots(const float* const* x, const float* p, int64_t n, float* z) {
  Vec a[kRows][2] = {};
  int64_t d = 0;
  for (; d + 2 * kLanes <= n; d += 2 * kLanes) {
    const Vec p0 = Load(p + d), p1 = Load(p + d + kLanes);
    for (int j = 0; j < kRows; ++j) {
      a[j][0] += Load(x[j] + d) * p0;
      a[j][1] += Load(x[j] + d + kLanes) * p1;
    }
  }
  for (; d + kLanes <= n; d += kLanes) {
    const Vec p0 = Load(p + d);
    for (int j = 0; j < kRows; ++j) a[j][0] += Load(x[j] + d) * p0;
  }
  for (int j = 0; j < kRows; ++j) {
    float s = HorizontalSum(a[j][0] + a[j][1]);
    for (int64_t e = d; e < n; ++e) s += x[j][e] * p[e];
    z[j] = s;
  }
}

// grad += c[0] x[0] + ... + c[kRows - 1] x[kRows - 1], the rows added in order.
inline void Axpys(float* grad, const float* const* x, const float* c, int64_t n) {
  int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes) {
    Vec g = Load(grad + d);
    for (int j = 0; j < kRows; ++j) g += c[j] * Load(x[j] + d);
    *reinterpret_cast<Vec*>(grad + d) = g;
  }
  for (; d < n; ++d) {
    for (int j = 0; j < kRows; ++j) grad[d] += c[j] * x[j][d];
  }
}

// Probes [begin, end): the minibatch gradient, then the AdamW step.
template <bool kCls>
void RunProbes(const Step& s, int64_t begin, int64_t end) {
  std::vector<float> grad(s.width);
  const float inv_n = s.n > 0 ? 1.0f / static_cast<float>(s.n) : 0.0f;
  for (int64_t g = begin; g < end; ++g) {
    const int64_t off = g * s.width;
    const float* p = s.params_in + off;
    std::fill(grad.begin(), grad.end(), 0.0f);
    float* gr = grad.data();
    float loss = 0.0f;
    for (int64_t w0 = 0; w0 < s.n; w0 += kRows) {
      const float* x[kRows];
      float y[kRows], z[kRows], c[kRows];
      for (int j = 0; j < kRows; ++j) {  // rows past the minibatch's end repeat its first, with weight 0
        const int64_t w = w0 + j < s.n ? w0 + j : w0;
        const int64_t r = std::clamp<int64_t>(s.idx[g * s.window + w], 0, s.slots - 1);
        x[j] = s.x + r * s.width;
        y[j] = s.y[r];
      }
      Dots(x, p, s.width, z);
      for (int j = 0; j < kRows; ++j) {
        float dz, l;
        if (kCls) {  // BCE with logits, as optax.sigmoid_binary_cross_entropy
          dz = 1.0f / (1.0f + std::exp(-z[j])) - y[j];
          l = std::max(z[j], 0.0f) - z[j] * y[j] + std::log1p(std::exp(-std::fabs(z[j])));
        } else {
          dz = 2.0f * (z[j] - y[j]);
          l = (z[j] - y[j]) * (z[j] - y[j]);
        }
        const bool real = w0 + j < s.n;
        loss += real ? inv_n * l : 0.0f;
        c[j] = real ? inv_n * dz : 0.0f;
      }
      Axpys(gr, x, c, s.width);
    }
    s.loss[g] = loss;
    const float lr = s.lr[g], c1 = s.c1[g], c2 = s.c2[g];
    const float* m_in = s.mu_in + off;
    const float* v_in = s.nu_in + off;
    float *m = s.mu + off, *v = s.nu + off, *p_out = s.params + off;
#pragma omp simd
    for (int64_t d = 0; d < s.width; ++d) {  // in place when aliased: element d is read, then written
      const float md = kBeta1 * m_in[d] + kOneMinusBeta1 * gr[d];
      const float vd = kBeta2 * v_in[d] + kOneMinusBeta2 * gr[d] * gr[d];
      const float u = (md / c1) / (std::sqrt(vd / c2) + kEps) + kWeightDecay * p[d];
      m[d] = md;
      v[d] = vd;
      p_out[d] = p[d] - lr * u;
    }
  }
}

using F32 = ffi::Buffer<ffi::F32>;
using S32 = ffi::Buffer<ffi::S32>;
using Out = ffi::ResultBuffer<ffi::F32>;

template <bool kCls>
ffi::Error MinibatchStep(ffi::ThreadPool pool, F32 x, F32 y, S32 idx, S32 n, F32 params, F32 mu, F32 nu, F32 lr,
                         F32 c1, F32 c2, Out params_out, Out mu_out, Out nu_out, Out loss) {
  const auto xd = x.dimensions(), id = idx.dimensions(), pd = params.dimensions();
  if (xd.size() != 2 || id.size() != 2 || pd.size() != 2 || pd[1] != xd[1] || pd[0] != id[0] ||
      y.element_count() != xd[0] || n.element_count() != 1 || mu.element_count() != params.element_count() ||
      nu.element_count() != params.element_count() || lr.element_count() != pd[0] ||
      c1.element_count() != pd[0] || c2.element_count() != pd[0]) {
    return ffi::Error::InvalidArgument("neuco_minibatch_step: inconsistent operand shapes");
  }
  const int64_t rows = std::clamp<int64_t>(n.typed_data()[0], 0, id[1]);
  const Step step = {x.typed_data(), y.typed_data(), idx.typed_data(), rows, params.typed_data(), mu.typed_data(),
                     nu.typed_data(), lr.typed_data(), c1.typed_data(), c2.typed_data(), params_out->typed_data(),
                     mu_out->typed_data(), nu_out->typed_data(), loss->typed_data(), xd[1], id[0], id[1], xd[0]};
  ParallelFor(pool, step.group, [step](int64_t begin, int64_t end) { RunProbes<kCls>(step, begin, end); });
  return ffi::Error::Success();
}

// Held-out logits: z[g, w] = x[test[g, w]] . p_g for the first n_test rows of each probe (0 after).
// Operands: x (slots, width), test (group, test_slots) int32, n_test () int32, params (group, width).
ffi::Error HeldoutLogits(ffi::ThreadPool pool, F32 x, S32 test, S32 n_test, F32 params, Out z) {
  const auto xd = x.dimensions(), td = test.dimensions(), pd = params.dimensions();
  if (xd.size() != 2 || td.size() != 2 || pd.size() != 2 || pd[1] != xd[1] || pd[0] != td[0] ||
      n_test.element_count() != 1) {
    return ffi::Error::InvalidArgument("neuco_heldout_logits: inconsistent operand shapes");
  }
  const float *xs = x.typed_data(), *ps = params.typed_data();
  const int32_t* ts = test.typed_data();
  float* zs = z->typed_data();
  const int64_t width = xd[1], slots = xd[0], cols = td[1];
  const int64_t n = std::clamp<int64_t>(n_test.typed_data()[0], 0, cols);
  ParallelFor(pool, pd[0], [=](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      float* zg = zs + g * cols;
      for (int64_t w0 = 0; w0 < n; w0 += kRows) {
        const float* rows[kRows];
        float out[kRows];
        for (int j = 0; j < kRows; ++j) {
          const int64_t w = w0 + j < n ? w0 + j : w0;
          rows[j] = xs + std::clamp<int64_t>(ts[g * cols + w], 0, slots - 1) * width;
        }
        Dots(rows, ps + g * width, width, out);
        for (int j = 0; j < kRows && w0 + j < n; ++j) zg[w0 + j] = out[j];
      }
      std::fill(zg + n, zg + cols, 0.0f);
    }
  });
  return ffi::Error::Success();
}

}  // namespace

#define NEUCO_BIND                                                                                           \
  ffi::Ffi::Bind()                                                                                           \
      .Ctx<ffi::ThreadPool>()                                                                                \
      .Arg<F32>() /* x */                                                                                    \
      .Arg<F32>() /* y */                                                                                    \
      .Arg<S32>() /* idx */                                                                                  \
      .Arg<S32>() /* n */                                                                                    \
      .Arg<F32>() /* params */                                                                               \
      .Arg<F32>() /* mu */                                                                                   \
      .Arg<F32>() /* nu */                                                                                   \
      .Arg<F32>() /* lr */                                                                                   \
      .Arg<F32>() /* c1 */                                                                                   \
      .Arg<F32>() /* c2 */                                                                                   \
      .Ret<F32>()                                                                                            \
      .Ret<F32>()                                                                                            \
      .Ret<F32>()                                                                                            \
      .Ret<F32>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(NeucoMinibatchStepCls, MinibatchStep<true>, NEUCO_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeucoMinibatchStepReg, MinibatchStep<false>, NEUCO_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeucoHeldoutLogits, HeldoutLogits,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>() /* x */
                                  .Arg<S32>() /* test */
                                  .Arg<S32>() /* n_test */
                                  .Arg<F32>() /* params */
                                  .Ret<F32>());
