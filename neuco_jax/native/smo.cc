// libsvm's dual SMO for a batch of problems on CPU: an XLA FFI handler.
//
// The same computation as neuco_jax.probes.svm._solve_one (read its module docstring for the
// maths): per problem, minimise 1/2 a^T Q a + p^T a over 0 <= a <= U, s^T a = 0, with libsvm's
// second-order working-pair selection (the last of equal extremes, as libsvm's `>=` scans), its
// two-variable update and clipping, its stopping rule (m(a) - M(a) < tol, or no pair with a
// finite gain) and its bias. The XLA solver runs a chunk of problems in lockstep (every step
// pays for every problem until the slowest stops); here each problem runs its own loop to its
// own end, problems are taken one at a time by XLA's intra-op threads, and a step is two
// vectorised passes over the variables: choose j while forming K_i, then update the gradient
// while forming K_j and choosing the next step's i. No kernel cache (a row costs about as much to
// form from the Gram row as to read) and no shrinking: libsvm's shrinking was tried on the demo
// data's slow problems and kept 47% (SVR, epsilon 0.01) to 86% (SVC, random labels) of the
// training variables active, since most are free support vectors there, while packing the active
// set turns the passes' contiguous Gram reads into gathers: no faster per solve (1.0-1.15x).
//
// The values are XLA's up to rounding, not to the bit: where a compiler contracts a * b + c into
// one FMA differs between XLA and this file. The path is the same until an exact tie in the
// selection (after a pair update the two gradients are equal in exact arithmetic, so the next
// choice between them rests on the last bit); from there the two solvers take different pairs
// to the same stopping rule.
//
// Kernel rows come from the shared Gram row: K[t, u] = (gamma G[t mod n, u] + coef0)^degree,
// the power taken by `degree` multiplications from 1, as svm._poly does. float64 throughout.
//
// Operands: gram (n, n), sign (l,), p (P, l), upper (P, l), gamma, coef0 (P,) float64,
// degree (P,) int32; attributes regression (l = 2n, else l = n), tol, max_iter.
// Results: coef (P, n), intercept (P,) = -rho, objective (P,), iterations (P,) int32,
// converged (P,) bool, decision (P, n).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using neuco::ParallelFor;

namespace {

constexpr double kTau = 1e-12;  // svm.TAU: libsvm's floor on a pair's curvature
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Batch {
  const double* gram;  // (n, np): the Gram matrix, rows padded with zeros to np, a multiple of kLanes
  const double* sign;
  const double* p;
  const double* upper;
  const double* gamma;
  const double* coef0;
  const int32_t* degree;
  double* coef;
  double* intercept;
  double* objective;
  int32_t* iterations;
  bool* converged;
  double* decision;
  int64_t n, np, segments;  // l = segments * n; variable t = s n + u is stored at s np + u
  double tol;
  int64_t max_iter;
};

// Four lanes of doubles and their masks / indices, loaded from any address.
constexpr int64_t kLanes = 4;
typedef double V __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));
typedef int64_t M __attribute__((vector_size(kLanes * sizeof(int64_t)), aligned(8)));
inline V LoadV(const double* a) { return *reinterpret_cast<const V*>(a); }
inline M LoadM(const int64_t* a) { return *reinterpret_cast<const M*>(a); }
inline V Splat(double x) { return V{} + x; }

// (gamma g + coef0)^degree by `degree` multiplications from 1 (svm._poly), four lanes or one value.
template <typename T>
inline T Poly(T g, double gamma, double coef0, int32_t degree) {
  const T base = gamma * g + coef0;
  T out = T{} + 1.0;  // 1 in every lane
  for (int32_t d = 0; d < degree; ++d) out *= base;
  return out;
}

// A running last-argmax in every lane: lane k sees positions t + k, each lane keeps the last of its
// equal maxima; the result is the largest position among the lanes that hold the maximum.
struct LastArgmax {
  V best;
  M at = M{};
  explicit LastArgmax(double init) : best(Splat(init)) {}
  void See(V v, M pos) {
    const M take = v >= best;
    best = take ? v : best;
    at = take ? pos : at;
  }
  void Result(double* value, int64_t* pos) const {
    double b = best[0];
    for (int k = 1; k < kLanes; ++k) b = best[k] > b ? best[k] : b;
    int64_t a = -1;
    for (int k = 0; k < kLanes; ++k) a = best[k] == b && at[k] > a ? at[k] : a;
    *value = b, *pos = a;
  }
};

// Problem q's solve. G = s g (libsvm's y_t G_t): products with s are exact, so G is s g to the bit,
// and the selection reads it directly. up / low: -1 where t is in I_up / I_low (they change at i and
// j only). Buffers: G, alpha, up, low (segments * np), kd, ki (np).
void SolveOne(const Batch& b, int64_t q, double* G, double* alpha, int64_t* up, int64_t* low, double* kd, double* ki) {
  const int64_t n = b.n, np = b.np, l = b.segments * n;
  const double gamma = b.gamma[q], coef0 = b.coef0[q];
  const int32_t degree = b.degree[q];
  const double* p = b.p + q * l;
  const double* upper = b.upper + q * l;
  auto real = [&](int64_t t) { return t / np * n + t % np; };  // stored position -> variable
  auto set_masks = [&](int64_t t) {
    const int64_t r = real(t);
    const double s = b.sign[r], a = alpha[t];
    const bool at_upper = a >= upper[r], at_lower = a <= 0;
    up[t] = (s > 0 ? !at_upper : !at_lower) ? -1 : 0;
    low[t] = (s > 0 ? !at_lower : !at_upper) ? -1 : 0;
  };
  const M iota = {0, 1, 2, 3};
  const V inf = Splat(kInf), ninf = Splat(-kInf);
  for (int64_t u = 0; u < n; ++u) kd[u] = Poly(b.gram[u * np + u], gamma, coef0, degree);
  for (int64_t u = n; u < np; ++u) kd[u] = 0.0;
  // The first i: a scan in order (padding never enters: its masks are 0).
  int64_t i = -1;
  double gmax = -kInf, gmax2 = -kInf;
  for (int64_t t = 0; t < b.segments * np; ++t) {
    const bool pad = t % np >= n;
    alpha[t] = 0.0;
    G[t] = pad ? 0.0 : b.sign[real(t)] * p[real(t)];
    up[t] = low[t] = 0;
    if (pad) continue;
    set_masks(t);
    const double v = up[t] ? -G[t] : -kInf;
    if (v >= gmax) gmax = v, i = t;
    if (low[t] && G[t] > gmax2) gmax2 = G[t];
  }
  int64_t it = 0;
  bool done = false;
  while (it < b.max_iter) {
    if (gmax == -kInf) i = (b.segments - 1) * np + n - 1;  // I_up empty: _last_argmax's l - 1 (then done)
    const int64_t iu = i % np;
    // j: the last argmin over I_low of -(gmax + G)^2 / quad (masked +inf), forming K_i on the way.
    const double* gi = b.gram + iu * np;
    const double kii = kd[iu];
    LastArgmax jsel(-kInf);  // over -gain, so the last of equal minima
    for (int64_t u = 0; u < np; u += kLanes) {
      const V k = Poly(LoadV(gi + u), gamma, coef0, degree);
      *reinterpret_cast<V*>(ki + u) = k;
      V quad = kii + LoadV(kd + u) - 2.0 * k;
      quad = quad > 0 ? quad : Splat(kTau);
      for (int64_t seg = 0; seg < b.segments; ++seg) {
        const int64_t t = seg * np + u;
        const V diff = gmax + LoadV(G + t);
        const V gain = (LoadM(low + t) & (diff > 0)) != 0 ? -diff * diff / quad : inf;
        jsel.See(-gain, iota + t);
      }
    }
    double neg_best;
    int64_t j;
    jsel.Result(&neg_best, &j);
    if (gmax + gmax2 < b.tol || !std::isfinite(neg_best)) {
      done = true;
      break;
    }
    const int64_t ri = real(i), rj = real(j), ju = j % np;
    // libsvm's update (Solver::Solve): the pair moves along s_i a_i + s_j a_j = const, then is clipped.
    const double si = b.sign[ri], sj = b.sign[rj], ci = upper[ri], cj = upper[rj], ai = alpha[i], aj = alpha[j];
    const double grad_i = si * G[i], grad_j = sj * G[j];
    const double q_ij = si * sj * ki[ju];
    double new_i, new_j;
    if (si != sj) {
      double curv = kd[iu] + kd[ju] + 2.0 * q_ij;
      curv = curv > 0 ? curv : kTau;
      const double delta = (-grad_i - grad_j) / curv;
      const double d = ai - aj;
      new_i = ai + delta, new_j = aj + delta;
      if (d > 0) {
        if (new_j < 0) new_j = 0.0, new_i = d;
      } else if (new_i < 0) {
        new_i = 0.0, new_j = -d;
      }
      if (d > ci - cj) {
        if (new_i > ci) new_i = ci, new_j = ci - d;
      } else if (new_j > cj) {
        new_j = cj, new_i = cj + d;
      }
    } else {
      double curv = kd[iu] + kd[ju] - 2.0 * q_ij;
      curv = curv > 0 ? curv : kTau;
      const double delta = (grad_i - grad_j) / curv;
      const double s = ai + aj;
      new_i = ai - delta, new_j = aj + delta;
      if (s > ci) {
        if (new_i > ci) new_i = ci, new_j = s - ci;
      } else if (new_j < 0) {
        new_j = 0.0, new_i = s;
      }
      if (s > cj) {
        if (new_j > cj) new_j = cj, new_i = s - cj;
      } else if (new_i < 0) {
        new_i = 0.0, new_j = s;
      }
    }
    const double da_i = new_i - ai, da_j = new_j - aj;
    alpha[i] = ai + da_i;
    alpha[j] = aj + da_j;
    set_masks(i);
    set_masks(j);
    // G += s_i K_i da_i + s_j K_j da_j (s_t g_t += s_t Q_it da_i + ..., Q_it = s_i s_t K_it), forming K_j on
    // the way and choosing the next step's i (last argmax of -G over I_up) and gmax2 (max G over I_low).
    const double* gj = b.gram + ju * np;
    const double ci_step = si * da_i, cj_step = sj * da_j;
    LastArgmax isel(-kInf);
    V g2 = ninf;
    for (int64_t u = 0; u < np; u += kLanes) {
      const V kiv = LoadV(ki + u), kjv = Poly(LoadV(gj + u), gamma, coef0, degree);
      for (int64_t seg = 0; seg < b.segments; ++seg) {
        const int64_t t = seg * np + u;
        V g = LoadV(G + t);
        g = g + kiv * ci_step;
        g = g + kjv * cj_step;
        *reinterpret_cast<V*>(G + t) = g;
        isel.See(LoadM(up + t) != 0 ? -g : ninf, iota + t);
        const V lowg = LoadM(low + t) != 0 ? g : ninf;
        g2 = lowg > g2 ? lowg : g2;
      }
    }
    isel.Result(&gmax, &i);
    gmax2 = g2[0];
    for (int k = 1; k < kLanes; ++k) gmax2 = g2[k] > gmax2 ? g2[k] : gmax2;
    ++it;
  }

  // libsvm's calculate_rho over the active (training) variables.
  double ub = kInf, lb = -kInf, free_sum = 0.0, obj = 0.0;
  int64_t n_free = 0;
  double* coef = b.coef + q * n;
  double* decision = b.decision + q * n;
  for (int64_t seg = 0; seg < b.segments; ++seg) {
    for (int64_t u = 0; u < n; ++u) {
      const int64_t t = seg * np + u, r = seg * n + u;
      const double s = b.sign[r], a = alpha[t], yg = G[t], grad = s * G[t];
      obj += a * (grad + p[r]);
      if (seg == 0) decision[u] = s * (grad - p[r]);
      if (!(upper[r] > 0)) continue;
      const bool at_upper = a >= upper[r], at_lower = a <= 0;
      if (!at_upper && !at_lower) {
        free_sum += yg, ++n_free;
      } else if ((at_upper && s < 0) || (at_lower && !at_upper && s > 0)) {
        ub = std::fmin(ub, yg);
      } else if ((at_upper && s > 0) || (at_lower && !at_upper && s < 0)) {
        lb = std::fmax(lb, yg);
      }
    }
  }
  const double rho = n_free > 0 ? free_sum / static_cast<double>(n_free) : (ub + lb) / 2;
  for (int64_t u = 0; u < n; ++u) {
    coef[u] = b.segments == 2 ? alpha[u] - alpha[np + u] : b.sign[u] * alpha[u];
    decision[u] -= rho;
  }
  b.intercept[q] = -rho;
  b.objective[q] = obj / 2;
  b.iterations[q] = static_cast<int32_t>(it);
  b.converged[q] = done;
}

using F64 = ffi::Buffer<ffi::F64>;
using Out64 = ffi::ResultBuffer<ffi::F64>;

ffi::Error Smo(ffi::ThreadPool pool, F64 gram, F64 sign, F64 p, F64 upper, F64 gamma, F64 coef0,
               ffi::Buffer<ffi::S32> degree, bool regression, double tol, int64_t max_iter, Out64 coef,
               Out64 intercept, Out64 objective, ffi::ResultBuffer<ffi::S32> iterations,
               ffi::ResultBuffer<ffi::PRED> converged, Out64 decision) {
  const auto gd = gram.dimensions(), pd = p.dimensions();
  if (gd.size() != 2 || gd[0] != gd[1] || pd.size() != 2) {
    return ffi::Error::InvalidArgument("neuco_smo: gram must be (n, n) and p (problems, l)");
  }
  const int64_t n = gd[0], P = pd[0], l = pd[1];
  if (l != (regression ? 2 * n : n) || sign.element_count() != l || upper.element_count() != P * l ||
      gamma.element_count() != P || coef0.element_count() != P || degree.element_count() != P ||
      coef->element_count() != P * n || decision->element_count() != P * n) {
    return ffi::Error::InvalidArgument("neuco_smo: inconsistent operand shapes");
  }
  const int64_t np = (n + kLanes - 1) / kLanes * kLanes, segments = regression ? 2 : 1;
  std::vector<double> padded(n * np, 0.0);
  const double* g = gram.typed_data();
  for (int64_t r = 0; r < n; ++r) std::copy(g + r * n, g + (r + 1) * n, &padded[r * np]);
  const Batch b = {padded.data(), sign.typed_data(), p.typed_data(), upper.typed_data(), gamma.typed_data(),
                   coef0.typed_data(), degree.typed_data(), coef->typed_data(), intercept->typed_data(),
                   objective->typed_data(), iterations->typed_data(), converged->typed_data(),
                   decision->typed_data(), n, np, segments, tol, max_iter};
  ParallelFor(
      pool, P,
      [b](int64_t begin, int64_t end) {
        const int64_t size = b.segments * b.np;
        std::vector<double> G(size), alpha(size), kd(b.np), ki(b.np);
        std::vector<int64_t> up(size), low(size);
        for (int64_t q = begin; q < end; ++q) SolveOne(b, q, G.data(), alpha.data(), up.data(), low.data(), kd.data(),
                                                       ki.data());
      },
      /*chunk=*/1);  // problems differ in steps by 10x and more: hand them out one at a time
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(NeucoSmo, Smo,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F64>() /* gram */
                                  .Arg<F64>() /* sign */
                                  .Arg<F64>() /* p */
                                  .Arg<F64>() /* upper */
                                  .Arg<F64>() /* gamma */
                                  .Arg<F64>() /* coef0 */
                                  .Arg<ffi::Buffer<ffi::S32>>() /* degree */
                                  .Attr<bool>("regression")
                                  .Attr<double>("tol")
                                  .Attr<int64_t>("max_iter")
                                  .Ret<F64>() /* coef */
                                  .Ret<F64>() /* intercept */
                                  .Ret<F64>() /* objective */
                                  .Ret<ffi::Buffer<ffi::S32>>() /* iterations */
                                  .Ret<ffi::Buffer<ffi::PRED>>() /* converged */
                                  .Ret<F64>() /* decision */);
