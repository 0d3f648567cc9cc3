import numpy as np
import pytest
from sklearn.model_selection import ShuffleSplit

from neuco_jax.data import prepare
from neuco_jax.errors import InputError
from neuco_jax.plan import make_plan, shuffle_split


@pytest.mark.parametrize("n,k", [(2, 3), (10, 5), (57, 40), (1001, 7), (3333, 40)])
def test_shuffle_split_matches_sklearn_index_for_index(n, k):
    train, test = shuffle_split(n, k, seed=42)
    expected = list(ShuffleSplit(n_splits=k, test_size=0.1, random_state=42).split(np.zeros(n)))
    assert len(expected) == k == len(train)
    for (tr, te), (etr, ete) in zip(zip(train, test), expected):
        np.testing.assert_array_equal(tr, etr)
        np.testing.assert_array_equal(te, ete)


def test_shuffle_split_rejects_a_single_row():
    with pytest.raises(InputError, match="at least 2 rows"):
        shuffle_split(1, 3)


def test_plan_pads_and_keeps_each_epoch_a_permutation_of_the_fold(toy_tasks):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    plan = make_plan(bench, k_folds=3, epochs=2, batch_size=16)
    sizes = [len(t.ids) for t in bench.tasks]
    offsets = np.cumsum([0] + sizes)
    for t, n in enumerate(sizes):
        train, test = shuffle_split(n, 3)
        for k in range(3):
            p = 3 * t + k
            assert plan.n_train[p] == train.shape[1] and plan.n_test[p] == test.shape[1]
            np.testing.assert_array_equal(plan.test[p, :test.shape[1]], test[k] + offsets[t])
            for e in range(2):
                visited = plan.visits(p, e)
                np.testing.assert_array_equal(np.sort(visited), np.sort(train[k] + offsets[t]))
            assert not np.array_equal(plan.visits(p, 0), plan.visits(p, 1))
    assert plan.shuffle.shape[-1] % 16 == 0 and plan.test.shape[-1] % 16 == 0
    assert np.abs(plan.w0).max() <= 1 and np.abs(plan.b0).max() <= 1  # unit draws, scaled by the engine


def test_a_tasks_plan_does_not_depend_on_the_other_tasks(toy_tasks):
    tasks, ids, x = toy_tasks
    both = make_plan(prepare(tasks, ids, x), k_folds=2, epochs=2, batch_size=8)
    alone = make_plan(prepare(tasks[1:], ids, x), k_folds=2, epochs=2, batch_size=8)
    np.testing.assert_array_equal(both.w0[2:], alone.w0)
    offset = len(prepare(tasks, ids, x).tasks[0].ids)
    for p in range(alone.group):
        for e in range(2):
            np.testing.assert_array_equal(both.visits(2 + p, e) - offset, alone.visits(p, e))


def test_variants_share_folds_init_and_order(toy_tasks):
    """Learning rates are paired (same init and order); label fractions are nested subsets."""
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    k = 3
    plan = make_plan(bench, k_folds=k, epochs=2, batch_size=8, learning_rates=(1e-3, 1e-2),
                     label_fractions=(1.0, 0.25))
    assert plan.entries == (("random_cls", 1.0), ("random_cls", 0.25),
                            ("biomass_mean", 1.0), ("biomass_mean", 0.25))
    assert plan.group == 2 * k and len(plan.n_train) == 4 * 2 * k
    full, quarter = slice(0, k), slice(2 * k, 3 * k)  # entries 0 and 1, first learning rate
    np.testing.assert_array_equal(plan.lr[:2 * k], np.float32([1e-3] * k + [1e-2] * k))
    for f in range(k):  # lr variants: same order
        np.testing.assert_array_equal(plan.visits(f, 0), plan.visits(k + f, 0))
    np.testing.assert_array_equal(plan.w0[full], plan.w0[quarter])
    n_full, n_quarter = plan.n_train[0], plan.n_train[2 * k]
    assert n_quarter == round(0.25 * n_full)
    np.testing.assert_array_equal(plan.test[full], plan.test[quarter])  # same held-out rows
    for f in range(k):
        subset = set(plan.visits(2 * k + f, 0))
        assert len(subset) == n_quarter and subset == set(plan.visits(2 * k + f, 1))  # the same rows each epoch
        assert subset < set(plan.visits(f, 0))  # a subset of the fold's training rows
    # A plan without variants is the full-data, first-rate part of this one.
    plain = make_plan(bench, k_folds=k, epochs=2, batch_size=8)
    for f in range(k):
        for e in range(2):
            np.testing.assert_array_equal(plain.visits(f, e), plan.visits(f, e))


def test_weights_of_a_narrower_embedding_are_a_prefix(toy_tasks):
    tasks, ids, x = toy_tasks
    wide = make_plan(prepare(tasks, ids, x), k_folds=2, epochs=1, batch_size=8)
    narrow = make_plan(prepare(tasks, ids, x[:, :5]), k_folds=2, epochs=1, batch_size=8)
    np.testing.assert_array_equal(wide.w0[:, :5], narrow.w0)
    np.testing.assert_array_equal(wide.b0, narrow.b0)
    np.testing.assert_array_equal(wide.shuffle, narrow.shuffle)
    np.testing.assert_array_equal(wide.member, narrow.member)


@pytest.mark.parametrize("shuffle", ["per_fold", "shared"])
@pytest.mark.parametrize("fractions", [(1.0,), (1.0, 0.3)])
def test_windows_hold_every_minibatch_of_every_probe(toy_tasks, fractions, shuffle):
    """Minibatch s of each probe (its visits s*B..(s+1)*B) lies inside the windows the plan gives step s."""
    tasks, ids, x = toy_tasks
    plan = make_plan(prepare(tasks, ids, x), k_folds=5, epochs=3, batch_size=8, label_fractions=fractions,
                     learning_rates=(1e-3, 1e-2), shuffle=shuffle)
    assert plan.own_orders == (shuffle == "per_fold")
    B, W = plan.batch_size, plan.window
    for p in range(len(plan.n_train)):
        e = p // plan.group
        for epoch in range(plan.epochs):
            n = plan.n_units[e, epoch]
            start, step = plan.start[e, epoch, :n], plan.step[e, epoch, :n]
            assert np.all(np.diff(step) >= 0) and step[-1] == -(-plan.n_train[p] // B) - 1
            np.testing.assert_array_equal(np.flatnonzero(plan.last[e, epoch, :n]),
                                          [np.flatnonzero(step == s)[-1] for s in np.unique(step)])
            assert start.max() + W <= plan.shuffle.shape[-1]  # slices are never clamped
            # Where each visited sample sits in the epoch's shuffle.
            order = plan.shuffle[e, epoch, p % plan.group if plan.own_orders else 0]
            where = np.flatnonzero(plan.member[e, order, p % plan.group])  # the probe's rows, in visiting order
            np.testing.assert_array_equal(order[where] + plan.offset[e], plan.visits(p, epoch))
            for s in range(-(-plan.n_train[p] // B)):
                covered = np.concatenate([np.arange(a, a + W) for a in start[step == s]])
                assert np.isin(where[s * B:(s + 1) * B], covered).all()


@pytest.mark.parametrize("shuffle", ["per_fold", "shared"])
def test_each_fold_visits_its_rows_in_uniformly_random_order(toy_tasks, shuffle):
    """Shared or not, each fold's order is uniform (chi-square over epochs), as the reference's."""
    from scipy.stats import chisquare

    tasks, ids, x = toy_tasks
    plan = make_plan(prepare(tasks[:1], ids, x), k_folds=3, epochs=600, batch_size=8, shuffle=shuffle)
    for p in range(3):
        first = plan.visits(p, 0)[0]
        rank = np.array([np.flatnonzero(plan.visits(p, e) == first)[0] for e in range(plan.epochs)])
        n = plan.n_train[p]
        bins = np.bincount(rank * 10 // n, minlength=10)  # rank deciles
        expected = np.bincount(np.arange(n) * 10 // n, minlength=10) / n * plan.epochs
        assert chisquare(bins, expected).pvalue > 1e-4
