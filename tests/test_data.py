"""Loading and preprocessing as the reference does, checked against plain numpy/pandas."""

import numpy as np
import pandas as pd
import pytest

from neuco_jax.data import Task, load_labels, load_submission, prepare
from neuco_jax.errors import InputError


def write_submission(path, ids, x, names=None):
    names = names or [str(j) for j in range(x.shape[1])]
    df = pd.DataFrame(x, columns=names)
    df.insert(0, "id", ids)
    df.to_csv(path, index=False)
    return path


def test_labels_folder_is_read_sorted_with_missing_labels_skipped(tmp_path):
    (tmp_path / "zeta__regr.csv").write_text("id,label\na,1.5\nb,\nc,2.5\n")
    (tmp_path / "alpha__cls.csv").write_text("id,label\nc,1\nb,0\n")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match="zeta__regr.csv: skipped 1 row with an empty label"):
        tasks = load_labels(tmp_path)
    assert [(t.name, t.task_type) for t in tasks] == [("alpha", "classification"), ("zeta", "regression")]
    assert list(tasks[1].ids) == ["a", "c"] and list(tasks[1].labels) == [1.5, 2.5]
    assert list(tasks[0].ids) == ["c", "b"]  # label-file order, not sorted


@pytest.mark.parametrize("name, message", [
    ("crops__segmentation.csv", "unknown task type 'segmentation'"),
    ("crops.csv", "<task_name>__<task_type>.csv"),
])
def test_bad_label_file_names(tmp_path, name, message):
    (tmp_path / name).write_text("id,label\na,1\n")
    with pytest.raises(InputError, match=message) as err:
        load_labels(tmp_path)
    assert name in str(err.value)


def test_empty_labels_folder(tmp_path):
    with pytest.raises(InputError, match="no \\*.csv label files"):
        load_labels(tmp_path)


@pytest.mark.parametrize("first", [0, 1])
def test_digit_columns_are_ordered_by_value_zero_or_one_based(tmp_path, first):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12)).astype(np.float32)
    names = [str(first + j) for j in range(12)]
    shuffled = rng.permutation(12)
    df = pd.DataFrame(x[:, shuffled], columns=[names[j] for j in shuffled])
    df.insert(0, "id", list("abcde"))
    df.insert(3, "note", "x")  # a non-digit column is ignored when digit columns exist
    df.to_csv(tmp_path / "s.csv", index=False)
    ids, got = load_submission(tmp_path / "s.csv")
    assert list(ids) == list("abcde")
    np.testing.assert_array_equal(got, x)


def test_non_digit_columns_fallback(tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_submission(tmp_path / "s.csv", ["a", "b", "c"], x, names=["emb_a", "emb_b"])
    np.testing.assert_array_equal(load_submission(tmp_path / "s.csv")[1], x)


def test_ids_cleaned_filtered_excluded_and_bad_cells_zeroed(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,0,1\n"
                    "a.zarr.zip,1.0,2.0\n"
                    "b.zarr,nan,3.0\n"
                    "c,oops,4.0\n"
                    "d,5.0,\n"
                    "e,6.0,7.0\n")
    (tmp_path / "exclude.txt").write_text("e\n\n")
    with pytest.warns(UserWarning, match="s.csv: 1 non-numeric cell .*line 4, column '0': 'oops'"):
        ids, x = load_submission(path, valid_ids={"a", "b", "c", "d", "e"}, exclude_file=tmp_path / "exclude.txt")
    assert list(ids) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(x, [[1, 2], [0, 3], [0, 4], [5, 0]])
    with pytest.warns(UserWarning, match="non-numeric"):
        ids, _ = load_submission(path, valid_ids={"c", "a"})
    assert list(ids) == ["a", "c"]


def test_embedding_dim_pads_or_rejects(tmp_path):
    x = np.ones((2, 3), np.float32)
    write_submission(tmp_path / "s.csv", ["a", "b"], x)
    _, padded = load_submission(tmp_path / "s.csv", embedding_dim=5)
    np.testing.assert_array_equal(padded, np.hstack([x, np.zeros((2, 2))]))
    with pytest.raises(InputError, match="3 embedding columns but embedding_dim is 2"):
        load_submission(tmp_path / "s.csv", embedding_dim=2)


def test_submission_without_id_column(tmp_path):
    (tmp_path / "s.csv").write_text("key,0\na,1\n")
    with pytest.raises(InputError, match="s.csv: no 'id' column"):
        load_submission(tmp_path / "s.csv")


def test_prepare_standardises_globally_and_normalises_labels_per_task():
    rng = np.random.default_rng(1)
    ids = np.array(list("abcdefghijklmnop"), dtype=object)
    x = rng.normal(3.0, 2.0, size=(16, 4)).astype(np.float32)
    # 'z' has no embedding and holds the largest label: min-max scaling before the join would show.
    t1_ids = np.array(list("zahcbdefgijk"), dtype=object)
    t1_labels = np.arange(12, 0, -1, dtype=np.float64) * 1.5
    tasks = [Task("t1", "regression", t1_ids, t1_labels),
             Task("t2", "classification", np.array(["b", "d"], dtype=object), np.array([0.0, 1.0]))]
    bench = prepare(tasks, ids, x, task_filter=["t1"])
    expected = (x.astype(np.float64) - x.mean(dtype=np.float64)) / x.std(dtype=np.float64)
    np.testing.assert_allclose(bench.x, expected, rtol=1e-6, atol=1e-6)
    assert [t.name for t in bench.tasks] == ["t1"]
    t1 = bench.tasks[0]
    covered = t1_ids != "z"
    assert list(t1.ids) == list(t1_ids[covered])  # label-file order
    kept = t1_labels[covered]
    np.testing.assert_allclose(t1.labels, (kept - kept.min()) / (kept.max() - kept.min()))  # after the join
    np.testing.assert_array_equal(bench.rows[0], [list(ids).index(i) for i in t1_ids[covered]])

    raw = prepare(tasks, ids, x, standardize=False, normalize_labels=False)
    np.testing.assert_array_equal(raw.x, x)
    np.testing.assert_array_equal(raw.tasks[1].labels, [0.0, 1.0])
    with pytest.raises(InputError, match="task_filter names unknown task 'nope'"):
        prepare(tasks, ids, x, task_filter=["nope"])
