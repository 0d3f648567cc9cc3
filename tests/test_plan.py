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
    plan = make_plan(bench, k_folds=3, epochs=2, batch_size=16, learning_rate=1e-3)
    sizes = [len(t.ids) for t in bench.tasks]
    offsets = np.cumsum([0] + sizes)
    for t, n in enumerate(sizes):
        train, test = shuffle_split(n, 3)
        for k in range(3):
            p = 3 * t + k
            assert plan.n_train[p] == train.shape[1] and plan.n_test[p] == test.shape[1]
            np.testing.assert_array_equal(plan.test[p, :test.shape[1]], test[k] + offsets[t])
            for e in range(2):
                visited = plan.order[p, e, :plan.n_train[p]]
                np.testing.assert_array_equal(np.sort(visited), np.sort(train[k] + offsets[t]))
            assert not np.array_equal(plan.order[p, 0], plan.order[p, 1])
    assert plan.order.shape[-1] % 16 == 0 and plan.test.shape[-1] % 16 == 0
    bound = 1 / np.sqrt(x.shape[1])
    assert np.abs(plan.w0).max() <= bound and np.abs(plan.b0).max() <= bound


def test_a_tasks_plan_does_not_depend_on_the_other_tasks(toy_tasks):
    tasks, ids, x = toy_tasks
    both = make_plan(prepare(tasks, ids, x), k_folds=2, epochs=2, batch_size=8, learning_rate=1e-3)
    alone = make_plan(prepare(tasks[1:], ids, x), k_folds=2, epochs=2, batch_size=8, learning_rate=1e-3)
    np.testing.assert_array_equal(both.w0[2:], alone.w0)
    offset = len(prepare(tasks, ids, x).tasks[0].ids)
    n = alone.n_train[0]
    np.testing.assert_array_equal(both.order[2:, :, :n] - offset, alone.order[:, :, :n])
