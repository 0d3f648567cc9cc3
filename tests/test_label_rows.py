"""End to end: every label reaches the engine next to its own embedding row.

Two tasks whose labels are exact functions of one embedding column go through real, messy
files (id suffixes, shuffled rows, ids missing on either side, empty labels, an exclude
file), loading, the join, standardisation, label scaling and the plan. A label paired with
another row's embedding breaks the function, and a probe can no longer fit it exactly.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from neuco_jax.config import Config
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import make_plan, stack_embeddings

N, D = 700, 16
REG_COLUMN, CLS_COLUMN = 5, 2


def regression_label(x):
    return 3 * x[:, REG_COLUMN] + 1


def classification_label(x):
    return (x[:, CLS_COLUMN] > 0).astype(float)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A labels folder, a submission CSV and an exclude file; returns (labels_dir, submission, exclude)."""
    root = tmp_path_factory.mktemp("label_rows")
    rng = np.random.default_rng(11)
    ids = np.array([f"{v:032x}" for v in rng.integers(0, 2**63, N)], dtype=object)
    x = rng.normal(size=(N, D)) + rng.normal(0, 2, D)  # per-dimension offsets, as real embeddings
    # The class column keeps a margin from 0, so a linear probe can separate the classes exactly.
    x[:, CLS_COLUMN] = np.sign(x[:, CLS_COLUMN] - 0.3) * (0.5 + np.abs(rng.normal(size=N)))
    x = x.astype(np.float32)

    # Submission: shuffled rows, ~10% of ids with a .zarr.zip or .zarr suffix, 40 ids in no label
    # file (the last 40), and 30 labelled ids missing altogether.
    in_submission = np.ones(N, bool)
    in_submission[rng.choice(N - 40, 30, replace=False)] = False
    order = rng.permutation(np.flatnonzero(in_submission))
    sub_ids = ids[order].copy()
    suffixed = rng.random(len(order)) < 0.1
    sub_ids[suffixed] = [i + (".zarr.zip" if k % 2 else ".zarr") for k, i in enumerate(sub_ids[suffixed])]
    sub = pd.DataFrame(x[order], columns=[str(j) for j in range(D)])
    sub.insert(0, "id", sub_ids)
    sub.to_csv(root / "emb.csv", index=False)

    labels = root / "labels"
    labels.mkdir()
    for name, func, share in (("linear__regression", regression_label, 0.8),
                              ("sign__classification", classification_label, 0.7)):
        rows = rng.permutation(np.flatnonzero(rng.random(N - 40) < share))  # label-file order: shuffled
        y = func(x[rows]).astype(object)
        y[rng.random(len(rows)) < 0.03] = ""  # empty labels are skipped
        pd.DataFrame({"id": ids[rows], "label": y}).to_csv(labels / f"{name}.csv", index=False)
    excluded = rng.choice(ids[:N - 40][in_submission[:N - 40]], 25, replace=False)  # labelled, submitted
    (root / "exclude.txt").write_text("\n".join(excluded) + "\n")
    return labels, root / "emb.csv", root / "exclude.txt"


def test_every_plan_label_is_the_function_of_the_row_the_engine_reads(files):
    labels_dir, submission, exclude = files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty labels are reported
        tasks = load_labels(labels_dir)
    ids, x = load_submission(submission, valid_ids={i for t in tasks for i in t.ids}, exclude_file=exclude)
    bench = prepare(tasks, ids, x)
    plan = make_plan(bench, k_folds=4, epochs=2, batch_size=16, learning_rates=(0.1,))
    emb = stack_embeddings([bench])
    excluded = set(exclude.read_text().split())
    for t, (task, func) in enumerate(zip(tasks, (regression_label, classification_label))):
        assert task.name == ("linear", "sign")[t]
        kept = [i for i in task.ids if i in set(ids) and i not in excluded]
        assert 0 < len(kept) < len(task.ids)  # the join and the exclude file dropped some
        # The label range after the join, from the raw label file (empty cells dropped).
        raw = pd.read_csv(labels_dir / f"{task.name}__{task.task_type}.csv", dtype={"id": str}).dropna()
        raw_kept = raw[raw["id"].isin(kept)]["label"].to_numpy(np.float64)
        lo, hi = raw_kept.min(), raw_kept.max()
        for p in range(t * plan.k_folds, (t + 1) * plan.k_folds):
            samples = np.concatenate([plan.visits(p, 0), plan.test[p, :plan.n_test[p]]])
            assert len(np.unique(samples)) == len(kept)  # every row: training or held out
            # The rows the engine reads, back in the submission's units.
            rows = emb.x[0][emb.sample_row[0][samples]].astype(np.float64) * bench.std + bench.mean
            want = func(rows)
            if not task.is_classification:
                want = (want - lo) / (hi - lo)
            np.testing.assert_allclose(plan.y[samples], want, atol=1e-5)


def test_an_exactly_linear_task_is_learnt_exactly(files, tmp_path):
    labels_dir, submission, exclude = files
    config = Config(k_folds=4, epochs=20, batch_size=16, learning_rate=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run, = evaluate(submission, labels_dir, config, output_dir=tmp_path, exclude_file=exclude)
    scores = {s.name: s.fold_scores for s in run.scores}
    assert np.all(scores["linear"] > 0.99), scores["linear"]
    np.testing.assert_array_equal(scores["sign"], 1.0)
