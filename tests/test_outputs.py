"""enable_plots and store_probes: files drawn from the one pass, probes that predict from raw embeddings."""

import numpy as np
import pytest

from neuco_jax import load_probe
from neuco_jax.config import Config
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import make_plan, stack_embeddings
from neuco_jax.plots import confusion
from neuco_jax.synthetic import make_benchmark


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=1000, dim=64, n_methods=1)


def test_plots_are_written_per_task_and_fold(bench, tmp_path):
    config = Config(k_folds=3, epochs=2, batch_size=16, enable_plots=True, task_filter=("crops", "random_cls"))
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    crops = sorted(p.name for p in (run.run_dir / "crops").glob("*.png"))
    assert crops == ["fold_0_scatter.png", "fold_1_scatter.png", "fold_2_scatter.png",
                     "loss_train.png", "loss_validation.png"]
    cls = sorted(p.name for p in (run.run_dir / "random_cls").glob("*.png"))
    assert cls[:3] == ["fold_0_confusion.png", "fold_1_confusion.png", "fold_2_confusion.png"]
    for png in (run.run_dir / "crops").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_counts_match_sklearn():
    from sklearn.metrics import confusion_matrix
    rng = np.random.default_rng(0)
    y, z = (rng.uniform(size=50) > 0.5).astype(float), rng.normal(size=50)
    np.testing.assert_array_equal(confusion(y, z), confusion_matrix(y, z > 0, labels=[0, 1]))
    z[:10] = 0.0  # an SVM's decision of exactly 0 is SVC.predict's class 1
    np.testing.assert_array_equal(confusion(y, z, "libsvm"), confusion_matrix(y, z >= 0, labels=[0, 1]))


def test_a_stored_svm_predicts_class_1_at_a_zero_decision_as_sklearn():
    """Zero embeddings, balanced labels: every kernel value is 0, SVC's decision is exactly 0 and it predicts 1."""
    from sklearn.svm import SVC

    from neuco_jax.probes.stored import KernelProbe
    x, y = np.zeros((20, 4)), np.arange(20) % 2
    model = SVC(kernel="poly", degree=2, gamma=1.0, coef0=0.0).fit(x, y)
    probe = KernelProbe(task="t", task_type="classification", mean=0.0, std=1.0,
                        support_vectors=x[model.support_], dual_coef=model.dual_coef_[0], b=float(model.intercept_[0]),
                        gamma=1.0, coef0=0.0, degree=2)
    assert (model.decision_function(x) == 0).all() and (probe.decision_function(x) == 0).all()
    np.testing.assert_array_equal(probe.predict(x), model.predict(x))


def test_stored_probes_equal_an_independent_float64_fit(bench, tmp_path):
    """Each stored probe is the refit of test_engine's float64 AdamW loop on all of its task's rows.

    The loop follows the refit plan's batch order and initial weights; everything else (the
    standardisation, the label range, the predictions in label units) is computed here from
    the raw files with numpy.
    """
    from test_engine import reference_fold

    config = Config(k_folds=3, epochs=5, batch_size=16, learning_rate=0.03, store_probes=True)
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    tasks = load_labels(bench.labels_dir)
    ids, raw = load_submission(bench.submissions["method_a"], valid_ids={i for t in tasks for i in t.ids})
    prepared = prepare(tasks, ids, raw)
    plan = make_plan(prepared, k_folds=1, epochs=config.epochs, batch_size=config.batch_size,
                     learning_rates=(config.learning_rate,), seed=config.seed, refit=True)
    emb = stack_embeddings([prepared])
    mean, std = raw.mean(dtype=np.float64), raw.std(dtype=np.float64)
    standardised = (raw.astype(np.float64) - mean) / std
    row = {i: r for r, i in enumerate(ids)}
    for p, task in enumerate(tasks):
        w, b = reference_fold(plan, emb, p, keep=True)[1]
        probe = load_probe(run.run_dir / task.name / "probe")
        assert (probe.task, probe.task_type) == (task.name, task.task_type)
        assert probe.mean == pytest.approx(mean, rel=1e-12) and probe.std == pytest.approx(std, rel=1e-12)
        # float32 training against float64 over 5 epochs of steps of size lr: a few ulps per step.
        np.testing.assert_allclose(probe.w, w, atol=1e-4)
        assert probe.b == pytest.approx(b, abs=1e-4)
        z = standardised @ w + b  # the independent fit's logits on every submission row
        if task.is_classification:
            sure = np.abs(z) > 1e-3  # rows whose class a float32 rounding cannot flip
            np.testing.assert_array_equal(probe.predict(raw)[sure], (z > 0)[sure])
            assert sure.mean() > 0.99
        else:
            kept = task.labels[np.isin(task.ids, ids)]  # the label range after the join
            lo, hi = kept.min(), kept.max()
            np.testing.assert_allclose(probe.predict(raw), lo + z * (hi - lo), atol=1e-3 * (hi - lo))
            if not task.name.startswith("random"):  # a real task is learnt: predictions track the labels
                pred = probe.predict(raw[[row[i] for i in task.ids if i in row]])
                assert np.corrcoef(pred, kept)[0, 1] > 0.5, task.name
    assert len(tasks) == len(run.scores)


def test_a_diverging_learning_rate_gives_nan_folds_and_the_run_completes(bench, tmp_path):
    import json
    config = Config(k_folds=3, epochs=2, batch_size=16, learning_rate=1e30, task_filter=("crops",))
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    crops = run.scores[0]
    assert np.isnan(crops.fold_scores).all() and np.isnan(crops.q_stat)
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    assert summary["failed_folds"] == {"crops": 3}


def test_same_inputs_and_config_give_bit_identical_scores(bench, tmp_path):
    config = Config(k_folds=3, epochs=2, batch_size=16)
    a, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path / "a")
    b, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path / "b")
    for s, t in zip(a.scores, b.scores):
        np.testing.assert_array_equal(s.fold_scores, t.fold_scores)
    other, = evaluate(bench.submissions["method_a"], bench.labels_dir, Config(k_folds=3, epochs=2, batch_size=16,
                                                                               seed=7), output_dir=tmp_path / "c")
    assert any(not np.array_equal(s.fold_scores, t.fold_scores) for s, t in zip(a.scores, other.scores))
