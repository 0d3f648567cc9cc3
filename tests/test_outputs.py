"""enable_plots and store_probes: files drawn from the one pass, probes that predict from raw embeddings."""

import numpy as np
import pytest

from neuco_jax import load_probe
from neuco_jax.config import Config
from neuco_jax.data import load_labels, load_submission
from neuco_jax.pipeline import evaluate
from neuco_jax.plots import confusion
from neuco_jax.synthetic import make_benchmark


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=300, dim=12, n_methods=1)


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


def test_stored_probe_round_trip_predicts_from_raw_embeddings(bench, tmp_path):
    config = Config(k_folds=3, epochs=3, batch_size=16, learning_rate=0.01, store_probes=True)
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    tasks = {t.name: t for t in load_labels(bench.labels_dir)}
    ids, raw = load_submission(bench.submissions["method_a"], valid_ids={i for t in tasks.values() for i in t.ids})
    mean, std = raw.mean(dtype=np.float64), raw.std(dtype=np.float64)
    for name in ("crops", "random_cls"):
        probe = load_probe(run.run_dir / name / "probe")
        assert probe.task == name and probe.mean == pytest.approx(mean) and probe.std == pytest.approx(std)
        logits = probe.decision_function(raw)
        np.testing.assert_allclose(logits, ((raw - mean) / std) @ probe.w + probe.b, rtol=1e-5, atol=1e-5)
        if name == "crops":
            task = tasks[name]
            lo, hi = task.labels.min(), task.labels.max()
            np.testing.assert_allclose(probe.predict(raw), lo + logits * (hi - lo), rtol=1e-6)
            # Trained on all rows: its predictions correlate with the labels.
            row = {i: r for r, i in enumerate(ids)}
            pred = probe.predict(raw[[row[i] for i in task.ids]])
            assert np.corrcoef(pred, task.labels)[0, 1] > 0.5
        else:
            assert set(np.unique(probe.predict(raw))) <= {0, 1}


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
