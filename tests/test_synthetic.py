"""Tests of the synthetic benchmark generator, read back with plain pandas."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import ShuffleSplit

from neuco_jax.synthetic import TASKS, make_benchmark

N_IDS, DIM = 600, 32
HEX_ID = re.compile(r"[0-9a-f]{32}")
ZARR_SUFFIX = r"\.zarr(\.zip)?$"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=N_IDS, dim=DIM, seed=0)


def read_labels(bench, task, task_type):
    return pd.read_csv(bench.labels_dir / f"{task}__{task_type}.csv", dtype={"id": str})


def read_submission(path):
    """Embeddings (n, DIM) indexed by id with the .zarr(.zip) suffix removed."""
    sub = pd.read_csv(path, dtype={"id": str})
    sub.index = sub.pop("id").str.replace(ZARR_SUFFIX, "", regex=True)
    return sub


def test_files_have_reference_names_and_columns(bench):
    assert sorted(p.name for p in bench.labels_dir.glob("*.csv")) == sorted(
        f"{task}__{task_type}.csv" for task, task_type in TASKS)
    for task, task_type in TASKS:
        assert list(read_labels(bench, task, task_type).columns) == ["id", "label"]

    assert list(bench.submissions) == bench.expected_order
    assert bench.expected_order == ["method_a", "method_b", "method_c", "random_baseline"]
    for path in bench.submissions.values():
        header = path.open().readline().rstrip("\n").split(",")
        assert header == ["id", *map(str, range(DIM))]

    truth = json.loads((bench.root / "ground_truth.json").read_text())
    assert truth["expected_order"] == bench.expected_order
    assert truth["params"]["n_ids"] == N_IDS


def test_labels_are_plausible_with_some_missing(bench):
    n_rows = n_missing = 0
    labelled = set()
    for task, task_type in TASKS:
        labels = read_labels(bench, task, task_type)
        assert len(labels) >= 60, task
        n_rows += len(labels)
        n_missing += labels["label"].isna().sum()
        labelled |= set(labels["id"])
    assert 0 < n_missing < 0.05 * n_rows
    assert len(labelled) == N_IDS
    assert set(read_labels(bench, "random_cls", "classification")["label"].dropna()) == {0, 1}
    assert (read_labels(bench, "biomass_mean", "regression")["label"].dropna() > 0).all()


def test_ids_look_like_real_submissions(bench):
    labelled = set()
    for task, task_type in TASKS:
        ids = read_labels(bench, task, task_type)["id"]
        assert ids.map(lambda s: bool(HEX_ID.fullmatch(s))).all()
        labelled |= set(ids)

    orders = []
    for path in bench.submissions.values():
        raw_ids = pd.read_csv(path, usecols=["id"], dtype={"id": str})["id"]
        assert raw_ids.str.endswith(".zarr.zip").sum() > 0
        assert (raw_ids.str.endswith(".zarr") & ~raw_ids.str.endswith(".zarr.zip")).sum() > 0
        clean = raw_ids.str.replace(ZARR_SUFFIX, "", regex=True)
        assert clean.is_unique
        assert clean.map(lambda s: bool(HEX_ID.fullmatch(s))).all()
        assert labelled < set(clean), "every labelled id plus some unlabelled ones"
        orders.append(list(clean))
    assert orders[0] != orders[1], "rows are shuffled per submission"


def test_same_seed_gives_identical_files(tmp_path):
    first = make_benchmark(tmp_path / "a", n_ids=200, dim=8, n_methods=2, seed=3)
    second = make_benchmark(tmp_path / "b", n_ids=200, dim=8, n_methods=2, seed=3)
    other = make_benchmark(tmp_path / "c", n_ids=200, dim=8, n_methods=2, seed=4)
    files = sorted(p.relative_to(first.root) for p in first.root.rglob("*.csv"))
    assert len(files) == len(TASKS) + 3
    for rel in files:
        assert (first.root / rel).read_bytes() == (second.root / rel).read_bytes(), rel
        assert (first.root / rel).read_bytes() != (other.root / rel).read_bytes(), rel


def test_ridge_recovers_expected_order(bench):
    """Closed-form ridge (alpha by leave-one-out) on 90%, R^2 on 10%, 10 splits."""
    real_tasks = [(t, tt) for t, tt in TASKS if not t.startswith("random")]
    mean_r2 = {}
    for method, path in bench.submissions.items():
        raw = read_submission(path)
        # One scalar mean and std over the whole matrix, as the reference does.
        sub = (raw - raw.to_numpy().mean()) / raw.to_numpy().std()
        scores = []
        for task, task_type in real_tasks:
            labels = read_labels(bench, task, task_type).dropna()
            x = sub.loc[labels["id"]].to_numpy()  # (n_task, DIM)
            y = labels["label"].to_numpy()  # (n_task,)
            splits = ShuffleSplit(n_splits=10, test_size=0.1, random_state=42).split(x)
            for train, test in splits:
                probe = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x[train], y[train])
                scores.append(r2_score(y[test], probe.predict(x[test])))
        mean_r2[method] = np.mean(scores)

    r2 = [mean_r2[m] for m in bench.expected_order]
    assert np.all(np.diff(r2) < -0.05), mean_r2
    assert r2[0] > 0.3, mean_r2
    assert abs(mean_r2["random_baseline"]) < 0.15, mean_r2


@pytest.mark.parametrize("kwargs", [
    {"n_ids": 10}, {"dim": 0}, {"n_methods": 0}, {"n_methods": 27}, {"seed": -1},
])
def test_rejects_out_of_range_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_benchmark(tmp_path, **kwargs)


def test_probes_learn_at_demo_settings(tmp_path):
    """The demo's probe (D=1024, lr 1e-3, batch 64, 10 epochs) learns even from 1,000 of its 13,260 ids.

    Real tasks get a positive mean R^2 for method_a (an untrained probe scores far below 0) and
    the leaderboard recovers the known order.
    """
    from neuco_jax.config import Config
    from neuco_jax.leaderboard import collect_runs, rank_runs
    from neuco_jax.pipeline import sweep

    bench = make_benchmark(tmp_path / "data", n_ids=1000, dim=1024, n_methods=2)
    runs = sweep(list(bench.submissions.values()), bench.labels_dir, Config(k_folds=3, epochs=10),
                 output_dir=tmp_path / "out", method_names=list(bench.submissions), phase="demo")
    real = {run.name: np.mean([s.mean_score for s in run.scores if not s.name.startswith("random")])
            for run in runs}
    assert real["method_a"] > 0.3, real
    assert real["method_a"] > real["method_b"] > real["random_baseline"], real
    board = rank_runs(collect_runs(tmp_path / "out", "demo"))
    assert [e.rsplit("_", 2)[0] for e in board["experiment"]] == bench.expected_order
