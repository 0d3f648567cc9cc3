// A fused minibatch step for per-fold shuffles on CPU: an XLA FFI handler.
//
// For every probe g of a group and every row w of its window whose mask is
// non-zero, with r = idx[g, w] and x_r the r-th row of the task:
//   z = x_r . p_g,  dz = sigmoid(z) - y (classification) or 2 (z - y) (regression)
//   grad[g] += mask[w, g] * dz * x_r,  loss[g] += mask[w, g] * loss(z, y)
// Each row is read once from the cache (the dot brings it into L1 for the
// update), where the XLA path gathers the rows into a buffer and reads that
// twice. Probes are split over XLA's intra-op thread pool.
//
// Shapes: x (slots, width), idx (group, window) int32, params (group, width),
// y and mask (window, group); results grad (group, width), loss (group,).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct Step {
  const float* x;
  const int32_t* idx;
  const float* params;
  const float* y;
  const float* mask;
  float* grad;
  float* loss;
  int64_t width, group, window, slots;
};

// Eight floats, loaded from any address.
typedef float V8 __attribute__((vector_size(32), aligned(4)));

// x . p with four independent vector sums (one sum would wait on each add's latency).
inline float Dot(const float* x, const float* p, int64_t n) {
  V8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t d = 0;
  for (; d + 32 <= n; d += 32) {
    a0 += *(const V8*)(x + d) * *(const V8*)(p + d);
    a1 += *(const V8*)(x + d + 8) * *(const V8*)(p + d + 8);
    a2 += *(const V8*)(x + d + 16) * *(const V8*)(p + d + 16);
    a3 += *(const V8*)(x + d + 24) * *(const V8*)(p + d + 24);
  }
  for (; d + 8 <= n; d += 8) a0 += *(const V8*)(x + d) * *(const V8*)(p + d);
  const V8 a = (a0 + a1) + (a2 + a3);
  float z = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  for (; d < n; ++d) z += x[d] * p[d];
  return z;
}

template <bool kCls>
void RunProbes(const Step& s, int64_t begin, int64_t end) {
  for (int64_t g = begin; g < end; ++g) {
    const float* p = s.params + g * s.width;
    float* grad = s.grad + g * s.width;
    std::fill(grad, grad + s.width, 0.0f);
    float loss = 0.0f;
    for (int64_t w = 0; w < s.window; ++w) {
      const float m = s.mask[w * s.group + g];
      if (m == 0.0f) continue;
      const int64_t r = std::clamp<int64_t>(s.idx[g * s.window + w], 0, s.slots - 1);
      const float* x = s.x + r * s.width;
      const float z = Dot(x, p, s.width);
      const float y = s.y[w * s.group + g];
      float dz, l;
      if (kCls) {  // BCE with logits, as optax.sigmoid_binary_cross_entropy
        dz = 1.0f / (1.0f + std::exp(-z)) - y;
        l = std::max(z, 0.0f) - z * y + std::log1p(std::exp(-std::fabs(z)));
      } else {
        dz = 2.0f * (z - y);
        l = (z - y) * (z - y);
      }
      loss += m * l;
      const float c = m * dz;
#pragma omp simd
      for (int64_t d = 0; d < s.width; ++d) grad[d] += c * x[d];
    }
    s.loss[g] = loss;
  }
}

// Probes go in chunks; the calling thread and the pool's tasks take chunks
// from one counter, so the call finishes even if no task ever runs.
struct Shared {
  Step step;
  int64_t chunk, n_chunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
};

template <bool kCls>
void Work(Shared& sh) {
  for (int64_t c; (c = sh.next.fetch_add(1)) < sh.n_chunks;) {
    RunProbes<kCls>(sh.step, c * sh.chunk, std::min(sh.step.group, (c + 1) * sh.chunk));
    sh.done.fetch_add(1, std::memory_order_release);
  }
}

template <bool kCls>
ffi::Error WindowStep(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::S32> idx,
                      ffi::Buffer<ffi::F32> params, ffi::Buffer<ffi::F32> y, ffi::Buffer<ffi::F32> mask,
                      ffi::ResultBuffer<ffi::F32> grad, ffi::ResultBuffer<ffi::F32> loss) {
  const auto xd = x.dimensions(), id = idx.dimensions(), pd = params.dimensions();
  if (xd.size() != 2 || id.size() != 2 || pd.size() != 2 || pd[1] != xd[1] || pd[0] != id[0] ||
      y.element_count() != id[0] * id[1] || mask.element_count() != id[0] * id[1]) {
    return ffi::Error::InvalidArgument("neuco_window_step: inconsistent operand shapes");
  }
  auto sh = std::make_shared<Shared>();
  sh->step = {x.typed_data(), idx.typed_data(), params.typed_data(), y.typed_data(), mask.typed_data(),
              grad->typed_data(), loss->typed_data(), xd[1], id[0], id[1], xd[0]};
  const int64_t workers = std::max<int64_t>(1, pool.num_threads());
  sh->chunk = std::max<int64_t>(1, (sh->step.group + 4 * workers - 1) / (4 * workers));
  sh->n_chunks = (sh->step.group + sh->chunk - 1) / sh->chunk;
  for (int64_t t = 1; t < std::min(workers, sh->n_chunks); ++t) pool.Schedule([sh] { Work<kCls>(*sh); });
  Work<kCls>(*sh);
  while (sh->done.load(std::memory_order_acquire) < sh->n_chunks) std::this_thread::yield();
  return ffi::Error::Success();
}

}  // namespace

#define NEUCO_BIND                                  \
  ffi::Ffi::Bind()                                  \
      .Ctx<ffi::ThreadPool>()                       \
      .Arg<ffi::Buffer<ffi::F32>>()                 \
      .Arg<ffi::Buffer<ffi::S32>>()                 \
      .Arg<ffi::Buffer<ffi::F32>>()                 \
      .Arg<ffi::Buffer<ffi::F32>>()                 \
      .Arg<ffi::Buffer<ffi::F32>>()                 \
      .Ret<ffi::Buffer<ffi::F32>>()                 \
      .Ret<ffi::Buffer<ffi::F32>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(NeucoWindowStepCls, WindowStep<true>, NEUCO_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeucoWindowStepReg, WindowStep<false>, NEUCO_BIND);
