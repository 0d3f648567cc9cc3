"""`selection: nested`: the epoch (or SVM candidate) is chosen on an inner validation split of each
fold's training rows, and the fold's held-out rows are scored once, at that choice."""

import json

import numpy as np
import pytest
from conftest import EPS32
from test_engine import reference_fold

from neuco_jax import engine
from neuco_jax.config import ConfigError, config_from_dict
from neuco_jax.data import Task, prepare
from neuco_jax.fold_scores import FOLD_SCORES_FILE
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import make_plan, shuffle_split, stack_embeddings
from neuco_jax.probes import linear, svm
from neuco_jax.protocol import protocol_of
from neuco_jax.stores import write_embeddings

K = 4


def test_nested_plan_trains_twins_on_the_same_rows_and_scores_them_on_disjoint_splits(toy_tasks):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    plan = make_plan(bench, k_folds=K, epochs=2, batch_size=16, learning_rates=(0.02, 0.01),
                     label_fractions=(1.0, 0.5), selection="nested")
    assert plan.learning_rates == (0.02, 0.01, 0.02, 0.01) and plan.group == 4 * K
    for e, (name, fraction) in enumerate(plan.entries):
        t = [task.name for task in bench.tasks].index(name)
        n = len(bench.rows[t])
        train, test = shuffle_split(n, K, 42)
        n_val = test.shape[1]
        for lr_index in range(2):
            for j in range(K):
                p = e * plan.group + lr_index * K + j
                twin = p + 2 * K
                off = plan.offset[e]
                held_out = set(plan.test[p, :plan.n_test[p]] - off)
                validation = set(plan.test[twin, :plan.n_test[twin]] - off)
                assert held_out == set(test[j]) and validation == set(train[j, -n_val:])
                for epoch in range(2):
                    np.testing.assert_array_equal(plan.visits(p, epoch), plan.visits(twin, epoch))
                trained = set(plan.visits(p, 0) - off)
                kept = round(fraction * (train.shape[1] - n_val))
                assert trained == set(train[j, :kept]) and plan.n_train[p] == kept
                assert not trained & validation and not trained & held_out and not validation & held_out
                assert plan.lr[p] == plan.lr[twin] and plan.b0[p] == plan.b0[twin]
                np.testing.assert_array_equal(plan.w0[p], plan.w0[twin])


@pytest.mark.parametrize("shuffle", ["per_fold", "shared"])
def test_nested_fold_score_is_the_heldout_score_at_the_validation_best_epoch(toy_tasks, shuffle):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    epochs = 6
    plan = make_plan(bench, k_folds=K, epochs=epochs, batch_size=16, learning_rates=(0.05,), shuffle=shuffle,
                     selection="nested")
    emb = stack_embeddings([bench])
    probes = engine.run_plan(plan, emb)
    # Twins train the same weights: the same training losses, up to the rounding of products that XLA
    # may block differently for different probes (a few ulps per AdamW step, conftest.score_tolerance).
    steps = epochs * np.ceil(plan.n_train.max() / 16)
    np.testing.assert_allclose(probes.train_loss[0, :K], probes.train_loss[0, K:2 * K], rtol=2 * steps * EPS32)
    for e, (name, _) in enumerate(plan.entries):
        folds, = [f for f in linear.task_folds(plan, probes, 0, 0, 1.0, epochs, bench, {}) if f.name == name]
        chosen = folds.hyperparameters["selected_epochs"]
        for j in range(K):
            p = e * plan.group + j
            held_out = reference_fold(plan, emb, p)                  # float64, every epoch
            validation = reference_fold(plan, emb, p + K)
            # float32 and float64 scores agree to 1e-5 (test_engine): any epoch within that of the best
            # validation score may be the choice; the score is the held-out score at the chosen one.
            allowed = np.flatnonzero(validation >= validation.max() - 2e-5) + 1
            assert chosen[j] in allowed
            assert folds.scores[j] == pytest.approx(held_out[chosen[j] - 1], abs=1e-5)
            assert folds.test_fold_scores[j] == pytest.approx(held_out.max(), abs=1e-5)
            assert folds.test_fold_scores[j] >= folds.scores[j]


def _noise_files(tmp_path, n=400, dim=24, seed=0):
    """Embeddings and labels drawn independently: no method can have skill."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:032x}" for i in range(n)], dtype=object)
    write_embeddings(tmp_path / "noise.npz", ids, rng.normal(size=(n, dim)).astype(np.float32))
    labels = tmp_path / "labels"
    labels.mkdir()
    y = rng.normal(size=n)
    labels.joinpath("noise__regression.csv").write_text(
        "id,label\n" + "".join(f"{i},{float(v)!r}\n" for i, v in zip(ids, y)))
    return tmp_path / "noise.npz", labels


def test_nested_selection_shows_no_skill_on_noise_and_the_optimism_is_recorded(tmp_path):
    submission, labels = _noise_files(tmp_path)
    keys = {"k_folds": 20, "probe_params": {"epochs": 15, "learning_rate": 0.01, "batch_size": 32},
            "normalize_labels": False}
    nested, = evaluate(submission, labels, config_from_dict({**keys, "selection": "nested"}),
                       output_dir=tmp_path / "out", phase="nested")
    reference, = evaluate(submission, labels, config_from_dict(keys), output_dir=tmp_path / "out",
                          phase="reference")
    s_nested, s_ref = nested.scores[0].fold_scores, reference.scores[0].fold_scores
    # No skill: the nested mean R^2 is not above 0 by more than two standard errors.
    assert s_nested.mean() <= 2 * s_nested.std(ddof=1) / np.sqrt(len(s_nested))
    # The reference's selection (another run, more training rows) is not below it on average.
    assert s_ref.mean() >= s_nested.mean()

    # The summary's optimism is the mean over folds of the best held-out epoch minus the nested choice,
    # recomputed here from fold_scores.csv's per-epoch columns and the chosen epochs.
    summary = json.loads((nested.run_dir / "results_summary.json").read_text())
    result = json.loads((nested.run_dir / "noise" / "noise_result.json").read_text())
    chosen = np.array(result["hyperparamaters"]["selected_epochs"])
    rows = [line.split(",") for line in (nested.run_dir / FOLD_SCORES_FILE).read_text().splitlines()[1:]]
    per_epoch = np.array([[float(v) for v in row[5:]] for row in rows])   # (folds, epochs)
    score = np.array([float(row[4]) for row in rows])
    np.testing.assert_array_equal(score, per_epoch[np.arange(len(rows)), chosen - 1])
    optimism = summary["selection_optimism"]["noise"]
    assert optimism == pytest.approx(np.mean(per_epoch.max(axis=1) - score), rel=1e-12)
    assert optimism > 0  # on noise, the best of 15 held-out epochs beats a blind choice
    assert "selection_optimism" not in json.loads((reference.run_dir / "results_summary.json").read_text())


def test_nested_svm_chooses_the_candidate_on_validation_rows():
    rng = np.random.default_rng(3)
    n, d = 160, 6
    ids = np.array([f"{i:032x}" for i in range(n)], dtype=object)
    x = rng.normal(size=(n, d))
    reg = Task("target", "regression", ids, x[:, 0] ** 2 + 0.3 * rng.normal(size=n))
    bench = prepare([reg], ids, x.astype(np.float32))
    config = config_from_dict({"k_folds": 3, "probe_type": "svm", "selection": "nested", "probe_params": {
        "C_start_end": [0.01, 10], "kernel_degree_list": [2], "kernel_coef0_start_end": [0, 1],
        "epsilon_list": [0.1], "opt_params": {"n_iter": 5, "optimizer_kwargs": {"n_initial_points": 5}}}})
    (folds,), _ = svm.run(bench, config)
    candidates = folds.hyperparameters["selected_candidates"]
    # Independently: refit every candidate on each fold's inner training rows, scored on both splits.
    train, test = shuffle_split(n, 3, 42)
    n_val = test.shape[1]
    task = bench.tasks[0]  # labels as the probe sees them (normalised)
    data = svm.task_data(bench.x[bench.rows[0]], task.labels, train[:, :-n_val], train[:, -n_val:], True,
                         outer=test)
    points = svm.search.search(config.svm, True, config.seed, lambda b: np.zeros(len(b)))
    scores = svm.fit_candidates(data, [svm.Candidate(**p) for p in points], regression=True)
    for j in range(3):
        assert candidates[j] == int(np.nanargmax(scores.metric[j]))
        assert folds.scores[j] == scores.outer_metric[j, candidates[j]]
        assert folds.test_fold_scores[j] == np.nanmax(scores.outer_metric[j])
    # The held-out R^2 against a plain numpy computation from the decision values
    y_test = task.labels[test]
    z = scores.outer_heldout[np.arange(3), candidates]
    r2 = 1 - ((y_test - z) ** 2).sum(1) / ((y_test - y_test.mean(1, keepdims=True)) ** 2).sum(1)
    np.testing.assert_allclose(folds.scores, r2, rtol=1e-12)


def test_selection_is_validated_and_part_of_the_protocol():
    with pytest.raises(ConfigError, match="'selection'.*'best'"):
        config_from_dict({"k_folds": 2, "selection": "best"})
    with pytest.raises(ConfigError, match="ridge already chooses alpha"):
        config_from_dict({"k_folds": 2, "probe_type": "ridge", "selection": "nested"})
    nested = protocol_of({"config": {"k_folds": 2, "selection": "nested"}})
    assert nested != protocol_of({"config": {"k_folds": 2}})
    assert protocol_of({"config": {"k_folds": 2}}) == protocol_of({"config": {"k_folds": 2, "selection": "test_fold"}})
