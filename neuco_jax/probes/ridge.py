"""The ridge probe (`probe_type: ridge`): closed-form ridge for every fold and alpha of a task in one program.

Per fold, exactly scikit-learn's RidgeCV (regression) / RidgeClassifierCV (classification,
targets -1/+1, prediction sign(decision)) with their defaults: an unpenalised intercept, alpha
chosen from `probe_params.alphas` by the efficient leave-one-out squared error on the fold's
training rows only (the first alpha of a tie), refitted at that alpha and scored on the held-out
rows with the linear probe's rules (engine._heldout_scores).

Axes: folds (k) of one task of n rows; a fold trains on m rows and leaves out the other
r = n - m (its t held-out rows among them); alphas (a); dim (d). Maths, per fold and alpha,
with X: (m, d) the fold's training rows centred by their means x_bar and y: (m,) its targets
centred by their mean y_bar (the intercept):

  w = (X^T X + alpha I)^-1 X^T y      fitted = X w      h = diag(X (X^T X + alpha I)^-1 X^T)
  LOO residual e = (y - fitted) / (1 - h - 1/m)   (1/m: the intercept's own leverage)
  alpha* = argmin_alpha mean(e^2)      b = y_bar - x_bar . w      z = x_test . w* + b*

Shapes, scikit-learn's choice: "cov" (m > d) works with C = X^T X (d, d), the task's x^T x
minus the fold's r left-out rows' (Gram downdating, r d^2 instead of m d^2), centred (a rank-1
term); "gram" (m <= d) with K = X X^T (m, m), a slice of the task's x x^T, centred. Routes:

  eigh, one factorisation per fold for every alpha:
    cov:  C = V diag(s) V^T, A = X V (m, d), g = 1 / (s + alpha)
    gram: K = Q diag(s) Q^T, A = Q (m, m),   g = s / (s + alpha)
    fitted = A diag(g) A^T y,  h = (A * A) g,  w = X^T (y - fitted) / alpha
  cholesky, one factorisation per fold and alpha:
    cov:  C + alpha I = L L^T;  [B; u^T] = [X; (X^T y)^T] L^-T, one triangular solve with all m
          training rows:  h = rowsum(B^2),  fitted = B u,  w = L^-T u
    gram: K + alpha I = L L^T,  P = L^-1: (K + alpha I)^-1 = P^T P,  c = P^T P y;
          1 - h = alpha colsum(P^2),  y - fitted = alpha c,  w = X^T c
  woodbury, one factorisation per task and alpha, every fold's hat matrix from the task's
  (exact in either shape; the rule offers it where m > d). With all n rows centred by their
  mean mu and an intercept column, Z = [x - mu, 1] (n, d + 1), and
  A = Z^T Z + alpha diag(1, .., 1, 0) = blockdiag(C_n + alpha I, n):
    C_n + alpha I = L L^T,  B = (x - mu) L^-T (n, d),  G = Z A^-1 Z^T = B B^T + 1/n (n, n).
    A fold drops its rows R from A: Z (A - Z_R^T Z_R)^-1 Z^T = G + G[:, R] S^-1 G[R, :] with
    S = I - G[R, R] = Ls Ls^T (r, r), Q = Ls^-1 G[R, :] (r, n). Its hat matrix is that on its
    training rows T, intercept included (so 1 - h stands for 1 - h - 1/m above). With y_T the
    fold's centred targets as above (the intercept fits their mean exactly: the same errors):
      h = diag(G) + colsum(Q^2);  g = G[:, T] y_T = B (B^T y_T)  (y_T sums to 0);
      v = y_T on T, S^-1 g_R on R;  theta = (A - Z_R^T Z_R)^-1 Z_T^T y_T = A^-1 Z^T v:
      w = L^-T B^T v,  fitted = B B^T v + sum(v) / n,  b = y_bar + sum(v) / n - mu . w

Route rule (`route`, `route_costs`): the route of least estimated work, in matrix-product flops
with each operation weighted by its measured cost against a product (EIGH_FLOPS, CHOLESKY,
TRIANGULAR, WOODBURY_FOLD below; downdate = 2 r d^2):
  cov   eigh      k (downdate + 11 d^3 + 2 m d^2)
        cholesky  k (downdate + a (3.4 d^3 / 3 + 1.4 m d^2))
        woodbury  a (3.4 d^3 / 3 + 1.4 n d^2 + 2 n^2 d + k 2.7 (n + 2) r^2)   (r > 0, n <= 12,000)
  gram  eigh      k 11 m^3;   cholesky  k a (3.4 m^3 / 3 + 1.4 m^3)
eigh's work does not grow with the alphas, the others' does: few alphas go to cholesky or
woodbury, many to eigh. Measured (docs/benchmarks.md, 2 cores, landcover_forest: n 4,423,
m 3,980, d 1,024, k 40): with 3 alphas eigh takes 29.2 s, cholesky 28.1 s, woodbury 13.9 s;
woodbury's time is a third of that per alpha, so it overtakes eigh at about 6 alphas (the
rule: woodbury up to 5), cholesky at about 3 (a refit on all rows, k = 1: cholesky for 1 or 2).

The d x d and n x n matrices come from task-wide sums; folds go through a `lax.map` one at a time.
Everything runs in float64 (jax.enable_x64): scikit-learn works in float64, and in float32 the
leave-one-out errors of near-equal alphas could pick a different alpha. jaxlib 0.10.2 runs a
batched LAPACK call's batch on XLA's CPU thread pool and blocks on it, and on a two-thread pool
that deadlocks: two such calls that could run at once (seen with two independent triangular
solves), and also a single one, a vmapped batch of four folds' eigendecompositions, which hung
9 of 12 runs of a small task (512 rows, d 64, 10 folds) while one fold at a time hung none. So
every LAPACK call here is unbatched (folds are not vmapped), and every route chains its
factorisation and solves, one after the other.

A task's shapes (rows, folds, dim, alphas) decide its compiled program; methods of the same
coverage reuse it.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from neuco_jax.config import Config
from neuco_jax.data import Prepared
from neuco_jax.engine import _heldout_scores
from neuco_jax.probes.folds import GroupPass, ResultsOf, TaskFolds, shuffle_folds
from neuco_jax.probes.stored import Probe

ROUTES = ("eigh", "cholesky", "woodbury")
# The cost of one operation in matrix-product flops (2 p q s for (p, q) x (q, s)), measured on the
# 2-core machine of docs/benchmarks.md (p = 1024, n = 4423, r = 443): a symmetric eigendecomposition
# of a p x p matrix costs EIGH_FLOPS p^3, a Cholesky factorisation CHOLESKY times its p^3 / 3 flops,
# a triangular solve with q right-hand sides TRIANGULAR times its q p^2, and a fold's woodbury
# correction (gathering r rows of G, the r x r factorisation, the solves) WOODBURY_FOLD (n + 2) r^2.
EIGH_FLOPS = 11.0
CHOLESKY = 3.4
TRIANGULAR = 1.4
WOODBURY_FOLD = 2.7
# The woodbury route holds (n, n) float64 matrices: not above this many rows.
WOODBURY_MAX_ROWS = 12_000

tri = partial(jax.lax.linalg.triangular_solve, lower=True)


@dataclasses.dataclass(frozen=True)
class RidgeFit:
    """One method's ridge probes on one task.

    alpha: (folds,) chosen alpha per fold; w: (folds, dim), b: (folds,) float64 on the
    standardised embedding; z: (folds, t) held-out decision values; scores: (folds,) held-out
    R^2 or F1.
    """

    alpha: np.ndarray
    w: np.ndarray
    b: np.ndarray
    z: np.ndarray
    scores: np.ndarray


def route_costs(n: int, m: int, d: int, k: int, a: int) -> dict[str, float]:
    """Each route's estimated work for one task, in matrix-product flops (module docstring).

    n task rows, m training rows per fold, d dims, k folds, a alphas. The shape follows m and d
    (cov: m > d, gram: m <= d); woodbury only where it applies (cov, a left-out row, n not above
    WOODBURY_MAX_ROWS).
    """
    r = n - m
    if m <= d:  # the gram shape; P = L^-1 is a triangular solve with m right-hand sides
        return {"eigh": k * EIGH_FLOPS * m ** 3,
                "cholesky": k * a * (CHOLESKY * m ** 3 / 3 + TRIANGULAR * m ** 3)}
    downdate = 2 * r * d * d
    costs = {"eigh": k * (downdate + EIGH_FLOPS * d ** 3 + 2 * m * d * d),
             "cholesky": k * (downdate + a * (CHOLESKY * d ** 3 / 3 + TRIANGULAR * m * d * d))}
    if r and n <= WOODBURY_MAX_ROWS:
        costs["woodbury"] = a * (CHOLESKY * d ** 3 / 3 + TRIANGULAR * n * d * d + 2 * n * n * d
                                 + k * WOODBURY_FOLD * (n + 2) * r * r)
    return costs


def route(n: int, m: int, d: int, k: int, a: int) -> str:
    """The cheapest route by `route_costs` (ties: the first of ROUTES)."""
    costs = route_costs(n, m, d, k, a)
    return min(costs, key=lambda name: (costs[name], ROUTES.index(name)))


def _centred(x, y, train):
    """A fold's training rows and targets centred: X (m, d), y (m,), and their means x_bar (d,), y_bar."""
    x_tr, y_tr = x[train], y[train]
    x_bar, y_bar = x_tr.mean(0), y_tr.mean()
    return x_tr - x_bar, y_tr - y_bar, x_bar, y_bar


def _fold_matrix(x, task_matrix, sum_x, train, removed, *, gram):
    """The fold's centred K = X X^T (m, m) from the task's x x^T, or C = X^T X (d, d) from its x^T x."""
    m = train.shape[0]
    if gram:
        k = task_matrix[train][:, train]
        row = k.mean(0)
        return k - row[:, None] - row[None, :] + row.mean()
    x_rm = x[removed]
    c = task_matrix - x_rm.T @ x_rm  # downdate: the fold's uncentred x^T x
    mean = (sum_x - x_rm.sum(0)) / m
    return c - m * jnp.outer(mean, mean)


def _eigh_fold(x, y, task_matrix, sum_x, train, removed, alphas, *, gram):
    """One fold by one eigendecomposition: LOO mean squared error (a,), w (a, d), b (a,)."""
    m = train.shape[0]
    xc, yc, x_bar, y_bar = _centred(x, y, train)
    s, vectors = jnp.linalg.eigh(_fold_matrix(x, task_matrix, sum_x, train, removed, gram=gram))
    if gram:
        a_mat, g = vectors, s[:, None] / (s[:, None] + alphas)  # (m, m), (m, a)
    else:
        a_mat, g = xc @ vectors, 1.0 / (s[:, None] + alphas)  # (m, d), (d, a)
    fitted = a_mat @ (g * (a_mat.T @ yc)[:, None])  # (m, a)
    h = (a_mat * a_mat) @ g
    err = jnp.mean(((yc[:, None] - fitted) / (1.0 - h - 1.0 / m)) ** 2, 0)
    w = (xc.T @ (yc[:, None] - fitted) / alphas).T  # (a, d), the dual form: no second solve
    return err, w, y_bar - w @ x_bar


def _cholesky_fold(x, y, task_matrix, sum_x, train, removed, alphas, *, gram):
    """One fold by one Cholesky factorisation per alpha: LOO mean squared error (a,), w (a, d), b (a,)."""
    m = train.shape[0]
    xc, yc, x_bar, y_bar = _centred(x, y, train)
    mat = _fold_matrix(x, task_matrix, sum_x, train, removed, gram=gram)
    eye = jnp.eye(mat.shape[0])
    rhs = None if gram else jnp.concatenate([xc, (xc.T @ yc)[None]], 0)  # (m + 1, d): [X; (X^T y)^T]

    def one(alpha):
        lower = jnp.linalg.cholesky(mat + alpha * eye)
        if gram:
            p = tri(lower, eye, left_side=True)  # L^-1 (m, m)
            c = p.T @ (p @ yc)  # (K + alpha I)^-1 y
            e = alpha * c / (alpha * jnp.sum(p * p, 0) - 1.0 / m)
            return jnp.mean(e ** 2), xc.T @ c
        bu = tri(lower, rhs, left_side=False, transpose_a=True)  # [X; (X^T y)^T] L^-T
        b_mat, u = bu[:-1], bu[-1]
        w = tri(lower, u[:, None], left_side=True, transpose_a=True)[:, 0]  # after bu: one solve at a time
        e = (yc - b_mat @ u) / (1.0 - jnp.sum(b_mat * b_mat, 1) - 1.0 / m)
        return jnp.mean(e ** 2), w

    err, w = jax.lax.map(one, alphas)
    return err, w, y_bar - w @ x_bar


def _per_fold(fold, x, y, train, removed, alphas, *, gram):
    """Every fold by a per-fold route: err (k, a), w (k, a, d), b (k, a)."""
    task_matrix = x @ x.T if gram else x.T @ x
    one = partial(fold, x, y, task_matrix, x.sum(0), alphas=alphas, gram=gram)
    return jax.lax.map(lambda f: one(*f), (train, removed))  # one fold at a time: see the module docstring


def _woodbury(x, y, train, removed, alphas):
    """Every fold from the task's hat matrix per alpha (module docstring): err (k, a), w (k, a, d), b (k, a)."""
    n, d = x.shape
    mu = x.mean(0)
    xt = x - mu  # (n, d): the task's rows centred by their mean, the intercept column apart

    def per_alpha(alpha):
        lower = jnp.linalg.cholesky(xt.T @ xt + alpha * jnp.eye(d))
        b_mat = tri(lower, xt, left_side=False, transpose_a=True)  # (n, d): (x - mu) L^-T
        g_mat = b_mat @ b_mat.T + 1.0 / n  # (n, n)
        g_diag = jnp.diagonal(g_mat)

        def fold(train, removed):
            # (n,) the fold's targets less their mean (which the intercept fits exactly: the same
            # errors, and exactly 0 for constant targets, whose ties then go to the first alpha), 0 on R
            y_bar = y[train].mean()
            y_t = jnp.zeros(n).at[train].set(y[train] - y_bar)
            g = b_mat @ (b_mat.T @ y_t)  # G[:, T] y_T, whose 1/n part vanishes: y_t sums to 0
            g_r = g_mat[removed]  # (r, n)
            ls = jnp.linalg.cholesky(jnp.eye(removed.shape[0]) - g_r[:, removed])
            q = tri(ls, jnp.concatenate([g_r, g[removed][:, None]], 1), left_side=True)  # (r, n + 1)
            s = tri(ls, q[:, -1:], left_side=True, transpose_a=True)[:, 0]  # S^-1 g_R
            v = y_t.at[removed].set(s)
            btv = b_mat.T @ v
            w = tri(lower, btv[:, None], left_side=True, transpose_a=True)[:, 0]
            fitted = (b_mat @ btv + v.sum() / n)[train]
            h = (g_diag + jnp.sum(q[:, :-1] ** 2, 0))[train]
            return jnp.mean(((y[train] - y_bar - fitted) / (1.0 - h)) ** 2), w, y_bar + v.sum() / n - mu @ w

        return jax.lax.map(lambda f: fold(*f), (train, removed))

    err, w, b = jax.lax.map(per_alpha, alphas)  # (a, k), (a, k, d), (a, k)
    return err.T, w.transpose(1, 0, 2), b.T


@partial(jax.jit, static_argnames=("route_name", "is_cls"))
def _fit_task(x, y, labels, train, removed, test, alphas, *, route_name, is_cls):
    """Every fold of one task by one route (see the module docstring); returns alpha index, w, b, z, score per fold."""
    gram = train.shape[1] <= x.shape[1]
    if route_name == "woodbury":
        err, w, b = _woodbury(x, y, train, removed, alphas)
    else:
        fold = _eigh_fold if route_name == "eigh" else _cholesky_fold
        err, w, b = _per_fold(fold, x, y, train, removed, alphas, gram=gram)
    best = jnp.argmin(err, 1)  # (k,) the first of equal errors, as scikit-learn
    w = jnp.take_along_axis(w, best[:, None, None], 1)[:, 0]  # (k, d)
    b = jnp.take_along_axis(b, best[:, None], 1)[:, 0]
    z = jnp.take_along_axis(w @ x.T, test, 1) + b[:, None]  # (k, t)
    # sign(decision) for classification: there is no reference ridge probe whose F1 rule to follow.
    scores, _ = _heldout_scores(z, labels[test], jnp.ones_like(z), jnp.full(z.shape[0], is_cls), False)
    return best, w, b, z, scores


def _fit(x, labels, is_cls, train, test, alphas, route_name):
    """fit_task by the named route, one of ROUTES (tests and scripts/bench_ridge.py name each)."""
    n = x.shape[0]
    train, test = np.asarray(train), np.asarray(test)
    k, m = train.shape
    keep = np.zeros((k, n), bool)
    keep[np.arange(k)[:, None], train] = True
    removed = np.argsort(keep, axis=1, kind="stable")[:, :n - m]  # every position the fold leaves out
    labels = np.asarray(labels, np.float64)
    y = 2.0 * labels - 1.0 if is_cls else labels
    with jax.enable_x64(True):
        best, w, b, z, scores = jax.device_get(_fit_task(
            jnp.asarray(x, jnp.float64), jnp.asarray(y), jnp.asarray(labels), jnp.asarray(train, jnp.int32),
            jnp.asarray(removed, jnp.int32), jnp.asarray(test, jnp.int32), jnp.asarray(alphas, jnp.float64),
            route_name=route_name, is_cls=bool(is_cls)))
    alpha = np.asarray(alphas, np.float64)[best]
    return RidgeFit(alpha=alpha, w=w, b=b, z=z, scores=np.asarray(scores, np.float64) if test.shape[1] else
                    np.full(k, np.nan))


def fit_task(x: np.ndarray, labels: np.ndarray, is_cls: bool, train: np.ndarray, test: np.ndarray,
             alphas) -> RidgeFit:
    """Ridge probes for every fold of one task, by the cheapest route (`route`).

    Args:
      x: (n, d) the task's standardised embedding rows; labels: (n,) its labels (0/1 for
        classification, min-max scaled values for regression).
      is_cls: classification (targets -1/+1, prediction sign(decision)) or regression.
      train: (k, m) and test: (k, t) row positions of each fold (test may have t = 0: a refit).
      alphas: the candidate L2 strengths, in order (ties go to the first).

    Returns:
      RidgeFit with per-fold alpha, weights, bias, held-out decision values and scores.
    """
    (n, d), (k, m) = np.shape(x), np.shape(train)
    return _fit(x, labels, is_cls, train, test, alphas, route(n, m, d, k, len(alphas)))


def run(bench: Prepared, config: Config, fractions=(1.0,)) -> dict[float, list[TaskFolds]]:
    """Ridge probes for every task and fold of one method, per label fraction.

    Returns:
      {fraction: [TaskFolds per task, in the benchmark's order]}; hyperparameters hold the
      candidate `alphas` and the `alpha_per_fold` chosen by leave-one-out.
    """
    out = {}
    for fraction in fractions:
        out[fraction] = folds = []
        for t, task in enumerate(bench.tasks):
            train, test, _ = shuffle_folds(bench, t, config.k_folds, config.seed, fraction)
            fit = fit_task(bench.x[bench.rows[t]], task.labels, task.is_classification, train, test, config.alphas)
            folds.append(TaskFolds(
                task.name, task.task_type, fit.scores,
                {"alphas": list(config.alphas), "alpha_per_fold": fit.alpha.tolist()},
                [task.labels[f] for f in test], list(fit.z), metric_rule="logit", n_train=train.shape[1]))
    return out


def refit(bench: Prepared, config: Config) -> list[Probe]:
    """`store_probes`: per task, ridge on all its rows at the alpha leave-one-out picks on all of them."""
    probes = []
    for t, task in enumerate(bench.tasks):
        n = len(bench.rows[t])
        fit = fit_task(bench.x[bench.rows[t]], task.labels, task.is_classification, np.arange(n)[None],
                       np.zeros((1, 0), np.int64), config.alphas)
        hyper = {"alphas": list(config.alphas), "alpha": float(fit.alpha[0]), "refit_rows": n}
        probes.append(Probe(task=task.name, task_type=task.task_type, w=fit.w[0], b=float(fit.b[0]),
                            mean=bench.mean, std=bench.std, hyperparameters=hyper, probe_type="ridge"))
    return probes


def run_pass(p: GroupPass) -> ResultsOf:
    """The probe interface (folds.py): every method of the group, one after another."""
    t0 = time.perf_counter()
    fits = [run(bench, p.config, p.fractions) for _, bench in p.group]
    stored = [refit(bench, p.config) if p.config.store_probes else None for _, bench in p.group]
    p.compiled_one()
    p.timings["train"] += time.perf_counter() - t0
    return lambda slot, variant, bench: (fits[slot][variant.fraction], stored[slot])
