"""The SVM probe's solver: libsvm's dual SMO for every fold x candidate of a task at once.

The reference fits scikit-learn's SVC (labels 0 -> -1) and SVR, both libsvm,
kernel poly K(x, x') = (gamma <x, x'> + coef0)^degree. Per problem (one fold
and one candidate (C, degree, gamma, coef0, epsilon)) the solver minimises
libsvm's dual over l variables a:

  min_a  1/2 a^T Q a + p^T a,   0 <= a_t <= U_t,   s^T a = 0,   Q_tu = s_t s_u K(row_t, row_u)
  SVC:   l = n, row_t = t, s = y in {-1, +1}, p = -1, U = C * train
  SVR:   l = 2n, a = [a+, a-], row_t = t mod n, s = [+1, -1], p = [eps - y, eps + y], U = C * [train, train]

with libsvm's solver (Fan, Chen, Lin 2005; no shrinking): gradient g = Qa + p,
kept in float64; working pair i = argmax over I_up of -s_t g_t, j = argmin
over I_low of the second-order gain -(g_diff)^2 / max(K_ii + K_jj - 2 K_ij,
tau=1e-12); libsvm's two-variable update with clipping; stop when the
maximal violation m(a) - M(a) < tol (1e-3, scikit-learn's default) or at
`max_iter`. Bias b = -rho: the mean of s_t g_t over free variables
(0 < a_t < U_t), else the midpoint of its bounds. Decision f(x) = sum_t
coef_t K(x_t, x) + b with coef = s * a (SVC; predicts +1 when f >= 0, see
`heldout_metrics`) or a+ - a- (SVR).

Axes: problems (folds x candidates, flattened) x variables. One Gram matrix
G = X X^T (n, n) per task serves every problem: a candidate's kernel row is
(gamma G[r] + coef0)^degree, formed on demand (two rows per iteration). Fold
membership is a mask: held-out rows get U = 0, so they are at both bounds,
never enter a working pair or the bias, and keep a = 0. All problems of a
chunk run in one `lax.while_loop` (vmapped: a problem that has converged
stops changing while the others run on); chunks bound memory. On one CPU
device the same steps run in a native kernel (neuco_jax.native, smo.cc) where
it is built: each problem loops to its own end, no lockstep. Problems that
reach `max_iter` are reported (`converged` False), never silently scored.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuco_jax import native as native_kernels
from neuco_jax.probes import search
from neuco_jax.probes.folds import GroupPass, ResultsOf, TaskFolds, shuffle_folds
from neuco_jax.probes.stored import KernelProbe
from neuco_jax.runtime import global_array, select_devices

TOL = 1e-3  # scikit-learn's SVC/SVR tol
TAU = 1e-12  # libsvm's floor on the pair's curvature
SVR_EPSILON = 0.1  # scikit-learn's SVR default
CHUNK_ELEMENTS = 1 << 22  # problems x variables per chunk: ~32 MiB per float64 state vector


class Candidate(NamedTuple):
    """One point of the search space; gamma None is scikit-learn's 'scale' (1 / (d * var(X_train)))."""

    C: float
    degree: int
    gamma: float | None = None
    coef0: float = 0.0
    epsilon: float = SVR_EPSILON


class DualSolution(NamedTuple):
    """The solved problems, numpy arrays, one row per problem.

    coef: (problems, n) dual coefficients per row (s * a, or a+ - a- for SVR); 0 on held-out rows.
    intercept: (problems,) b = -rho.
    objective: (problems,) the dual objective 1/2 a^T Q a + p^T a (libsvm's obj).
    iterations: (problems,) SMO steps taken.
    converged: (problems,) False where max_iter stopped the problem before tol.
    decision: (problems, n) f at every row of the task (training and held-out), read off the final
      gradient: the first n entries of Qa = g - p are s_t (f_t - b), so f = s (g - p) + b there.
    """

    coef: np.ndarray
    intercept: np.ndarray
    objective: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    decision: np.ndarray


def default_max_iter(n_variables: int, lockstep: bool = True) -> int:
    """The SMO step cap. The native kernel (no lockstep): libsvm's own, max(1e7, 100 l). The XLA loop:
    max(1e6, 100 l), since a lockstep chunk waits on its slowest problem. libsvm itself needs up to
    ~1,000 l steps at C 1e3 on small tasks (tests/test_svm.py's 270-row folds: 64k-277k steps), which the
    1e6 floor covers; problems that reach the cap are counted and reported (`converged` False), never scored."""
    return max(1_000_000 if lockstep else 10_000_000, 100 * n_variables)


def gram_matrix(x: np.ndarray) -> np.ndarray:
    """G = X X^T in float64 (scikit-learn fits on float64 copies): (n, n)."""
    x = np.asarray(x, np.float64)
    return x @ x.T


def gamma_scale(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """scikit-learn's gamma='scale' per fold: 1 / (n_features * X_train.var()), (folds,) from train (folds, n_train)."""
    x = np.asarray(x, np.float64)
    out = np.empty(len(train))
    for f, rows in enumerate(train):
        var = x[rows].var()
        out[f] = 1.0 / (x.shape[1] * var) if var != 0 else 1.0  # scikit-learn's rule for a constant X
    return out


def _poly(base, degree, max_degree: int):
    """base ** degree for a traced integer degree <= max_degree (exact products, negative bases allowed)."""
    out = jnp.ones_like(base)
    for k in range(max_degree):
        out = jnp.where(k < degree, out * base, out)
    return out


def _last_argmax(v):
    """libsvm keeps the last of equal extremes (its `>=` scans); argmax keeps the first."""
    return v.shape[0] - 1 - jnp.argmax(v[::-1])


def _solve_one(gram, sign, p, upper, gamma, coef0, degree, *, regression, max_degree, tol, max_iter):
    """One problem's SMO (see the module docstring); vmapped over problems by `_solve_chunk`."""
    n = gram.shape[0]

    def kernel_row(t):
        k = _poly(gamma * gram[t % n] + coef0, degree, max_degree)
        return jnp.concatenate([k, k]) if regression else k

    diag = _poly(gamma * jnp.diagonal(gram) + coef0, degree, max_degree)
    kdiag = jnp.concatenate([diag, diag]) if regression else diag

    def cond(state):
        _, _, it, done = state
        return ~done & (it < max_iter)

    def body(state):
        alpha, grad, it, _ = state
        at_upper, at_lower = alpha >= upper, alpha <= 0
        in_up = jnp.where(sign > 0, ~at_upper, ~at_lower)
        in_low = jnp.where(sign > 0, ~at_lower, ~at_upper)
        v = jnp.where(in_up, -sign * grad, -jnp.inf)
        i = _last_argmax(v)
        gmax = v[i]
        gmax2 = jnp.max(jnp.where(in_low, sign * grad, -jnp.inf))
        k_i = kernel_row(i)
        diff = gmax + sign * grad
        quad = kdiag[i] + kdiag - 2.0 * k_i
        quad = jnp.where(quad > 0, quad, TAU)
        gain = jnp.where(in_low & (diff > 0), -diff * diff / quad, jnp.inf)
        j = _last_argmax(-gain)
        done = (gmax + gmax2 < tol) | ~jnp.isfinite(gain[j])

        k_j = kernel_row(j)
        q_i, q_j = sign[i] * sign * k_i, sign[j] * sign * k_j
        c_i, c_j = upper[i], upper[j]
        a_i, a_j = alpha[i], alpha[j]
        q_ij = q_i[j]
        # libsvm's update (Solver::Solve): the pair moves along s_i a_i + s_j a_j = const, then is clipped.
        opposite = sign[i] != sign[j]
        curv = jnp.where(opposite, kdiag[i] + kdiag[j] + 2.0 * q_ij, kdiag[i] + kdiag[j] - 2.0 * q_ij)
        curv = jnp.where(curv > 0, curv, TAU)
        # y_i != y_j
        delta = (-grad[i] - grad[j]) / curv
        d = a_i - a_j
        oi, oj = a_i + delta, a_j + delta
        oi, oj = jnp.where(d > 0, jnp.where(oj < 0, d, oi), jnp.where(oi < 0, 0.0, oi)), \
            jnp.where(d > 0, jnp.where(oj < 0, 0.0, oj), jnp.where(oi < 0, -d, oj))
        hi = d > c_i - c_j
        oi, oj = jnp.where(hi, jnp.where(oi > c_i, c_i, oi), jnp.where(oj > c_j, c_j + d, oi)), \
            jnp.where(hi, jnp.where(oi > c_i, c_i - d, oj), jnp.where(oj > c_j, c_j, oj))
        # y_i == y_j
        delta = (grad[i] - grad[j]) / curv
        s = a_i + a_j
        si, sj = a_i - delta, a_j + delta
        hi = s > c_i
        si, sj = jnp.where(hi, jnp.where(si > c_i, c_i, si), jnp.where(sj < 0, s, si)), \
            jnp.where(hi, jnp.where(si > c_i, s - c_i, sj), jnp.where(sj < 0, 0.0, sj))
        hi = s > c_j
        si, sj = jnp.where(hi, jnp.where(sj > c_j, s - c_j, si), jnp.where(si < 0, 0.0, si)), \
            jnp.where(hi, jnp.where(sj > c_j, c_j, sj), jnp.where(si < 0, s, sj))
        new_i, new_j = jnp.where(opposite, oi, si), jnp.where(opposite, oj, sj)

        step = ~done
        da_i, da_j = jnp.where(step, new_i - a_i, 0.0), jnp.where(step, new_j - a_j, 0.0)
        alpha = alpha.at[i].add(da_i).at[j].add(da_j)
        grad = grad + q_i * da_i + q_j * da_j
        return alpha, grad, it + step.astype(it.dtype), done

    state = (jnp.zeros_like(p), p, jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    alpha, grad, it, done = jax.lax.while_loop(cond, body, state)

    # libsvm's calculate_rho over the active (training) variables.
    active = upper > 0
    at_upper, at_lower = alpha >= upper, alpha <= 0
    yg = sign * grad
    ub_set = active & ((at_upper & (sign < 0)) | (at_lower & ~at_upper & (sign > 0)))
    lb_set = active & ((at_upper & (sign > 0)) | (at_lower & ~at_upper & (sign < 0)))
    free = active & ~at_upper & ~at_lower
    n_free = jnp.sum(free)
    rho = jnp.where(n_free > 0, jnp.sum(jnp.where(free, yg, 0.0)) / jnp.maximum(n_free, 1),
                    (jnp.min(jnp.where(ub_set, yg, jnp.inf)) + jnp.max(jnp.where(lb_set, yg, -jnp.inf))) / 2)
    objective = jnp.sum(alpha * (grad + p)) / 2
    coef = alpha[:n] - alpha[n:] if regression else sign * alpha
    decision = (sign * (grad - p))[:n] - rho
    return coef, -rho, objective, it, done, decision


@functools.cache
def _solver(devices: tuple, *, regression: bool, max_degree: int, tol: float, max_iter: int):
    """The jitted solver of a chunk of problems, sharded over `devices` (one mesh axis, "problems").

    Each device runs its own problems' loop (shard_map): no device waits on another's slowest
    problem, and nothing crosses devices until the replicated results. The Gram matrix and the
    shared signs are replicated. Returns (solve, mesh).
    """
    mesh = jax.sharding.Mesh(np.array(devices), ("problems",))
    solve = partial(_solve_one, regression=regression, max_degree=max_degree, tol=tol, max_iter=max_iter)
    batched = jax.vmap(solve, in_axes=(None, None, 0, 0, 0, 0, 0))
    P = jax.sharding.PartitionSpec
    # check_vma off: the loop carries per-problem counters that start as unvarying constants.
    sharded = jax.shard_map(batched, mesh=mesh, in_specs=(P(), P(), *[P("problems")] * 5), out_specs=P("problems"),
                            check_vma=False)
    return jax.jit(sharded, out_shardings=jax.sharding.NamedSharding(mesh, P())), mesh


@functools.cache
def _native_solver(*, regression: bool, tol: float, max_iter: int):
    """The jitted native solver of a chunk of problems (one CPU device), or None if it is not built."""
    solve = native_kernels.smo(regression, tol, max_iter)
    return None if solve is None else jax.jit(solve)


def uses_native(devices, native: bool = True) -> bool:
    """Whether solve_dual takes the native kernel: one CPU device and the kernel built (not NEUCO_JAX_NATIVE=0)."""
    return native and len(devices) == 1 and devices[0].platform == "cpu" and native_kernels.available()


def _problem_arrays(y, train_mask, C, epsilon, regression):
    """sign (l,) shared by every problem; p, U (problems, l)."""
    P, n = train_mask.shape
    if regression:
        sign = np.concatenate([np.ones(n), -np.ones(n)])
        p = np.concatenate([epsilon[:, None] - y[None], epsilon[:, None] + y[None]], axis=1)
        upper = np.tile(C[:, None] * train_mask, 2)
    else:
        sign = y.astype(np.float64)
        p = -np.ones((P, n))
        upper = C[:, None] * train_mask
    return sign, p, upper


def solve_dual(gram, y, train_mask, C, degree, gamma, coef0, epsilon=None, *, regression: bool,
               tol: float = TOL, max_iter: int | None = None, devices=None, native: bool = True) -> DualSolution:
    """Solve libsvm's SVC or SVR dual for many problems sharing one task's Gram matrix.

    Args:
      gram: (n, n) G = X X^T of the task's rows (float64).
      y: (n,) labels: -1/+1 for classification, real for regression.
      train_mask: (problems, n) bool, the rows each problem trains on.
      C, degree, gamma, coef0: (problems,) hyperparameters (gamma resolved: no 'scale' here).
      epsilon: (problems,) SVR's epsilon (regression only).
      regression: SVR if True, else SVC.
      tol: stop when the maximal violation is below it (scikit-learn's tol).
      max_iter: SMO step cap per problem; default `default_max_iter(l)` (libsvm's on the native kernel).
      devices: the devices to shard problems over (default: all of JAX's default backend).
      native: take the native kernel where it applies (`uses_native`); False keeps the XLA solver.

    Returns:
      DualSolution, one row per problem.
    """
    train_mask = np.asarray(train_mask, bool)
    P, n = train_mask.shape
    C, degree, gamma, coef0 = (np.broadcast_to(np.asarray(v, np.float64), (P,)) for v in (C, degree, gamma, coef0))
    epsilon = np.broadcast_to(np.asarray(SVR_EPSILON if epsilon is None else epsilon, np.float64), (P,))
    y = np.asarray(y, np.float64)
    l = 2 * n if regression else n
    devices = tuple(devices or jax.devices())
    native = uses_native(devices, native)
    max_iter = default_max_iter(l, lockstep=not native) if max_iter is None else max_iter
    max_degree = int(degree.max())
    sign, p, upper = _problem_arrays(y, train_mask, C, epsilon, regression)
    # Chunks of a multiple of the device count (the padding repeats the last problem; dropped below).
    chunk = -(-max(1, min(P, CHUNK_ELEMENTS // l)) // len(devices)) * len(devices)
    n_chunks = math.ceil(P / chunk)
    pad = lambda a: np.concatenate([a, np.repeat(a[-1:], n_chunks * chunk - P, axis=0)])  # noqa: E731
    p, upper, gamma, coef0, degree = map(pad, (p, upper, gamma, coef0, degree.astype(np.int32)))
    parts = []
    gram = np.asarray(gram, np.float64)
    with jax.enable_x64(True):
        if native:
            solve = _native_solver(regression=regression, tol=float(tol), max_iter=int(max_iter))
            g, s, put = gram, sign, lambda a: a  # noqa: E731
        else:
            solve, mesh = _solver(devices, regression=regression, max_degree=max_degree, tol=float(tol),
                                  max_iter=int(max_iter))
            g, s = global_array(gram, mesh), global_array(sign, mesh)
            put = lambda a: global_array(a, mesh, "problems")  # noqa: E731
        for c in range(n_chunks):
            sl = slice(c * chunk, (c + 1) * chunk)
            parts.append(jax.device_get(solve(g, s, *(put(a[sl]) for a in (p, upper, gamma, coef0, degree)))))
    coef, b, obj, it, done, f = (np.concatenate(a)[:P] for a in zip(*parts))
    return DualSolution(coef=coef, intercept=b, objective=obj, iterations=it, converged=done, decision=f)


class TaskData(NamedTuple):
    """One task's arrays, shared by every round of its search: built once by `task_data`.

    x: (n, d) float64 rows; y: (n,) -1/+1 (SVC) or real (SVR); gram: (n, n) X X^T;
    train, test: (folds, n_train), (folds, n_test) positions; mask: (folds, n) training rows;
    scale: (folds,) gamma 'scale' of each fold's training rows;
    outer: (folds, n_outer) positions scored beside `test`, or None: with selection nested `test` is
      the inner validation split (candidates are chosen on it) and `outer` the fold's held-out rows.
    """

    x: np.ndarray
    y: np.ndarray
    gram: np.ndarray
    train: np.ndarray
    test: np.ndarray
    mask: np.ndarray
    scale: np.ndarray
    outer: np.ndarray | None = None


def task_data(x, y, train, test, regression: bool, outer=None) -> TaskData:
    """The shared arrays of one task (labels 0/1 or -1/+1 become -1/+1 for SVC)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if not regression:
        y = np.where(y > 0, 1.0, -1.0)
    train, test = np.asarray(train), np.asarray(test)
    mask = np.zeros((len(train), len(x)), bool)
    np.put_along_axis(mask, train, True, axis=1)
    return TaskData(x, y, gram_matrix(x), train, test, mask, gamma_scale(x, train),
                    None if outer is None else np.asarray(outer))


class FoldScores(NamedTuple):
    """What the reference's BayesSearchCV reports for one task, for a given list of candidates.

    metric: (folds, candidates) held-out F1 of the +1 class or R^2 (scikit-learn's f1 / r2 scorers).
    scoring: (folds, candidates) held-out accuracy or negative mean squared error (the refit criterion).
    train_scoring: (folds, candidates) the same on the fold's training rows (return_train_score).
    heldout: (folds, candidates, n_test) held-out decision values.
    converged: (folds, candidates) False where the solver hit max_iter; those cells are NaN, not scored.
    outer_metric, outer_heldout: as metric and heldout on TaskData.outer's rows, or None.
    """

    metric: np.ndarray
    scoring: np.ndarray
    train_scoring: np.ndarray
    heldout: np.ndarray
    converged: np.ndarray
    outer_metric: np.ndarray | None = None
    outer_heldout: np.ndarray | None = None

    @property
    def fold_scores(self) -> np.ndarray:
        """(folds,) a fold's score: the max over candidates of its metric (NaN: no converged candidate)."""
        return _best_per_fold(self.metric)

    @property
    def objective(self) -> np.ndarray:
        """(candidates,) the search's objective: mean 'scoring' over folds (NaN: no converged fold)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(self.scoring, axis=0)

    @property
    def winner(self) -> int:
        """The refit winner: the candidate of best mean scoring (the first of ties; NaN ranks last)."""
        mean = self.objective
        return int(np.argmax(np.where(np.isnan(mean), -np.inf, mean)))


def _best_per_fold(metric: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a fold with no converged candidate: NaN
        return np.nanmax(metric, axis=1)


def concatenate(parts: list[FoldScores]) -> FoldScores:
    """Rounds of a search as one FoldScores, candidates in the order they were fitted."""
    return FoldScores(*(None if a[0] is None else np.concatenate(a, axis=1) for a in zip(*parts)))


def heldout_metrics(y, f, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """(metric, scoring) over the last axis, as scikit-learn scores: y, f (..., m); y in {-1, +1} for SVC.

    F1 of the +1 class with prediction f >= 0 (0 when there is no positive at all); accuracy.
    R^2 = 1 - SS_res / SS_tot (SS_tot 0: 1 if SS_res is 0, else 0); negative MSE.

    The tie f == 0 goes to +1, as scikit-learn's SVC.predict: libsvm sorts the labels, trains with
    the first (-1) as its positive class, so its decision is -f, and svm_predict votes for the first
    class only when that decision is > 0. Exact ties arise where every kernel value is 0
    (constant embeddings, coef0 0): f is 0 on every row whenever a fold trains on as many -1 as +1.
    """
    if regression:
        res = np.sum((y - f) ** 2, axis=-1)
        tot = np.sum((y - y.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
        r2 = np.where(tot > 0, 1 - res / np.where(tot > 0, tot, 1), np.where(res > 0, 0.0, 1.0))
        return r2, -res / y.shape[-1]
    pred, pos = f >= 0, y > 0
    tp = np.sum(pred & pos, axis=-1)
    wrong = np.sum(pred != pos, axis=-1)
    f1 = np.where(tp + wrong > 0, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0)
    return f1, np.mean(pred == pos, axis=-1)


def resolved_gamma(candidate: Candidate, scale: float) -> float:
    """The candidate's gamma, with None ('scale') resolved from the fitted rows."""
    return scale if candidate.gamma is None else candidate.gamma


def fit_candidates(data: TaskData, candidates: list[Candidate], *, regression: bool, tol: float = TOL,
                   max_iter: int | None = None, devices=None) -> FoldScores:
    """Every candidate on every fold of one task, as one batch of problems (fold-major)."""
    folds, nc = len(data.train), len(candidates)
    fold_of = np.repeat(np.arange(folds), nc)
    cand = [candidates[c] for c in np.tile(np.arange(nc), folds)]
    gamma = np.array([resolved_gamma(c, data.scale[f]) for f, c in zip(fold_of, cand)])
    C, degree, coef0, epsilon = (np.array([getattr(c, k) for c in cand]) for k in ("C", "degree", "coef0", "epsilon"))
    sol = solve_dual(data.gram, data.y, data.mask[fold_of], C, degree, gamma, coef0, epsilon, regression=regression,
                     tol=tol, max_iter=max_iter, devices=devices)
    converged = sol.converged.reshape(folds, nc)
    cells = lambda a: np.where(converged, a.reshape(folds, nc), np.nan)  # noqa: E731

    def scored(rows):  # (folds, t) positions -> metric, scoring (folds, candidates), decisions (folds, nc, t)
        f = np.take_along_axis(sol.decision, rows[fold_of], axis=1)
        metric, scoring = heldout_metrics(data.y[rows[fold_of]], f, regression)
        return cells(metric), cells(scoring), f.reshape(folds, nc, -1)

    metric, scoring, f_test = scored(data.test)
    _, train_scoring, _ = scored(data.train)
    outer_metric, _, f_outer = scored(data.outer) if data.outer is not None else (None, None, None)
    return FoldScores(metric=metric, scoring=scoring, train_scoring=train_scoring, heldout=f_test,
                      converged=converged, outer_metric=outer_metric, outer_heldout=f_outer)


def cv_scores(x, y, train, test, candidates: list[Candidate], *, regression: bool, tol: float = TOL,
              max_iter: int | None = None) -> FoldScores:
    """Every candidate on every fold of one task: the reference's per-fold SVM protocol, batched.

    Args:
      x: (n, d) the task's embeddings; y: (n,) labels (0/1 or -1/+1 for classification, real for regression).
      train, test: (folds, n_train), (folds, n_test) row positions (neuco_jax.plan.shuffle_split).
      candidates: the hyperparameters to fit (gamma None: 'scale' from each fold's training rows).
      regression: SVR and R^2 / MSE if True, else SVC and F1 / accuracy.

    Returns:
      FoldScores.
    """
    return fit_candidates(task_data(x, y, train, test, regression), candidates, regression=regression, tol=tol,
                          max_iter=max_iter)


# The refit winner's parameters as the reference's `hyperparamaters` holds them (scikit-learn's
# get_params, the keys that describe the fitted model; gamma 'scale' unless searched).
def _parameters(c: Candidate, regression: bool) -> dict:
    params = {"C": c.C, "coef0": c.coef0, "degree": c.degree, "gamma": "scale" if c.gamma is None else c.gamma,
              "kernel": "poly", "tol": TOL}
    return {**params, "epsilon": c.epsilon} if regression else params


def run(bench, config, fraction: float = 1.0, refit: bool = False):
    """The SVM probe for every task of one method: the search, its per-fold scores and (refit) stored probes.

    Per task: the folds of the linear probe (ShuffleSplit(k_folds, test_size 0.1, seed)); the
    search (neuco_jax.probes.search) spends `n_iter` candidates, each fitted on every fold;
    a fold's score is the max over candidates of its held-out F1 / R^2; the refit winner (best
    mean held-out accuracy / negative MSE) is refitted on all of the task's rows. Fits that
    reach the step cap are left out of every max and mean, counted, and reported with a warning.
    With `selection: nested` each fold trains on its training rows less an inner validation split
    (neuco_jax.plan.inner_split), the search's objective and the refit winner are read on the
    validation splits, and a fold's score is its held-out F1 / R^2 at the candidate that scores
    best on its validation split (the test_fold rule's max over candidates is kept beside it).

    Args:
      bench: the method's Prepared; config: the run's Config (probe_type svm).
      fraction: the label fraction: each fold trains on its first round(fraction * n_train) rows.
      refit: also return the refitted winners as stored probes (`store_probes`).

    Returns:
      (TaskFolds per task, KernelProbes per task or None). Each TaskFolds' train_loss /
      test_loss are the reference's per-fold curves over candidates (training and held-out
      'scoring'); its held-out values are those of the candidate that gave the fold's score.
    """
    params = config.svm
    seed = config.seed if params.random_state is None else params.random_state
    devices = select_devices(config.device)
    folds, probes = [], []
    for t, task in enumerate(bench.tasks):
        regression = not task.is_classification
        train, test, val = shuffle_folds(bench, t, config.k_folds, config.seed, fraction, config.selection)
        nested = val is not None
        # Nested: candidates are scored (and chosen) on the validation split, the held-out rows are `outer`.
        data = task_data(bench.x[bench.rows[t]], task.labels, train, val if nested else test, regression,
                         outer=test if nested else None)
        rounds = []

        def evaluate(points):
            rounds.append(fit_candidates(data, [Candidate(**p) for p in points], regression=regression,
                                         devices=devices))
            return rounds[-1].objective

        candidates = [Candidate(**p) for p in search.search(params, regression, seed, evaluate)]
        scores = concatenate(rounds)
        failed = int((~scores.converged).sum())
        if failed:
            warnings.warn(f"task '{task.name}': {failed} of {scores.converged.size} SVM fits stopped at the step "
                          f"cap before converging; they are not scored", stacklevel=2)
        winner = candidates[scores.winner]
        hyper = {**_parameters(winner, regression), "candidates": len(candidates), "fits_not_converged": failed}
        # The candidate behind each fold's score: the best on the held-out rows, or (nested) on validation.
        best = np.argmax(np.where(np.isnan(scores.metric), -np.inf, scores.metric), axis=1)
        fold_scores, heldout, test_fold = scores.fold_scores, scores.heldout, None
        if nested:
            k = np.arange(len(best))
            test_fold = _best_per_fold(scores.outer_metric)
            fold_scores = np.where(np.isnan(scores.metric).all(axis=1), np.nan, scores.outer_metric[k, best])
            heldout = scores.outer_heldout
            hyper = {**hyper, "selection": "nested", "selected_candidates": best.tolist()}
        folds.append(TaskFolds(
            task.name, task.task_type, fold_scores, hyper, [task.labels[f] for f in test],
            [heldout[k, c] for k, c in enumerate(best)], metric_rule="libsvm",
            train_loss=scores.train_scoring, test_loss=scores.scoring, curve_axis="candidate", n_train=train.shape[1],
            test_fold_scores=test_fold))
        if refit:
            everything = np.arange(len(data.x))[None]
            gamma = resolved_gamma(winner, gamma_scale(data.x, everything)[0])
            sol = solve_dual(data.gram, data.y, np.ones((1, len(data.x)), bool), winner.C, winner.degree, gamma,
                             winner.coef0, winner.epsilon, regression=regression, devices=devices)
            support = np.flatnonzero(sol.coef[0])
            probes.append(KernelProbe(
                task=task.name, task_type=task.task_type, support_vectors=bench.x[bench.rows[t]][support],
                dual_coef=sol.coef[0, support], b=float(sol.intercept[0]), gamma=float(gamma),
                coef0=float(winner.coef0), degree=int(winner.degree), mean=bench.mean, std=bench.std,
                hyperparameters={**hyper, "refit_rows": len(data.x), "refit_converged": bool(sol.converged[0])}))
    return folds, (probes if refit else None)


def run_pass(p: GroupPass) -> ResultsOf:
    """The probe interface (folds.py): every method of the group, one after another (one label fraction:
    the config allows no ablations)."""
    t0 = time.perf_counter()
    (fraction,) = p.fractions
    runs = [run(bench, p.config, fraction, refit=p.config.store_probes) for _, bench in p.group]
    p.compiled_one()
    p.timings["train"] += time.perf_counter() - t0
    return lambda slot, variant, bench: runs[slot]
