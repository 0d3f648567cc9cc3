"""Paired statistics over fold scores: how sure is a leaderboard's order?

Host side, numpy and scipy only; every function takes plain arrays. The axes are
named once: scores of shape (methods, tasks, folds), NaN for a failed fold. Every
method was scored on the same folds of each task (same held-out rows, initial
weights and batch orders), so fold j of method a and fold j of method b are a
pair, and differences are far more precise than either method's spread.

Q and the rank-then-aggregate are the leaderboard's (neuco_jax.leaderboard):

    Q[m, t]        = 2 mean_j s[m, t, j] / (0.02 + std_j s[m, t, j])   (nanmean, population nanstd)
    rank[m, t]     = 1 + #{s : Q[s, t] > Q[m, t]}
    weight[t]      = std_m Q[m, t] (ddof 1) / sum over tasks   ("std"), or 1 / tasks ("uniform")
    weighted[m]    = sum_t rank[m, t] weight[t]; aggregated[m] = 1 + #{s : weighted[s] < weighted[m]}

Fold bootstrap (`fold_bootstrap`): a resample draws, per task, k fold indices with
replacement, the SAME indices for every method (the pairing is kept); with
multiplicities c[b, t, j] (resamples, tasks, folds) every method's Q, the task
ranks, the task weights and the aggregate are recomputed:

    mean*[b, m, t] = sum_j c s / sum_j c,    std*^2 = sum_j c (s - mean*)^2 / sum_j c.

Shuffle-split folds overlap (any two training sets share about 80% of their rows),
so fold scores are not independent draws of a method's quality on new data: the
spread over folds only measures the split-to-split noise of THIS data set. Nadeau
and Bengio (2003) inflate the variance of a mean over k such folds from S^2 / k to
(1 / k + n_test / n_train) S^2 (S^2: the folds' sample variance). The bootstrap
takes the same correction (`correction=True`, the default) where it applies, on
the fold mean: each resampled mean's deviation from the observed one is scaled by

    f[m, t] = sqrt((1 + k n_test / n_train) k / (k - 1))

(k / (k - 1) turns the bootstrap's population variance into S^2), so that the
bootstrap variance of a mean equals Nadeau-Bengio's; the spread term std* is
resampled as it is (a shift shared by all folds, which the overlap causes, does not
change it). `correction=False` gives the plain bootstrap: intervals for other
splits of the same data. tests/test_stats.py checks both against data sets drawn anew
from a known population and probed on shuffle splits: the corrected percentile interval
of a fold mean covers the population's expected score about as often as a t-interval
with the normal's 1.96 in place of t_{k-1}'s (94.3% at k = 40 for 95%; about 91% at
k = 10), the plain one far less often.

Task bootstrap (`task_bootstrap`): resamples tasks with replacement (each drawn
task counts once per draw in the weights and the aggregate), Q fixed: would the
order hold on other tasks like these?

Per task, the paired test of two methods (`nadeau_bengio`) is the corrected
resampled t-test on the fold differences d_j = s[a, t, j] - s[b, t, j]:
t = mean(d) / sqrt((1 / k + n_test / n_train) S_d^2), k - 1 degrees of freedom.
Across tasks, Friedman's test on the task ranks and the Nemenyi critical difference
(`friedman`) follow Demsar (2006).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from neuco_jax.scores import WEIGHTINGS, q_statistic

# Weighted scores closer than this (relative) are ties: the sums of the same rank x weight
# terms in another order differ by a few ulps, and the leaderboard calls exact ties ties.
_TIE = 1e-12
# Resamples per block: bounds the (block, methods, methods, tasks) comparison of the ranking.
_BLOCK_ELEMENTS = 1 << 23


def q_of(scores):
    """Q per (method, task) as neuco_jax.scores.task_score computes it; scores: (..., folds)."""
    scores = np.asarray(scores, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a task whose folds all failed: NaN
        mean, std = np.nanmean(scores, axis=-1), np.nanstd(scores, axis=-1)
    return q_statistic(mean, std)


def rank_aggregate(q, weighting="std"):
    """The leaderboard's rank-then-aggregate for any number of leading (resample) axes.

    Args:
      q: (..., methods, tasks) Q scores; NaN ranks below every number.
      weighting: "std" or "uniform", as neuco_jax.leaderboard.

    Returns:
      ranks (..., methods, tasks) int, weights (..., tasks), weighted (..., methods),
      aggregated (..., methods) int: the leaderboard's columns; weighted scores within a
      relative 1e-12 of each other share a rank.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    q = np.asarray(q, np.float64)
    n_methods, n_tasks = q.shape[-2:]
    ranked = np.where(np.isnan(q), -np.inf, q)
    ranks = 1 + (ranked[..., None, :, :] > ranked[..., :, None, :]).sum(axis=-2)  # (..., m, t): s beats m
    if weighting == "std" and n_methods > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nan_to_num(np.nanstd(q, axis=-2, ddof=1))
    else:
        spread = np.ones(q.shape[:-2] + (n_tasks,))
    total = spread.sum(axis=-1, keepdims=True)
    # No spread on any task: every method ties everywhere; equal weights (as the leaderboard).
    weights = np.where(total > 0, spread / np.where(total > 0, total, 1), 1 / n_tasks)
    weighted = np.einsum("...mt,...t->...m", ranks, weights)
    return ranks, weights, weighted, _min_rank_lower(weighted)


def _min_rank_lower(values):
    """1 + #{s : values[s] < values[m]} along the last axis, ties within _TIE (relative) shared."""
    gap = values[..., None, :] < values[..., :, None] - _TIE * np.maximum(1, np.abs(values[..., :, None]))
    return 1 + gap.sum(axis=-1)


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """Resampled leaderboards.

    q: (resamples, methods, tasks) Q (fold bootstrap; None for the task bootstrap)
    mean: (resamples, methods, tasks) fold means, corrected as Q's (fold bootstrap; None for the task bootstrap)
    weighted: (resamples, methods) weighted scores; rank: (resamples, methods) aggregated ranks
    """

    q: np.ndarray | None
    mean: np.ndarray | None
    weighted: np.ndarray
    rank: np.ndarray

    def p_first(self):
        """(methods,) share of resamples in which each method ranks first (ties share first place)."""
        return (self.rank == 1).mean(axis=0)


def resample_counts(rng, resamples, n_tasks, n_folds):
    """Multiplicities (resamples, tasks, folds) int of k fold indices drawn with replacement per task."""
    idx = rng.integers(0, n_folds, size=(resamples * n_tasks, n_folds))
    flat = idx + n_folds * np.arange(resamples * n_tasks)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * n_tasks * n_folds).reshape(resamples, n_tasks, n_folds)


def inflation(n_folds, ratio):
    """Nadeau-Bengio's factor on the standard deviation of a bootstrap fold mean (module docstring).

    ratio: n_test / n_train, any shape.
    """
    return np.sqrt((1 + n_folds * np.asarray(ratio, np.float64)) * n_folds / (n_folds - 1))


def fold_bootstrap(scores, ratio, resamples=2000, seed=0, weighting="std", correction=True):
    """Paired fold bootstrap of the whole leaderboard (module docstring).

    Args:
      scores: (methods, tasks, folds) fold scores, NaN for failed folds.
      ratio: (methods, tasks) n_test / n_train of each method's folds (the correction's).
      resamples: number of resamples; seed: their seed (the same seed, the same resamples).
      weighting: the leaderboard's, "std" or "uniform".
      correction: scale the fold means' deviations by Nadeau-Bengio's factor.

    Returns:
      Bootstrap with q, mean, weighted and rank per resample.
    """
    scores = np.asarray(scores, np.float64)
    n_methods, n_tasks, n_folds = scores.shape
    # Identical methods are computed once, so that their resampled Q are identical to the bit
    # (matrix products need not sum in the same order for every column).
    ratio = np.broadcast_to(np.asarray(ratio, np.float64), (n_methods, n_tasks))
    keys = {}
    inverse = np.array([keys.setdefault(scores[m].tobytes() + ratio[m].tobytes(), len(keys))
                        for m in range(n_methods)])
    unique = np.array([next(m for m in range(n_methods) if inverse[m] == u) for u in range(len(keys))])
    s, r = scores[unique], ratio[unique]                                  # (u, tasks, folds), (u, tasks)

    finite = np.isfinite(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(s, axis=-1)                                     # (u, tasks)
    centred = np.where(finite, s - mean[..., None], 0.0)                  # sums of small numbers: exact enough
    f = inflation(n_folds, r) if correction and n_folds > 1 else np.ones_like(r)
    counts = resample_counts(np.random.default_rng(seed), resamples, n_tasks, n_folds).astype(np.float64)
    # (tasks, resamples, folds) @ (tasks, folds, u) -> (tasks, resamples, u), then (resamples, u, tasks)
    by_task = counts.transpose(1, 0, 2)
    n, s1, s2 = (np.matmul(by_task, a.transpose(1, 2, 0)).transpose(1, 2, 0)
                 for a in (finite.astype(np.float64), centred, centred ** 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no finite fold drawn: NaN, ranked last
        shift = s1 / n
        std = np.sqrt(np.maximum(s2 / n - shift ** 2, 0.0))
        means = mean + f * shift                                          # (resamples, u, tasks)
        q = (2 * means / (0.02 + std))[:, inverse]                        # (resamples, methods, tasks)

    weighted = np.empty((resamples, n_methods))
    rank = np.empty((resamples, n_methods), np.int64)
    block = max(1, _BLOCK_ELEMENTS // (n_methods * n_methods * n_tasks))
    for start in range(0, resamples, block):
        _, _, weighted[start:start + block], rank[start:start + block] = rank_aggregate(
            q[start:start + block], weighting)
    return Bootstrap(q, means[:, inverse], weighted, rank)


def task_bootstrap(q, resamples=2000, seed=0, weighting="std"):
    """Resamples tasks with replacement, Q fixed: the aggregate over other draws of tasks.

    A method's rank on a task does not depend on which other tasks are drawn; a task drawn
    c times counts c times in the weights' sum and the aggregate.

    Args:
      q: (methods, tasks) Q scores.

    Returns:
      Bootstrap (q None) with weighted and rank per resample.
    """
    q = np.asarray(q, np.float64)
    n_methods, n_tasks = q.shape
    ranks, _, _, _ = rank_aggregate(q, weighting)
    spread = (np.nan_to_num(np.nanstd(q, axis=0, ddof=1)) if weighting == "std" and n_methods > 1
              else np.ones(n_tasks))
    counts = resample_counts(np.random.default_rng(seed), resamples, 1, n_tasks)[:, 0].astype(np.float64)
    mass = counts * spread                                                # (resamples, tasks)
    total = mass.sum(axis=1, keepdims=True)
    weights = np.where(total > 0, mass / np.where(total > 0, total, 1), counts / n_tasks)
    weighted = weights @ ranks.T                                          # (resamples, methods)
    return Bootstrap(None, None, weighted, _min_rank_lower(weighted))


def nadeau_bengio(diff, ratio, confidence=0.95):
    """Corrected resampled t-test of paired fold differences (Nadeau and Bengio 2003).

    Args:
      diff: (..., folds) paired differences; NaN folds are left out.
      ratio: (...) n_test / n_train of the folds.
      confidence: of the interval.

    Returns:
      mean, ci_low, ci_high, p_value, each (...). A difference that is the same on every fold
      has no spread: its interval is that value, its p-value 1 when it is 0 and 0 otherwise.
    """
    from scipy import stats

    diff = np.asarray(diff, np.float64)
    k = np.isfinite(diff).sum(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(diff, axis=-1)
        var = np.nanvar(diff, axis=-1, ddof=1)
        se = np.sqrt((1 / k + np.asarray(ratio, np.float64)) * var)
        t = mean / se
    df = np.maximum(k - 1, 1)
    no_spread = (se == 0) | (k < 2)
    p = np.where(no_spread, np.where(mean == 0, 1.0, 0.0), 2 * stats.t.sf(np.abs(t), df))
    half = np.where(no_spread, 0.0, stats.t.ppf(0.5 + confidence / 2, df) * se)
    p = np.where(np.isnan(mean), np.nan, p)
    return mean, mean - half, mean + half, p


def normal_test(estimate, draws, confidence=0.95):
    """Interval and two-sided p-value of an estimate from the standard error of its bootstrap draws.

    Args:
      estimate: (...) observed values; draws: (resamples, ...) their bootstrap replicates.

    Returns:
      ci_low, ci_high, p_value, each (...); p-values from the normal approximation, so that
      they can be small enough for a Holm adjustment over many comparisons (a bootstrap
      p-value cannot go below 1 / resamples). No spread: as nadeau_bengio.
    """
    from scipy import stats

    se = np.std(draws, axis=0, ddof=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = estimate / se
    p = np.where(se == 0, np.where(estimate == 0, 1.0, 0.0), 2 * stats.norm.sf(np.abs(z)))
    half = stats.norm.ppf(0.5 + confidence / 2) * se
    return estimate - half, estimate + half, p


def holm(p):
    """Holm's step-down adjustment of one family of p-values (1-D; NaN stays NaN, not counted)."""
    p = np.asarray(p, np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


@dataclasses.dataclass(frozen=True)
class Friedman:
    """Friedman's test over tasks and the Nemenyi critical difference (Demsar 2006).

    average_rank: (methods,) mean over tasks of the rank by Q (1 = best, ties averaged)
    statistic, p_value: Friedman's chi-square and its p-value (NaN with 2 methods: see the pairs)
    critical_difference: two methods whose average ranks differ by more differ at `confidence`
    """

    average_rank: np.ndarray
    statistic: float
    p_value: float
    critical_difference: float
    confidence: float
    n_tasks: int


def friedman(q, confidence=0.95):
    """Friedman's test on Q (methods, tasks), with the Nemenyi critical difference.

    CD = q_alpha / sqrt(2) * sqrt(m (m + 1) / (6 N)), q_alpha the studentized range's
    upper quantile for m methods and infinite degrees of freedom, N tasks.
    """
    from scipy import stats

    q = np.asarray(q, np.float64)
    n_methods, n_tasks = q.shape
    average = stats.rankdata(-q, axis=0, method="average").mean(axis=1)
    statistic = p_value = math.nan
    if n_methods >= 3:
        result = stats.friedmanchisquare(*q)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    q_alpha = stats.studentized_range.ppf(confidence, n_methods, np.inf) / math.sqrt(2)
    cd = float(q_alpha * math.sqrt(n_methods * (n_methods + 1) / (6 * n_tasks)))
    return Friedman(average, statistic, p_value, cd, confidence, n_tasks)


def cliques(average_rank, critical_difference):
    """Maximal groups (index lists, best first) of methods whose average ranks lie within the CD.

    The thick bars of a critical-difference diagram: methods in one group are not shown to differ.
    """
    order = np.argsort(average_rank, kind="stable")
    r = np.asarray(average_rank)[order]
    groups, last_end = [], -1
    for i in range(len(r)):
        end = i + int(np.searchsorted(r[i:], r[i] + critical_difference, side="right")) - 1
        if end > i and end > last_end:
            groups.append([int(m) for m in order[i:end + 1]])
            last_end = end
    return groups
