"""The kNN probe (`probe_type: knn`): every fold of every task and method in one compiled program.

Per fold, exactly scikit-learn's KNeighborsRegressor / KNeighborsClassifier(n_neighbors=k,
weights=..., metric=..., algorithm="brute") fitted on the fold's training rows, on the
standardised embeddings, scored with the linear probe's rules (engine._heldout_scores):

  distance    euclidean  d(q, r) = sqrt(max(|q|^2 + |r|^2 - 2 <q, r>, 0))
              cosine     d(q, r) = clip(1 - <q, r> / (|q| |r|), 0, 2)   (a zero row stays zero)
  neighbours  the k training rows nearest each query, nearest first
  weights     uniform: 1; distance: 1 / d, except for a query with a neighbour at d = 0, where
              those neighbours weigh 1 and the others 0 (scikit-learn's _get_weights)
  regression      z = sum_j w_j y_j / sum_j w_j
  classification  z = 1 where the class-1 neighbours' weight exceeds the class-0 ones', else 0
                  (a tie goes to class 0, the first of scikit-learn's sorted classes)

Every k of `k_list` comes from one search for the k_max = max(k_list) nearest rows, then running
sums of w, w y and w (1 - y) along them give each k's prediction (`neighbour_predictions`). A fold's
score is its best k on its held-out rows (the reference's rule, as the linear probe's best epoch),
or with `selection: nested` the held-out score at the k that scores best on the fold's inner
validation split, the neighbours then drawn from the rest of its training rows (as the other
probes train on them); the first k of ties either way.

Axes: methods x entries x folds x queries x candidates, an entry being one (task, label
fraction). Per entry one float32 Gram matrix G = X X^T (n, n) of the task's rows serves every
fold: d^2[q, r] = |q|^2 + |r|^2 - 2 G[q, r], rows outside the fold's training set masked to +inf,
and `lax.top_k` keeps the c = k_max + MARGIN nearest as candidates. scikit-learn works in float64,
and float32 distances would reorder near neighbours, so the candidates' distances are recomputed
exactly (float64 dots of the gathered rows, the same expansion) and the k_max nearest of them
kept, in exact order. (The Gram and top_k in float32: on XLA:CPU a float64 top_k runs some 75x
slower, a float64 Gram 2-4x.) A float32 dot of d terms is off by about sqrt(d) eps32 |q| |r|;
a query whose farthest kept neighbour is not two SLACK such errors nearer than its farthest
candidate could be missing a row, and is counted (a warning names how many; with
continuous embeddings none are). Padding: entries are padded to the largest task (padded rows
are in no training set) and queries to the largest held-out plus validation set (masked out of
the scores). Methods and entries go through `lax.map`s (one Gram in memory at a time), and so do folds
(one fold's (queries, n) distances and (queries, c, dim) candidate rows at a time).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections import Counter
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from neuco_jax.config import Config
from neuco_jax.data import Prepared
from neuco_jax.engine import _heldout_scores
from neuco_jax.errors import InputError
from neuco_jax.probes.folds import GroupPass, ResultsOf, TaskFolds, Variant, shuffle_folds
from neuco_jax.probes.stored import NeighbourProbe
from neuco_jax.runtime import compile_once, select_devices

FOLD_BATCH = 1  # folds per step of the fold map: vmapping folds turns top_k and the gathers 6x slower on XLA:CPU
MARGIN = 16  # candidates beyond k_max taken on float32 distances, then ordered on exact ones
SLACK = 8.0  # standard deviations of a float32 dot's rounding walk that the completeness check allows
EPS32 = float(np.finfo(np.float32).eps)
HIGHEST = jax.lax.Precision.HIGHEST

# Counts traces of the compiled program (one per compilation); tests read it.
TRACE_COUNT = 0


def neighbour_predictions(xp, d, y, ks, weights: str, is_cls):
    """Every k's prediction from the sorted neighbours of each query.

    Args:
      xp: the array module (numpy or jax.numpy): one rule for the compiled probe and stored ones.
      d, y: (..., k_max) the neighbours' distances (ascending) and labels (0/1 for classification).
      ks: (n_k,) int, the neighbour counts (each <= k_max).
      weights: "uniform" or "distance".
      is_cls: bool (or a bool array broadcasting against (...)).

    Returns:
      (..., n_k) the prediction for each k: regression the weighted mean, classification 0/1.
    """
    if weights == "distance":
        exact = d[..., :1] == 0  # the nearest neighbour at distance 0: only such neighbours count
        w = xp.where(exact, (d == 0).astype(d.dtype), 1.0 / xp.where(d == 0, 1.0, d))
    else:
        w = xp.ones_like(d)
    at = ks - 1
    total = xp.cumsum(w, -1)[..., at]
    ones = xp.cumsum(w * y, -1)[..., at]
    zeros = xp.cumsum(w * (1.0 - y), -1)[..., at]
    return xp.where(xp.asarray(is_cls)[..., None], (ones > zeros).astype(d.dtype), ones / total)


@dataclasses.dataclass(frozen=True)
class NeighbourPlan:
    """Host arrays of one coverage's folds, every entry (task, label fraction) padded alike.

    entries: (task index, label fraction) per entry
    offset, n_rows: (entries,) first sample and number of samples of the entry's task
    train: (entries, folds, n_max) bool, the rows a fold's neighbours are drawn from
    queries: (entries, folds, q_max) int32 task positions: the held-out rows, then (nested) the
      validation rows, then padding (position 0)
    n_test, n_val: (entries,) held-out and validation queries per fold (n_val 0 unless nested)
    n_train: (entries,) training rows per fold
    test_pos: per entry, (folds, n_test) the held-out positions (labels for plots)
    """

    entries: tuple[tuple[int, float], ...]
    offset: np.ndarray
    n_rows: np.ndarray
    train: np.ndarray
    queries: np.ndarray
    n_test: np.ndarray
    n_val: np.ndarray
    n_train: np.ndarray
    test_pos: tuple[np.ndarray, ...]


def make_plan(bench: Prepared, config: Config, fractions) -> NeighbourPlan:
    """The folds of every task and label fraction, as every other probe draws them (folds.shuffle_folds)."""
    k_max = max(config.knn.k_list)
    sizes = [len(r) for r in bench.rows]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    entries, folds = [], []
    for t, task in enumerate(bench.tasks):
        for f in fractions:
            train, test, val = shuffle_folds(bench, t, config.k_folds, config.seed, f, config.selection)
            if k_max >= train.shape[1]:
                raise InputError(f"task '{task.name}': probe_params.k_list holds k = {k_max}, but a fold trains "
                                 f"on {train.shape[1]} rows; use k below {train.shape[1]} or more labelled rows")
            entries.append((t, f))
            folds.append((train, test, val))
    k, n_max = config.k_folds, max(sizes)
    q = [test.shape[1] + (0 if val is None else val.shape[1]) for _, test, val in folds]
    train_mask = np.zeros((len(entries), k, n_max), bool)
    queries = np.zeros((len(entries), k, max(q)), np.int32)
    for e, (train, test, val) in enumerate(folds):
        train_mask[e, np.arange(k)[:, None], train] = True
        both = test if val is None else np.concatenate([test, val], axis=1)
        queries[e, :, :both.shape[1]] = both
    return NeighbourPlan(
        entries=tuple(entries), offset=np.asarray([offsets[t] for t, _ in entries], np.int32),
        n_rows=np.asarray([sizes[t] for t, _ in entries], np.int32), train=train_mask, queries=queries,
        n_test=np.asarray([test.shape[1] for _, test, _ in folds], np.int32),
        n_val=np.asarray([0 if val is None else val.shape[1] for _, _, val in folds], np.int32),
        n_train=np.asarray([train.shape[1] for train, _, _ in folds], np.int32),
        test_pos=tuple(test for _, test, _ in folds))


def _entry(x, rows, y, offset, n_rows, train, queries, n_test, n_val, is_cls, ks, *, k_max, n_candidates, metric,
           weights):
    """Every fold of one entry: predictions (folds, q_max, n_k), held-out / validation scores (folds, n_k) and
    the queries whose candidates could miss a neighbour (folds,).

    x: (n_x, dim) one method's rows; rows: (n_samples,) its x row per sample; y: (n_samples,) labels;
    train: (folds, n_max) bool; queries: (folds, q_max) positions in the task.
    """
    n_max = train.shape[1]
    samples = offset + jnp.minimum(jnp.arange(n_max), n_rows - 1)  # padding repeats the last row
    x64 = x[rows[samples]].astype(jnp.float64)  # (n_max, dim)
    y_task = y[samples]
    if metric == "cosine":
        norm = jnp.linalg.norm(x64, axis=1, keepdims=True)
        x64 = x64 / jnp.where(norm == 0, 1.0, norm)
    sq = jnp.sum(x64 * x64, axis=1)  # (n_max,) exact squared norms
    x32 = x64.astype(jnp.float32)
    gram = jnp.dot(x32, x32.T, precision=HIGHEST)  # (n_max, n_max) float32: the task's one Gram, every fold's
    # A float32 dot of `dim` terms is off by about sqrt(dim) eps32 |q| |r| (rounding errors add like a random
    # walk); SLACK covers the tail of that walk and the rounding of the inputs and norms.
    error = SLACK * math.sqrt(x.shape[1]) * EPS32 * (jnp.sqrt(sq) + jnp.sqrt(jnp.max(sq))) ** 2  # (n_max,) per query
    # Computed once: left to itself XLA fuses the norms' reduction into every fold's use of them.
    error = jax.lax.optimization_barrier(error)
    q_max = queries.shape[1]
    slot = jnp.arange(q_max)
    test_mask = (slot < n_test).astype(jnp.float64)
    val_mask = ((slot >= n_test) & (slot < n_test + n_val)).astype(jnp.float64)

    def distances(dots, sq_q, sq_r):
        if metric == "cosine":
            return jnp.clip(1.0 - dots, 0.0, 2.0)
        return sq_q + sq_r - 2.0 * dots  # squared: the same order as the distance

    def fold(args):
        member, q = args  # (n_max,), (q_max,)
        approx = distances(gram[q], sq[q][:, None].astype(jnp.float32), sq[None, :].astype(jnp.float32))
        # Only top_k's indices are used, and only as a whole: reading its values or its last column makes
        # XLA:CPU take a path some ten times slower.
        _, cand = jax.lax.top_k(jnp.where(member[None, :], -approx, -jnp.inf), n_candidates)  # (q_max, c)
        real = member[cand]  # False: fewer training rows than candidates, the rest padding
        # Exact float64 distances of the candidates, then their order (a stable rank: ties keep top_k's order).
        dots = jnp.einsum("qd,qcd->qc", x64[q], x64[cand], precision=HIGHEST)
        exact = jnp.where(real, distances(dots, sq[q][:, None], sq[cand]), jnp.inf)
        c = jnp.arange(n_candidates)
        before = (exact[:, None, :] < exact[:, :, None]) | ((exact[:, None, :] == exact[:, :, None])
                                                          & (c[None, None, :] < c[None, :, None]))
        rank = jnp.sum(before, axis=2)  # (q_max, c): each candidate's place in the exact order
        order = jnp.argmax(rank[:, None, :] == c[None, :, None], axis=2)  # (q_max, c): candidate at each place
        exact = jnp.take_along_axis(exact, order, 1)
        cand = jnp.take_along_axis(cand, order, 1)
        # A row outside the candidates has a float32 distance at least every candidate's, so an exact one at
        # least the farthest candidate's less two float32 errors: beyond the farthest neighbour kept, no row can
        # be missing. (Reading top_k's last column instead makes XLA:CPU take a tenfold slower path.)
        unsure = ((exact[:, k_max - 1] >= exact[:, -1] - 2.0 * error[q]) & real.all(axis=1)
                  & (slot < n_test + n_val))
        d = exact if metric == "cosine" else jnp.sqrt(jnp.maximum(exact, 0.0))
        z = neighbour_predictions(jnp, d, y_task[cand], ks, weights, is_cls)  # (q_max, n_k)
        labels = jnp.broadcast_to(y_task[q][None], (ks.shape[0], q_max))
        cls = jnp.full(ks.shape[0], is_cls)
        heldout, _ = _heldout_scores(z.T, labels, jnp.broadcast_to(test_mask, labels.shape), cls, False)
        validation, _ = _heldout_scores(z.T, labels, jnp.broadcast_to(val_mask, labels.shape), cls, False)
        return z, heldout, validation, jnp.sum(unsure)

    return jax.lax.map(fold, (train, queries), batch_size=FOLD_BATCH)


@partial(jax.jit, static_argnames=("k_max", "n_candidates", "metric", "weights"))
def _program(x, sample_row, y, offset, n_rows, train, queries, n_test, n_val, is_cls, ks, *, k_max, n_candidates,
             metric, weights):
    """Every method and entry: (methods, entries, folds, q_max, n_k) predictions, two (..., folds, n_k) scores and
    the (..., folds) count of unsure queries."""
    global TRACE_COUNT
    TRACE_COUNT += 1
    entry = partial(_entry, k_max=k_max, n_candidates=n_candidates, metric=metric, weights=weights)

    def method(args):
        x, rows = args
        return jax.lax.map(lambda a: entry(x, rows, y, *a, ks), (offset, n_rows, train, queries, n_test, n_val, is_cls))

    return jax.lax.map(method, (x, sample_row))  # z, heldout, validation, unsure


def run_pass(p: GroupPass) -> ResultsOf:
    """The probe interface (folds.py): every method of the group in one compiled program.

    The group is padded to the chunk size by repeating a method, so every pass of a sweep has the
    same shapes and compiles once; a coverage's folds are planned once.
    """
    config, params = p.config, p.config.knn
    t0 = time.perf_counter()
    key = ("knn", p.coverage)
    if key not in p.plans:
        p.plans[key] = make_plan(p.group[0][1], config, p.fractions)
    plan = p.plans[key]
    emb = p.embeddings()
    first = p.group[0][1]
    y = np.concatenate([t.labels for t in first.tasks])
    is_cls = np.asarray([first.tasks[t].is_classification for t, _ in plan.entries])
    p.timings["load"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    device = select_devices(config.device)[0]
    with jax.enable_x64(True), jax.default_device(device):
        args = (emb.x, emb.sample_row, y, plan.offset, plan.n_rows, plan.train, plan.queries, plan.n_test,
                plan.n_val, is_cls, np.asarray(params.k_list, np.int32))
        n_candidates = min(max(params.k_list) + MARGIN, int(plan.n_train.min()))
        statics = dict(k_max=max(params.k_list), n_candidates=n_candidates, metric=params.metric,
                       weights=params.weights)
        executable = compile_once(_program, *args, **statics)
        p.timings["compile"] += time.perf_counter() - t0
        p.compiled_one()
        t0 = time.perf_counter()
        z, heldout, validation, unsure = jax.device_get(executable(*args))
    p.timings["train"] += time.perf_counter() - t0
    if unsure[:len(p.group)].any():
        warnings.warn(f"knn: {int(unsure[:len(p.group)].sum())} held-out rows have more than {MARGIN} training rows "
                      f"within float32 rounding of their k-th neighbour; their neighbours may differ from an exact "
                      f"float64 search", stacklevel=2)

    def results_of(slot: int, variant: Variant, bench: Prepared):
        folds = [_task_folds(plan, e, bench, params, config.selection, z[slot, e], heldout[slot, e],
                             validation[slot, e])
                 for e, (t, f) in enumerate(plan.entries) if f == variant.fraction]
        stored = _refitted(bench, folds, params) if config.store_probes else None
        return folds, stored

    return results_of


def _task_folds(plan: NeighbourPlan, e: int, bench: Prepared, params, selection: str, z, heldout, validation):
    """One entry's TaskFolds: each fold's k chosen on its held-out (or, nested, validation) scores.

    z: (folds, q_max, n_k); heldout, validation: (folds, n_k).
    """
    t, _ = plan.entries[e]
    task = bench.tasks[t]
    k_list = list(params.k_list)
    folds = np.arange(heldout.shape[0])
    by = validation if selection == "nested" else heldout
    failed = np.isnan(by).all(axis=1)
    chosen = np.argmax(np.where(np.isnan(by), -np.inf, by), axis=1)  # the first k of ties
    scores = np.where(failed, np.nan, heldout[folds, chosen])
    hyper = {**params.to_dict(), "k_per_fold": [int(k_list[c]) for c in chosen]}
    test_fold = None
    if selection == "nested":
        test_fold = np.where(np.isnan(heldout).all(axis=1), np.nan, np.nanmax(np.where(
            np.isnan(heldout), -np.inf, heldout), axis=1))
        hyper = {**hyper, "selection": "nested"}
    n_test = int(plan.n_test[e])
    test = plan.test_pos[e]
    return TaskFolds(task.name, task.task_type, scores, hyper, [task.labels[f] for f in test],
                     [z[j, :n_test, c] for j, c in enumerate(chosen)], metric_rule="logit",
                     n_train=int(plan.n_train[e]), test_fold_scores=test_fold)


def _refitted(bench: Prepared, folds: list[TaskFolds], params) -> list[NeighbourProbe]:
    """`store_probes`: per task, every labelled row as the neighbours, at the k its folds chose most often
    (the smallest of equally frequent ones)."""
    probes = []
    for t, (task, f) in enumerate(zip(bench.tasks, folds)):
        counts = Counter(f.hyperparameters["k_per_fold"])
        k = min(counts, key=lambda v: (-counts[v], v))
        probes.append(NeighbourProbe(
            task=task.name, task_type=task.task_type, x_train=bench.x[bench.rows[t]], y_train=task.labels,
            k=int(k), metric=params.metric, weights=params.weights, mean=bench.mean, std=bench.std,
            hyperparameters={**params.to_dict(), "k": int(k), "refit_rows": len(task.ids)}))
    return probes

