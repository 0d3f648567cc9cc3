"""Tests of neuco_jax.stats against plain loops, scipy and the leaderboard, and simulations of known truth.

The simulations train real probes (ridge regression, numpy's solve) on shuffle-split folds of finite
data sets drawn from a known population, as the benchmark does, so the folds overlap as they do in
a run: a test that ignored the overlap (the naive paired t-test) is shown to fail where ours holds.
Every simulation is seeded; its bounds are the binomial spread of a rate over the replications.
"""

import math

import numpy as np
import pytest
from scipy import stats as sps

from neuco_jax import stats
from neuco_jax.leaderboard import aggregate_ranks
from neuco_jax.scores import task_score

ALPHA = 0.05


def simulate(seed, reps, n, k, noise_a, noise_b, dim=4, test_size=0.1):
    """Fold R^2 of ridge probes on two embeddings of the same locations, per replication.

    Each replication draws n locations z ~ N(0, I_dim), a label y = z.w + N(0, 0.5^2), and two
    embeddings z + noise_a e_a and z + noise_b e_b (independent noise: equal noise means equal true
    quality). Both are scored on the SAME k shuffle splits (10% held out), as in a run.

    Returns:
      a, b: (reps, k) fold R^2 of the two embeddings; ratio: n_test / n_train.
    """
    rng = np.random.default_rng(seed)
    n_test = math.ceil(test_size * n)
    z = rng.normal(size=(reps, n, dim))
    y = z @ (np.ones(dim) / math.sqrt(dim)) + 0.5 * rng.normal(size=(reps, n))
    perm = np.argsort(rng.random((reps, k, n)), axis=-1)
    train, test = perm[..., n_test:], perm[..., :n_test]
    rows = np.arange(reps)[:, None, None]
    scores = []
    for noise in (noise_a, noise_b):
        x = np.concatenate([z + noise * rng.normal(size=z.shape), np.ones((reps, n, 1))], axis=-1)
        x_train, x_test = x[rows, train], x[rows, test]
        x_train_t = np.swapaxes(x_train, -1, -2)
        beta = np.linalg.solve(x_train_t @ x_train + 1e-3 * np.eye(dim + 1), x_train_t @ y[rows, train][..., None])
        residual = y[rows, test] - (x_test @ beta)[..., 0]
        centred = y[rows, test] - y[rows, test].mean(axis=-1, keepdims=True)
        scores.append(1 - (residual ** 2).sum(-1) / (centred ** 2).sum(-1))
    return scores[0], scores[1], n_test / (n - n_test)


def binomial_bound(p, reps):
    """Three binomial standard errors of a rate p over reps replications."""
    return 3 * math.sqrt(p * (1 - p) / reps)


# --- against plain computations ---------------------------------------------------------------

def test_q_of_is_the_runs_q():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.5, 0.1, (3, 4, 7))
    scores[1, 2, [0, 3]] = np.nan
    q = stats.q_of(scores)
    for m, t in np.ndindex(3, 4):
        assert q[m, t] == pytest.approx(task_score("t", "regression", scores[m, t]).q_stat, rel=1e-14)


def test_rank_aggregate_is_the_leaderboards_on_every_leading_index():
    rng = np.random.default_rng(1)
    q = rng.integers(0, 4, (5, 6, 7)).astype(float)  # many ties
    for weighting in stats.WEIGHTINGS:
        ranks, weights, weighted, aggregated = stats.rank_aggregate(q, weighting)
        for b in range(5):
            want_ranks, want_weights, want_weighted = aggregate_ranks(q[b], weighting)
            np.testing.assert_array_equal(ranks[b], want_ranks)
            np.testing.assert_allclose(weights[b], want_weights, rtol=1e-13)
            np.testing.assert_allclose(weighted[b], want_weighted, rtol=1e-13)
            np.testing.assert_array_equal(aggregated[b], sps.rankdata(want_weighted.round(12), method="min"))


def bootstrap_by_loop(scores, counts, weighting):
    """Q, weighted scores and ranks of each resample, drawing the folds as index lists (plain loops)."""
    n_resamples, n_tasks, _ = counts.shape
    q = np.empty((n_resamples,) + scores.shape[:2])
    for b, t in np.ndindex(n_resamples, n_tasks):
        idx = np.repeat(np.arange(scores.shape[2]), counts[b, t])
        q[b, :, t] = [task_score("t", "regression", scores[m, t, idx]).q_stat for m in range(scores.shape[0])]
    weighted = np.array([aggregate_ranks(q[b], weighting)[2] for b in range(n_resamples)])
    return q, weighted


@pytest.mark.parametrize("weighting", stats.WEIGHTINGS)
def test_plain_fold_bootstrap_matches_a_loop_over_drawn_indices(weighting):
    rng = np.random.default_rng(2)
    scores = rng.normal(0.6, 0.1, (4, 3, 6)) + rng.normal(0, 0.1, (4, 1, 1))
    scores[2, 1, 4] = np.nan
    got = stats.fold_bootstrap(scores, 0.1, resamples=50, seed=7, weighting=weighting, correction=False)
    counts = stats.resample_counts(np.random.default_rng(7), 50, 3, 6)
    assert (counts.sum(axis=-1) == 6).all()
    q, weighted = bootstrap_by_loop(scores, counts, weighting)
    np.testing.assert_allclose(got.q, q, rtol=1e-10)
    np.testing.assert_allclose(got.weighted, weighted, rtol=1e-10)
    np.testing.assert_array_equal(got.rank, sps.rankdata(weighted.round(10), method="min", axis=1))


def test_corrected_bootstrap_variance_of_a_fold_mean_is_nadeau_bengios():
    # Var of the corrected resampled mean = (1/k + n_test/n_train) S^2; a variance from B draws has a
    # relative standard error of about sqrt(2 / B) (1% at B = 20000): 5% is 5 of them.
    rng = np.random.default_rng(3)
    k, ratio = 12, 0.25
    scores = rng.normal(0.5, 0.1, (1, 2, k))
    got = stats.fold_bootstrap(scores, ratio, resamples=20000, seed=1)
    want = (1 / k + ratio) * scores[0].var(axis=-1, ddof=1)
    np.testing.assert_allclose(got.mean[:, 0].var(axis=0), want, rtol=0.05)
    np.testing.assert_array_equal(got.mean[:, 0].mean(axis=0) == scores[0].mean(-1), [False, False])  # not fixed
    np.testing.assert_allclose(got.mean[:, 0].mean(axis=0), scores[0].mean(-1), atol=0.05 * np.sqrt(want).max())


def test_task_bootstrap_matches_a_loop_over_drawn_tasks():
    rng = np.random.default_rng(4)
    q = rng.normal(10, 3, (5, 7))
    for weighting in stats.WEIGHTINGS:
        got = stats.task_bootstrap(q, resamples=40, seed=3, weighting=weighting)
        counts = stats.resample_counts(np.random.default_rng(3), 40, 1, 7)[:, 0]
        for b in range(40):
            drawn = q[:, np.repeat(np.arange(7), counts[b])]
            _, _, weighted = aggregate_ranks(drawn, weighting)
            np.testing.assert_allclose(got.weighted[b], weighted, rtol=1e-12)
            np.testing.assert_array_equal(got.rank[b], sps.rankdata(weighted.round(10), method="min"))


def test_nadeau_bengio_is_scipys_t_test_with_the_inflated_variance():
    rng = np.random.default_rng(5)
    diff = rng.normal(0.01, 0.02, (6, 15))
    plain = sps.ttest_1samp(diff, 0, axis=-1)
    mean, low, high, p = stats.nadeau_bengio(diff, 0.0, 0.9)
    np.testing.assert_allclose(p, plain.pvalue, rtol=1e-10)
    ci = plain.confidence_interval(0.9)
    np.testing.assert_allclose(low, ci.low, rtol=1e-10)
    np.testing.assert_allclose(high, ci.high, rtol=1e-10)
    # With n_test / n_train = r, t shrinks by sqrt((1/k) / (1/k + r)) and the interval widens by its inverse.
    r, k = 0.2, 15
    shrink = math.sqrt((1 / k) / (1 / k + r))
    _, low, high, p = stats.nadeau_bengio(diff, r, 0.9)
    np.testing.assert_allclose(p, 2 * sps.t.sf(np.abs(plain.statistic) * shrink, k - 1), rtol=1e-10)
    np.testing.assert_allclose(high - low, (ci.high - ci.low) / shrink, rtol=1e-10)


def test_identical_scores_differ_by_exactly_zero():
    rng = np.random.default_rng(6)
    scores = rng.normal(0.5, 0.1, (1, 3, 10))
    pair = np.concatenate([scores, scores, scores + 0.1])
    mean, low, high, p = stats.nadeau_bengio(pair[0] - pair[1], 0.11)
    assert (mean == 0).all() and (low == 0).all() and (high == 0).all() and (p == 1).all()
    boot = stats.fold_bootstrap(pair, 0.11, resamples=300, seed=0)
    assert (boot.q[:, 0] == boot.q[:, 1]).all() and (boot.weighted[:, 0] == boot.weighted[:, 1]).all()
    low, high, p = stats.normal_test(0.0, boot.weighted[:, 0] - boot.weighted[:, 1])
    assert (low, high, p) == (0.0, 0.0, 1.0)


def plain_holm(p):
    """Holm's step-down adjustment written out: the i-th smallest gets max over j <= i of (m - j) p_(j)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - j) * p[i]))
        out[i] = running
    return out


def test_holm_matches_a_plain_loop_and_leaves_nan_out():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.2, 30)
    np.testing.assert_allclose(stats.holm(p), plain_holm(list(p)), rtol=1e-15)
    with_nan = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(stats.holm(with_nan), [0.03, np.nan, 0.06, 0.06])


def test_friedman_and_nemenyi_match_scipy_and_demsars_table():
    rng = np.random.default_rng(8)
    q = rng.normal(0, 1, (4, 11)) + np.arange(4)[::-1, None]
    f = stats.friedman(q)
    plain = sps.friedmanchisquare(*q)
    assert f.statistic == pytest.approx(plain.statistic) and f.p_value == pytest.approx(plain.pvalue)
    ranks = np.array([[1 + (q[:, t] > q[m, t]).sum() for t in range(11)] for m in range(4)])  # no ties here
    np.testing.assert_allclose(f.average_rank, ranks.mean(axis=1))
    # Demsar (2006), Table 5(a): q_0.05 for k = 2..10 methods, to within one unit of its third decimal
    # (the table rounds most entries and truncates some: 2.343 for k = 3, where q = 2.3437).
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for n_methods, q_alpha in zip(range(2, 11), table):
        cd = stats.friedman(rng.normal(size=(n_methods, 11))).critical_difference
        assert cd / math.sqrt(n_methods * (n_methods + 1) / 66) == pytest.approx(q_alpha, abs=1e-3)


def test_cliques_are_the_maximal_runs_within_the_critical_difference():
    rng = np.random.default_rng(9)
    for _ in range(50):
        average = rng.uniform(1, 8, 8)
        cd = rng.uniform(0.3, 3)
        order = np.argsort(average, kind="stable")
        r = average[order]
        # Brute force: every span i..j of sorted ranks within cd, of two or more, not inside another.
        spans = [(i, j) for i in range(8) for j in range(i + 1, 8) if r[j] - r[i] <= cd]
        maximal = [(i, j) for i, j in spans if not any(a <= i and j <= b and (a, b) != (i, j) for a, b in spans)]
        assert stats.cliques(average, cd) == [[int(m) for m in order[i:j + 1]] for i, j in maximal]


# --- simulations of known truth -----------------------------------------------------------------

def test_equal_embeddings_are_called_different_at_the_nominal_rate_not_more():
    reps = 600
    a, b, ratio = simulate(seed=11, reps=reps, n=200, k=10, noise_a=1.0, noise_b=1.0)
    _, _, _, p = stats.nadeau_bengio(a - b, ratio)
    rate = (p < ALPHA).mean()
    assert rate <= ALPHA + binomial_bound(ALPHA, reps)
    assert rate >= ALPHA - binomial_bound(ALPHA, reps)  # not so conservative that it never sees anything
    # The simulation can tell: the paired t-test that ignores the folds' overlap rejects far too often.
    naive = sps.ttest_rel(a, b, axis=-1).pvalue
    assert (naive < ALPHA).mean() > 2 * ALPHA


def test_a_clearly_better_embedding_is_called_better():
    reps = 200
    a, b, ratio = simulate(seed=12, reps=reps, n=400, k=10, noise_a=0.5, noise_b=2.0)
    mean, low, _, p = stats.nadeau_bengio(a - b, ratio)
    assert ((p < ALPHA) & (mean > 0)).mean() >= 0.9
    assert (low > 0).mean() >= 0.9


def test_intervals_cover_a_known_difference_and_a_known_score_near_nominal():
    # The truth: the expected fold R^2 (and difference) of a probe trained on n_train rows of a new
    # data set, from 10,000 independent single-fold replications (standard error about 0.003, against
    # intervals about 0.2 wide).
    reps, k = 400, 40
    truth_a, truth_b, _ = simulate(seed=13, reps=10000, n=200, k=1, noise_a=1.0, noise_b=1.3)
    a, b, ratio = simulate(seed=14, reps=reps, n=200, k=k, noise_a=1.0, noise_b=1.3)
    truth_diff = (truth_a - truth_b).mean()
    assert truth_diff > 0.05  # a real difference, not the null of the test above
    _, low, high, _ = stats.nadeau_bengio(a - b, ratio)
    coverage = ((low <= truth_diff) & (truth_diff <= high)).mean()
    assert abs(coverage - 0.95) <= binomial_bound(0.95, reps)

    # The corrected fold bootstrap's percentile interval of a fold mean, replications as tasks. It
    # puts the normal's 1.96 where the t-interval has t_{k-1}'s: expected coverage P(|T_{k-1}| < 1.96).
    boot = stats.fold_bootstrap(a[None], ratio, resamples=1000, seed=0)
    low, high = np.quantile(boot.mean[:, 0], [0.025, 0.975], axis=0)
    expected = 2 * sps.t.cdf(sps.norm.ppf(0.975), k - 1) - 1
    coverage = ((low <= truth_a.mean()) & (truth_a.mean() <= high)).mean()
    assert abs(coverage - expected) <= binomial_bound(expected, reps)
    # Without the correction the same intervals miss far more often: the overlap matters.
    plain = stats.fold_bootstrap(a[None], ratio, resamples=1000, seed=0, correction=False)
    low, high = np.quantile(plain.mean[:, 0], [0.025, 0.975], axis=0)
    assert ((low <= truth_a.mean()) & (truth_a.mean() <= high)).mean() < expected - 3 * binomial_bound(expected, reps)
