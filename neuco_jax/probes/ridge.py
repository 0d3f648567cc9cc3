"""The ridge probe (`probe_type: ridge`): closed-form ridge for every fold and alpha of a task in one program.

Per fold, exactly scikit-learn's RidgeCV (regression) / RidgeClassifierCV (classification,
targets -1/+1, prediction sign(decision)) with their defaults: an unpenalised intercept, alpha
chosen from `probe_params.alphas` by the efficient leave-one-out squared error on the fold's
training rows only (the first alpha of a tie), refitted at that alpha and scored on the held-out
rows with the linear probe's rules (engine._heldout_scores).

Axes: folds (k) of one task; a fold trains on m rows and holds out t; alphas (a); dim (d).
Maths, per fold, with X: (m, d) its training rows centred by their means x_bar and y: (m,)
its targets centred by their mean y_bar (the intercept):

  one eigendecomposition, the smaller of the two (scikit-learn's choice by shape):
    m <= d ("gram"):  X X^T = Q diag(s) Q^T,  A = Q      (m, m),  g(s, alpha) = s / (s + alpha)
    m >  d ("cov"):   X^T X = V diag(s) V^T,  A = X V    (m, d),  g(s, alpha) = 1 / (s + alpha)
  then for every alpha, with the hat matrix A diag(g) A^T:
    fitted = A diag(g) A^T y        h = diag(A diag(g) A^T) = (A * A) g        (m, a)
    LOO residual e = (y - fitted) / (1 - h - 1/m)   (1/m: the intercept's own leverage)
    alpha* = argmin_alpha mean(e^2)
  refit at alpha* from the same factorisation (dual form, no second solve):
    w = X^T (y - fitted) / alpha*      b = y_bar - x_bar . w      z = x_test . w + b

The d x d matrices come from one task-wide sum: X^T X of a fold is the task's x^T x minus
the rows it leaves out (Gram downdating, t d^2 instead of m d^2), then centred (a rank-1
term); the m x m Gram of a fold is a slice of the task's x x^T, centred. Folds go through a
`lax.map` in batches (bounded memory), each batch one batched `eigh`. Everything runs in
float64 (jax.enable_x64): scikit-learn works in float64, and in float32 the
leave-one-out errors of near-equal alphas could pick a different alpha.

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
from neuco_jax.data import Benchmark
from neuco_jax.engine import _heldout_scores
from neuco_jax.probes.folds import GroupPass, ResultsOf, TaskFolds, shuffle_folds
from neuco_jax.probes.stored import Probe

# Folds per batch of the lax.map: bounds memory to a few (d, d) / (m, d) float64 matrices each.
FOLD_BATCH = 4


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


def _fold(x, y, gram, cov, sum_x, train, removed, test, alphas, *, mode):
    """One fold: leave-one-out errors for every alpha, the chosen alpha, its refit and held-out values.

    x: (n, d) the task's rows, y: (n,) targets; gram: (n, n) = x x^T (mode "gram") and
    cov: (d, d) = x^T x, sum_x: (d,) (mode "cov"); train: (m,), removed: (n - m,), test: (t,)
    positions; alphas: (a,).
    """
    m = train.shape[0]
    x_tr = x[train]
    x_bar = x_tr.mean(0)
    xc = x_tr - x_bar
    y_tr = y[train]
    y_bar = y_tr.mean()
    yc = y_tr - y_bar
    if mode == "gram":
        k = gram[train][:, train]
        row = k.mean(0)
        k = k - row[:, None] - row[None, :] + row.mean()  # the Gram of the centred rows
        s, a_mat = jnp.linalg.eigh(k)
        g = s[:, None] / (s[:, None] + alphas)  # (m, a)
    else:
        x_rm = x[removed]
        c = cov - x_rm.T @ x_rm  # downdate: the fold's uncentred x^T x
        mean = (sum_x - x_rm.sum(0)) / m
        c = c - m * jnp.outer(mean, mean)
        s, v = jnp.linalg.eigh(c)
        a_mat = xc @ v  # (m, d)
        g = 1.0 / (s[:, None] + alphas)
    fitted = a_mat @ (g * (a_mat.T @ yc)[:, None])  # (m, a)
    h = (a_mat * a_mat) @ g
    loo = (yc[:, None] - fitted) / (1.0 - h - 1.0 / m)
    best = jnp.argmin(jnp.mean(loo**2, 0))  # the first of equal errors, as scikit-learn
    alpha = alphas[best]
    w = xc.T @ (yc - fitted[:, best]) / alpha
    b = y_bar - x_bar @ w
    return best, w, b, x[test] @ w + b


@partial(jax.jit, static_argnames=("mode", "is_cls"))
def _fit_task(x, y, labels, train, removed, test, alphas, *, mode, is_cls):
    """Every fold of one task (see the module docstring); returns alpha index, w, b, z, score per fold."""
    gram = x @ x.T if mode == "gram" else None
    cov = x.T @ x if mode == "cov" else None
    fold = partial(_fold, x, y, gram, cov, x.sum(0), alphas=alphas, mode=mode)
    best, w, b, z = jax.lax.map(lambda f: fold(*f), (train, removed, test), batch_size=FOLD_BATCH)
    # sign(decision) for classification: there is no reference ridge probe whose F1 rule to follow.
    mask = jnp.ones_like(z)
    scores, _ = _heldout_scores(z, labels[test], mask, jnp.full(z.shape[0], is_cls), False)
    return best, w, b, z, scores


def fit_task(x: np.ndarray, labels: np.ndarray, is_cls: bool, train: np.ndarray, test: np.ndarray,
             alphas) -> RidgeFit:
    """Ridge probes for every fold of one task.

    Args:
      x: (n, d) the task's standardised embedding rows; labels: (n,) its labels (0/1 for
        classification, min-max scaled values for regression).
      is_cls: classification (targets -1/+1, prediction sign(decision)) or regression.
      train: (k, m) and test: (k, t) row positions of each fold (test may have t = 0: a refit).
      alphas: the candidate L2 strengths, in order (ties go to the first).

    Returns:
      RidgeFit with per-fold alpha, weights, bias, held-out decision values and scores.
    """
    n, d = x.shape
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
            mode="gram" if m <= d else "cov", is_cls=bool(is_cls)))
    alpha = np.asarray(alphas, np.float64)[best]
    return RidgeFit(alpha=alpha, w=w, b=b, z=z, scores=np.asarray(scores, np.float64) if test.shape[1] else
                    np.full(k, np.nan))


def run(bench: Benchmark, config: Config, fractions=(1.0,)) -> dict[float, list[TaskFolds]]:
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


def refit(bench: Benchmark, config: Config) -> list[Probe]:
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
