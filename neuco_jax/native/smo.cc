// libsvm's dual SMO for a batch of problems on CPU: an XLA FFI handler.
//
// The same computation as neuco_jax.probes.svm._solve_one (read its module docstring for the
// maths): per problem, minimise 1/2 a^T Q a + p^T a over 0 <= a <= U, s^T a = 0, with libsvm's
// second-order working-pair selection (the last of equal extremes, as libsvm's `>=` scans), its
// two-variable update and clipping, its stopping rule (m(a) - M(a) < tol, or no pair with a
// finite gain) and its bias. The XLA solver runs a chunk of problems in lockstep (every step
// pays for every problem until the slowest stops); here each problem runs its own loop to its
// own end, problems are taken one at a time by XLA's intra-op threads, and a step is two
// kernel rows and three passes over the l variables (select i, select j, then the gradient
// update fused with the next step's choice of i). No kernel cache and no shrinking: shrinking
// would change the path, and a row costs about as much to form as to read.
//
// Kernel rows come from the shared Gram row: K[t, u] = (gamma G[t mod n, u] + coef0)^degree,
// the power taken by `degree` multiplications from 1, as svm._poly does. float64 throughout.
//
// Operands: gram (n, n), sign (l,), p (P, l), upper (P, l), gamma, coef0 (P,) float64,
// degree (P,) int32; attributes regression (l = 2n, else l = n), tol, max_iter.
// Results: coef (P, n), intercept (P,) = -rho, objective (P,), iterations (P,) int32,
// converged (P,) bool, decision (P, n).

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
  const double* gram;
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
  int64_t n, l;
  double tol;
  int64_t max_iter;
};

// k[u] = (gamma G[r, u] + coef0)^degree, u < n.
inline void KernelRow(const double* g, double gamma, double coef0, int32_t degree, int64_t n, double* k) {
  for (int64_t u = 0; u < n; ++u) {
    const double base = gamma * g[u] + coef0;
    double out = 1.0;
    for (int32_t d = 0; d < degree; ++d) out *= base;
    k[u] = out;
  }
}

struct Choice {
  int64_t i = 0;
  double gmax = -kInf, gmax2 = -kInf;
  // Variable t's turn in the scan: i is the last argmax of -s g over I_up (masked entries count as
  // -inf, so with I_up empty i is l - 1, as svm._last_argmax gives); gmax2 the max of s g over I_low.
  void See(int64_t t, double s, double a, double up, double g) {
    const bool at_upper = a >= up, at_lower = a <= 0;
    const bool in_up = s > 0 ? !at_upper : !at_lower, in_low = s > 0 ? !at_lower : !at_upper;
    const double v = in_up ? -s * g : -kInf;
    if (v >= gmax) gmax = v, i = t;
    if (in_low && s * g > gmax2) gmax2 = s * g;
  }
};

// Problem q's solve; alpha, grad (l) and kd, ki, kj (n) are the calling thread's buffers.
void SolveOne(const Batch& b, int64_t q, std::vector<double>& alpha_buf, std::vector<double>& grad_buf,
              std::vector<double>& kd_buf, std::vector<double>& ki_buf, std::vector<double>& kj_buf) {
  const int64_t n = b.n, l = b.l;
  const double* sign = b.sign;
  const double* p = b.p + q * l;
  const double* upper = b.upper + q * l;
  const double gamma = b.gamma[q], coef0 = b.coef0[q];
  const int32_t degree = b.degree[q];
  double *alpha = alpha_buf.data(), *grad = grad_buf.data(), *kd = kd_buf.data(), *ki = ki_buf.data(),
         *kj = kj_buf.data();
  for (int64_t u = 0; u < n; ++u) KernelRow(b.gram + u * (n + 1), gamma, coef0, degree, 1, kd + u);  // the diagonal
  Choice c;
  for (int64_t t = 0; t < l; ++t) {
    alpha[t] = 0.0;
    grad[t] = p[t];
    c.See(t, sign[t], 0.0, upper[t], p[t]);
  }
  int64_t it = 0;
  bool done = false;
  while (it < b.max_iter) {
    const int64_t i = c.i;
    const double gmax = c.gmax;
    KernelRow(b.gram + (i % n) * n, gamma, coef0, degree, n, ki);
    // j: the last argmin over I_low of the second-order gain -(gmax + s g)^2 / quad (masked: +inf).
    const double kii = kd[i % n];
    double best = kInf;
    int64_t j = 0;
    for (int64_t seg = 0; seg < l; seg += n) {
      for (int64_t u = 0; u < n; ++u) {
        const int64_t t = seg + u;
        const double s = sign[t], a = alpha[t];
        const bool at_upper = a >= upper[t], at_lower = a <= 0;
        const bool in_low = s > 0 ? !at_lower : !at_upper;
        const double diff = gmax + s * grad[t];
        double quad = kii + kd[u] - 2.0 * ki[u];
        quad = quad > 0 ? quad : kTau;
        const double gain = in_low && diff > 0 ? -diff * diff / quad : kInf;
        if (gain <= best) best = gain, j = t;
      }
    }
    if (gmax + c.gmax2 < b.tol || !std::isfinite(best)) {
      done = true;
      break;
    }
    KernelRow(b.gram + (j % n) * n, gamma, coef0, degree, n, kj);
    // libsvm's update (Solver::Solve): the pair moves along s_i a_i + s_j a_j = const, then is clipped.
    const double si = sign[i], sj = sign[j], ci = upper[i], cj = upper[j], ai = alpha[i], aj = alpha[j];
    const double q_ij = si * sj * ki[j % n];
    double new_i, new_j;
    if (si != sj) {
      double curv = kd[i % n] + kd[j % n] + 2.0 * q_ij;
      curv = curv > 0 ? curv : kTau;
      const double delta = (-grad[i] - grad[j]) / curv;
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
      double curv = kd[i % n] + kd[j % n] - 2.0 * q_ij;
      curv = curv > 0 ? curv : kTau;
      const double delta = (grad[i] - grad[j]) / curv;
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
    // g += Q_i da_i + Q_j da_j (Q_it = s_i s_t K_it), fused with the next step's choice of i.
    c = Choice();
    for (int64_t seg = 0; seg < l; seg += n) {
      for (int64_t u = 0; u < n; ++u) {
        const int64_t t = seg + u;
        const double s = sign[t];
        const double g = grad[t] + si * s * ki[u] * da_i + sj * s * kj[u] * da_j;
        grad[t] = g;
        c.See(t, s, alpha[t], upper[t], g);
      }
    }
    ++it;
  }

  // libsvm's calculate_rho over the active (training) variables.
  double ub = kInf, lb = -kInf, free_sum = 0.0, obj = 0.0;
  int64_t n_free = 0;
  for (int64_t t = 0; t < l; ++t) {
    const double s = sign[t], a = alpha[t], yg = s * grad[t];
    obj += a * (grad[t] + p[t]);
    if (!(upper[t] > 0)) continue;
    const bool at_upper = a >= upper[t], at_lower = a <= 0;
    if (!at_upper && !at_lower) {
      free_sum += yg, ++n_free;
    } else if ((at_upper && s < 0) || (at_lower && !at_upper && s > 0)) {
      ub = std::fmin(ub, yg);
    } else if ((at_upper && s > 0) || (at_lower && !at_upper && s < 0)) {
      lb = std::fmax(lb, yg);
    }
  }
  const double rho = n_free > 0 ? free_sum / static_cast<double>(n_free) : (ub + lb) / 2;
  double* coef = b.coef + q * n;
  double* decision = b.decision + q * n;
  for (int64_t u = 0; u < n; ++u) {
    coef[u] = l > n ? alpha[u] - alpha[u + n] : sign[u] * alpha[u];
    decision[u] = sign[u] * (grad[u] - p[u]) - rho;
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
  const Batch b = {gram.typed_data(), sign.typed_data(), p.typed_data(), upper.typed_data(), gamma.typed_data(),
                   coef0.typed_data(), degree.typed_data(), coef->typed_data(), intercept->typed_data(),
                   objective->typed_data(), iterations->typed_data(), converged->typed_data(),
                   decision->typed_data(), n, l, tol, max_iter};
  ParallelFor(
      pool, P,
      [b](int64_t begin, int64_t end) {
        std::vector<double> alpha(b.l), grad(b.l), kd(b.n), ki(b.n), kj(b.n);
        for (int64_t q = begin; q < end; ++q) SolveOne(b, q, alpha, grad, kd, ki, kj);
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
