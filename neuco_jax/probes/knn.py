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
fraction). scikit-learn works in float64; the search runs on float32 distances from a float32
Gram matrix G = X X^T (d^2[q, r] = |q|^2 + |r|^2 - 2 G[q, r]) and keeps more candidates than it
needs, whose distances are then recomputed exactly (float64 dots of the gathered rows, the same
expansion) and put in exact order. (On XLA:CPU a float64 top_k runs some 75x slower than a
float32 one, a float64 Gram 2-4x.) Two searches give the same neighbours:

  shared  (the usual one) each row's s nearest other rows of the task, from one symmetric Gram
          (blocks on and above the diagonal) and one top_k, in exact order, serve every fold:
          a query's neighbours in a fold are its first k_max candidates in the fold's training
          set. s is sized so that a query almost surely has k_max + MARGIN / 2 of those among
          them (`shared_candidates`); a fold where some query has too few, or is unsure (below),
          searches alone instead (a branch taken at run time, in the common case by no fold).
  alone   per fold, its training rows' c = k_max + MARGIN nearest each query by a masked top_k,
          then their exact order: taken for every fold where that does less work (few folds,
          or a small label fraction, whose training rows are too sparse among a row's nearest).

A float32 dot of d terms is off by about sqrt(d) eps32 |q| |r|; a query whose farthest kept
neighbour is not two SLACK such errors nearer than its farthest candidate could be missing a
row: searching alone it is counted (a warning names how many; with continuous embeddings none
are). Padding: entries are padded to the largest task (padded rows are in no training set) and
queries to the largest held-out plus validation set (masked out of the scores). Methods and
entries go through `lax.map`s (one Gram in memory at a time); folds searching alone go one at
a time (vmapping their top_k and gathers is 6x slower on XLA:CPU), the rest is vmapped.
"""

from __future__ import annotations

import dataclasses
import logging
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

MARGIN = 16  # candidates beyond k_max taken on float32 distances, then ordered on exact ones
BLOCKS = 4  # the shared search's Gram matrix in 4 x 4 blocks, those above the diagonal mirrored
SHARED_CHUNK = 16  # rows whose shared candidates are gathered at once ((chunk, s, dim) float64)
Z = 4.0  # standard deviations of a query's training-row count that the shared candidates allow for
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


def _distances(dots, sq_q, sq_r, metric: str):
    """Distances from dot products and squared norms: cosine, or squared euclidean (the same order)."""
    if metric == "cosine":
        return jnp.clip(1.0 - dots, 0.0, 2.0)
    return sq_q + sq_r - 2.0 * dots


def _exact_order(x64, sq, q, cand, real, metric: str):
    """Candidates in exact float64 order: a stable sort, so ties keep the order they came in.

    x64: (n_max, dim) the task's rows; sq: (n_max,) their squared norms; q: (Q,) query positions;
    cand, real: (Q, C) candidate positions and whether each is a row (not padding, not the query).
    Returns (Q, C) exact distances (+inf where not real) and the candidates, nearest first.
    """
    dots = jnp.einsum("qd,qcd->qc", x64[q], x64[cand], precision=HIGHEST)
    exact = jnp.where(real, _distances(dots, sq[q][:, None], sq[cand], metric), jnp.inf)
    return jax.lax.sort((exact, cand), dimension=1, num_keys=1, is_stable=True)


def _nearest_rows(x32, sq32, n_rows, s: int, metric: str):
    """Each row's s nearest other rows of the task on float32 distances: (n_max, s) positions, nearest first.

    The Gram matrix is symmetric, so it is computed in BLOCKS x BLOCKS blocks of rows of which only
    those on and above the diagonal are multiplied (10 of 16 products); each block row's distances
    are then put together from them and ranked by top_k.
    """
    n_max = x32.shape[0]
    b = -(-n_max // BLOCKS)
    pad = ((0, b * BLOCKS - n_max), (0, 0))
    parts = jnp.pad(x32, pad).reshape(BLOCKS, b, -1)
    pos = jnp.arange(b * BLOCKS)
    sq32 = jnp.pad(sq32, (0, b * BLOCKS - n_max))
    products = {(i, j): jnp.dot(parts[i], parts[j].T, precision=HIGHEST) for i in range(BLOCKS)
                for j in range(i, BLOCKS)}
    nearest = []
    for i in range(BLOCKS):
        gram = jnp.concatenate([products[i, j] if i <= j else products[j, i].T for j in range(BLOCKS)], axis=1)
        rows = pos[i * b:(i + 1) * b, None]
        approx = _distances(gram, sq32[rows], sq32[None, :], metric)  # (b, b * BLOCKS)
        outside = (pos[None, :] >= n_rows) | (pos[None, :] == rows)
        # Only top_k's indices are used, and only as a whole: reading its values or its last column makes
        # XLA:CPU take a path some ten times slower.
        nearest.append(jax.lax.top_k(jnp.where(outside, -jnp.inf, -approx), s)[1])
    return jnp.concatenate(nearest)[:n_max]


def _entry(x, rows, y, offset, n_rows, train, queries, n_test, n_val, is_cls, ks, *, k_max, n_candidates, n_shared,
           metric, weights):
    """Every fold of one entry: predictions (folds, q_max, n_k), held-out / validation scores (folds, n_k),
    the queries whose candidates could miss a neighbour (folds,) and whether the fold searched alone (folds,).

    x: (n_x, dim) one method's rows; rows: (n_samples,) its x row per sample; y: (n_samples,) labels;
    train: (folds, n_max) bool; queries: (folds, q_max) positions in the task.
    """
    n_max = train.shape[1]
    (folds, q_max), dim = queries.shape, x.shape[1]
    pos = jnp.arange(n_max)
    samples = offset + jnp.minimum(pos, n_rows - 1)  # padding repeats the last row
    x64 = x[rows[samples]].astype(jnp.float64)  # (n_max, dim)
    y_task = y[samples]
    if metric == "cosine":
        norm = jnp.linalg.norm(x64, axis=1, keepdims=True)
        x64 = x64 / jnp.where(norm == 0, 1.0, norm)
    sq = jnp.sum(x64 * x64, axis=1)  # (n_max,) exact squared norms
    x32, sq32 = x64.astype(jnp.float32), sq.astype(jnp.float32)
    # A float32 dot of `dim` terms is off by about sqrt(dim) eps32 |q| |r| (rounding errors add like a random
    # walk); SLACK covers the tail of that walk and the rounding of the inputs and norms.
    error = SLACK * math.sqrt(dim) * EPS32 * (jnp.sqrt(sq) + jnp.sqrt(jnp.max(sq))) ** 2  # (n_max,) per query
    # Computed once: left to itself XLA fuses the norms' reduction into every fold's use of them.
    error = jax.lax.optimization_barrier(error)
    slot = jnp.arange(q_max)
    asked = slot < n_test + n_val
    test_mask = (slot < n_test).astype(jnp.float64)
    val_mask = (asked & (slot >= n_test)).astype(jnp.float64)
    if not n_shared and folds * q_max >= n_max:
        # Every fold searches alone, and their queries outnumber the rows: one Gram matrix serves them all.
        approx = _distances(jnp.dot(x32, x32.T, precision=HIGHEST), sq32[:, None], sq32[None, :], metric)

        def approx_of(q):
            return approx[q]
    else:
        def approx_of(q):
            return _distances(jnp.dot(x32[q], x32.T, precision=HIGHEST), sq32[q][:, None], sq32[None, :], metric)

    def unsure(kept, farthest, full, q):
        """Queries whose k_max-th neighbour (kept: (q_max, >= k_max) exact distances) could be wrong, given the
        farthest candidate's exact distance (q_max,) and whether every candidate was a row (full: (q_max,))."""
        # A row outside the candidates has a float32 distance at least every candidate's, so an exact one at
        # least the farthest candidate's less two float32 errors: beyond the farthest neighbour kept, no row can
        # be missing. Where a candidate is not a row (not full), every row was a candidate.
        return (kept[:, k_max - 1] >= farthest - 2.0 * error[q]) & full & asked

    def alone(member, q):
        """The fold's own search: its training rows' c nearest each query on float32 distances, in exact order."""
        _, cand = jax.lax.top_k(jnp.where(member[None, :], -approx_of(q), -jnp.inf), n_candidates)  # (q_max, c)
        real = member[cand]  # False: fewer training rows than candidates, the rest padding
        exact, cand = _exact_order(x64, sq, q, cand, real, metric)
        return exact[:, :k_max], cand[:, :k_max], unsure(exact, exact[:, -1], real.all(axis=1), q)

    def from_shared(member, q):
        """A fold's neighbours among its queries' shared candidates, and whether some query must search alone."""
        cand, exact = shared[q], shared_exact[q]  # (q_max, s)
        count = jnp.cumsum(member[cand], axis=1)  # the fold's training rows among the first j + 1 candidates
        at = jnp.minimum(jnp.sum(count[:, None, :] < k_th[None, :, None], axis=2), n_shared - 1)  # (q_max, k_max)
        kept = jnp.take_along_axis(exact, at, 1)
        found = (count[:, -1] >= k_max) | ~shared_real[q]
        short = asked & (~found | unsure(kept, exact[:, -1], shared_real[q], q))
        return kept, jnp.take_along_axis(cand, at, 1), jnp.any(short)

    def scores(kept, cand, q):
        d = kept if metric == "cosine" else jnp.sqrt(jnp.maximum(kept, 0.0))
        z = neighbour_predictions(jnp, d, y_task[cand], ks, weights, is_cls)  # (q_max, n_k)
        labels = jnp.broadcast_to(y_task[q][None], (ks.shape[0], q_max))
        cls = jnp.full(ks.shape[0], is_cls)
        heldout, _ = _heldout_scores(z.T, labels, jnp.broadcast_to(test_mask, labels.shape), cls, False)
        validation, _ = _heldout_scores(z.T, labels, jnp.broadcast_to(val_mask, labels.shape), cls, False)
        return z, heldout, validation

    # A fold searching alone runs through a lax.map, one fold at a time: vmapping folds turns top_k and the
    # gathers 6x slower on XLA:CPU (and a branch into both branches).
    if n_shared:
        # Every row's n_shared nearest other rows, in exact order, once for all folds: a fold's neighbours of a
        # query are its first k_max candidates in the fold's training set, when that many are among them.
        shared = _nearest_rows(x32, sq32, n_rows, n_shared, metric)  # (n_max, s)
        real = (shared < n_rows) & (shared != pos[:, None])
        chunk = min(SHARED_CHUNK, n_max)
        n_pad = -(-n_max // chunk) * chunk
        padded = [jnp.pad(a, ((0, n_pad - n_max), (0, 0))) for a in (pos[:, None], shared, real)]
        shared_exact, shared = (a.reshape(n_pad, n_shared)[:n_max] for a in jax.lax.map(
            lambda a: _exact_order(x64, sq, a[0][:, 0], a[1], a[2], metric),
            tuple(a.reshape(-1, chunk, *a.shape[1:]) for a in padded)))
        shared_real = real.all(axis=1)
        k_th = jnp.arange(1, k_max + 1)
        kept, cand, searched = jax.vmap(from_shared)(train, queries)  # (folds, q_max, k_max) twice, (folds,)
        missing = jnp.zeros(queries.shape, bool)

        def again(args):
            member, q, kept, cand, searched = args
            return jax.lax.cond(searched, alone, lambda *_: (kept, cand, jnp.zeros(q_max, bool)), member, q)

        # A fold with a query short of candidates, or unsure of them, searches alone (in the common case none).
        kept, cand, missing = jax.lax.cond(
            jnp.any(searched), lambda: jax.lax.map(again, (train, queries, kept, cand, searched)),
            lambda: (kept, cand, missing))
    else:
        kept, cand, missing = jax.lax.map(lambda a: alone(*a), (train, queries))
        searched = jnp.ones(train.shape[0], bool)
    z, heldout, validation = jax.vmap(scores)(kept, cand, queries)
    return z, heldout, validation, jnp.sum(missing, axis=1), searched


def shared_candidates(plan: NeighbourPlan, k_max: int) -> int:
    """Candidates per row for the shared search, or 0 where each fold searching alone costs less.

    A query's shared candidates are its nearest other rows of the task; each is one of its fold's
    training rows with probability about p = n_train / (n_rows - 1). s is the smallest count whose
    training rows fall short of k_max + MARGIN / 2 by more than Z standard deviations only (a fold
    with a query short of k_max, or unsure, searches alone: exact either way, only slower). The
    shared search is taken when it does less of both kinds of work: distances ranked by top_k
    (n_max^2 against folds x q_max x n_max) and candidate rows gathered (n_max s against
    folds x q_max x c).
    """
    p = float(np.min(plan.n_train / np.maximum(plan.n_rows - 1, 1)))
    n_max, (folds, q_max) = plan.train.shape[2], plan.queries.shape[1:]
    c = min(k_max + MARGIN, int(plan.n_train.min()))
    s = k_max + MARGIN
    while s * p - Z * math.sqrt(s * p * (1 - p)) < k_max + MARGIN / 2 and s < n_max - 1:
        s += 1
    if n_max > folds * q_max or n_max * s > folds * q_max * c:
        return 0
    return min(s, n_max - 1)


@partial(jax.jit, static_argnames=("k_max", "n_candidates", "n_shared", "metric", "weights"))
def _program(x, sample_row, y, offset, n_rows, train, queries, n_test, n_val, is_cls, ks, *, k_max, n_candidates,
             n_shared, metric, weights):
    """Every method and entry: (methods, entries, folds, q_max, n_k) predictions, two (..., folds, n_k) scores,
    the (..., folds) count of unsure queries and whether each fold searched alone."""
    global TRACE_COUNT
    TRACE_COUNT += 1
    entry = partial(_entry, k_max=k_max, n_candidates=n_candidates, n_shared=n_shared, metric=metric,
                    weights=weights)

    def method(args):
        x, rows = args
        return jax.lax.map(lambda a: entry(x, rows, y, *a, ks), (offset, n_rows, train, queries, n_test, n_val, is_cls))

    return jax.lax.map(method, (x, sample_row))  # z, heldout, validation, unsure, searched alone


def search(plan: NeighbourPlan, emb, y, is_cls, params, device, n_shared: int | None = None,
           on_compiled=lambda: None):
    """Run the compiled program for one group of methods (host arrays in and out).

    n_shared: candidates per row of the shared search (0: every fold searches alone); None:
    `shared_candidates`' choice. on_compiled: called once the program is compiled (progress).
    Returns (z, heldout, validation, unsure, searched_alone) as `_program` does, and the seconds
    spent compiling.
    """
    t0 = time.perf_counter()
    k_max = max(params.k_list)
    if n_shared is None:
        n_shared = shared_candidates(plan, k_max)
    with jax.enable_x64(True), jax.default_device(device):
        args = (emb.x, emb.sample_row, y, plan.offset, plan.n_rows, plan.train, plan.queries, plan.n_test,
                plan.n_val, is_cls, np.asarray(params.k_list, np.int32))
        statics = dict(k_max=k_max, n_candidates=min(k_max + MARGIN, int(plan.n_train.min())), n_shared=n_shared,
                       metric=params.metric, weights=params.weights)
        executable = compile_once(_program, *args, **statics)
        compiled = time.perf_counter() - t0
        on_compiled()
        return jax.device_get(executable(*args)), compiled


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
    (z, heldout, validation, unsure, alone), compiled = search(plan, emb, y, is_cls, params,
                                                               select_devices(config.device)[0],
                                                               on_compiled=p.compiled_one)
    p.timings["compile"] += compiled
    p.timings["train"] += time.perf_counter() - t0 - compiled
    logging.getLogger(__name__).debug("knn: %d of %d folds searched alone", alone[:len(p.group)].sum(),
                                      alone[:len(p.group)].size)
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

