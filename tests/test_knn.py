"""The kNN probe against scikit-learn's KNeighborsRegressor / KNeighborsClassifier on each fold's training rows."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn.metrics import f1_score, r2_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from neuco_jax import load_probe
from neuco_jax.config import config_from_dict
from neuco_jax.data import Task, prepare
from neuco_jax.errors import ConfigError
from neuco_jax.pipeline import evaluate, sweep
from neuco_jax.plan import stack_embeddings
from neuco_jax.probes import knn
from neuco_jax.probes.folds import GroupPass, Variant, shuffle_folds
from neuco_jax.synthetic import make_benchmark

K_LIST = [1, 4, 9, 16]


def _config(selection="test_fold", **probe):
    return config_from_dict({"k_folds": 6, "probe_type": "knn", "selection": selection,
                             "probe_params": {"k_list": K_LIST, **probe}})


def _tasks(n=150, d=10, seed=0):
    """Continuous random embeddings (no two rows at exactly the same distance from a third), two tasks."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:032x}" for i in range(n)], dtype=object)
    x = rng.normal(size=(n, d)).astype(np.float32)
    signal = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.3 * rng.normal(size=n)
    reg = Task("reg", "regression", ids[:140], signal[:140])
    cls = Task("cls", "classification", ids[20:], (signal[20:] > 0.2).astype(float))
    return [reg, cls], ids, x


def _run(bench, config, fraction=1.0):
    """The probe's TaskFolds for one method, through the interface the pipeline calls."""
    p = GroupPass([(0, bench)], config, (fraction,), (config.learning_rate,), ("c",), {}, bench.x.shape[1], 1,
                  dict.fromkeys(("load", "compile", "train"), 0.0), lambda: None)
    variant = Variant(0, fraction, config.epochs, "m", config)
    return knn.run_pass(p)(0, variant, bench)


def _sklearn(task, k, config):
    params = dict(n_neighbors=k, weights=config.knn.weights, metric=config.knn.metric, algorithm="brute")
    return (KNeighborsClassifier if task.is_classification else KNeighborsRegressor)(**params)


def _score(task, y, z):
    return f1_score(y, z) if task.is_classification else r2_score(y, z)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_every_fold_and_k_equals_sklearn(metric, weights):
    """Each fold's score is its best k's, and that k's predictions are scikit-learn's on every held-out row.

    The embeddings are continuous draws, so no two training rows lie at exactly the same distance
    from a held-out row: the neighbours are unique (with ties, scikit-learn and lax.top_k may keep
    different ones of the tied rows)."""
    tasks, ids, x = _tasks()
    bench = prepare(tasks, ids, x)
    config = _config(metric=metric, weights=weights)
    _check_against_sklearn(bench, config, _run(bench, config)[0])


def _check_against_sklearn(bench, config, folds):
    for t, (task, got) in enumerate(zip(bench.tasks, folds)):
        train, test, _ = shuffle_folds(bench, t, config.k_folds, config.seed)
        xt = bench.x[bench.rows[t]].astype(np.float64)
        for j in range(config.k_folds):
            per_k = {}
            for k in K_LIST:
                model = _sklearn(task, k, config).fit(xt[train[j]], task.labels[train[j]])
                per_k[k] = model.predict(xt[test[j]])
            scores = {k: _score(task, task.labels[test[j]], z) for k, z in per_k.items()}
            best = max(K_LIST, key=lambda k: (scores[k], -k))  # the first k of equal scores
            assert got.hyperparameters["k_per_fold"][j] == best
            if task.is_classification:
                assert got.scores[j] == scores[best]
                np.testing.assert_array_equal(got.z_test[j], per_k[best])
            else:
                assert abs(got.scores[j] - scores[best]) < 1e-5
                np.testing.assert_allclose(got.z_test[j], per_k[best], rtol=1e-9, atol=1e-12)


def _searched_alone(bench, config, n_shared):
    """Whether each fold of each task searched alone, with n_shared shared candidates per row."""
    plan = knn.make_plan(bench, config, (1.0,))
    y = np.concatenate([t.labels for t in bench.tasks])
    is_cls = np.asarray([t.is_classification for t in bench.tasks])
    out, _ = knn.search(plan, stack_embeddings([bench], bench.x.shape[1]), y, is_cls, config.knn,
                        jax.devices()[0], n_shared=n_shared)
    return out[4][0]  # (entries, folds)


@pytest.mark.parametrize("metric, weights", [("euclidean", "uniform"), ("cosine", "distance")])
@pytest.mark.parametrize("route", ["shared", "short"])
def test_shared_candidates_give_sklearns_neighbours(metric, weights, route, monkeypatch):
    """The shared search (each row's nearest rows once, filtered by each fold) equals scikit-learn's fits too.

    'shared': 60 candidates per row, so every query of every fold finds its 16 among them; 'short': 20,
    where a query has 16 of its fold's training rows among them with probability ~0.96 (90% of its
    other rows train), so about half the folds (15 queries each) have one short, or unsure of its
    16th, and search alone while the others keep the shared ones: both kinds of fold in one program."""
    n_shared = 60 if route == "shared" else max(K_LIST) + 4
    monkeypatch.setattr(knn, "shared_candidates", lambda plan, k_max: n_shared)
    tasks, ids, x = _tasks(seed=4)
    bench = prepare(tasks, ids, x)
    config = _config(metric=metric, weights=weights)
    alone = _searched_alone(bench, config, n_shared)
    if route == "shared":
        assert not alone.any()
    else:
        assert alone.any() and not alone.all()
    _check_against_sklearn(bench, config, _run(bench, config)[0])


def test_the_search_is_shared_where_it_does_less_work():
    """40 folds share candidates, few enough that no fold has to search alone; few folds, or a small label
    fraction (training rows too sparse among a row's nearest), search alone."""
    tasks, ids, x = _tasks(n=600)
    bench = prepare(tasks, ids, x)
    k_max = max(K_LIST)
    many = config_from_dict({"k_folds": 40, "probe_type": "knn", "probe_params": {"k_list": K_LIST}})
    s = knn.shared_candidates(knn.make_plan(bench, many, (1.0,)), k_max)
    assert k_max + knn.MARGIN <= s < 60
    assert not _searched_alone(bench, many, s).any()
    few = config_from_dict({"k_folds": 3, "probe_type": "knn", "probe_params": {"k_list": K_LIST}})
    assert knn.shared_candidates(knn.make_plan(bench, few, (1.0,)), k_max) == 0
    assert knn.shared_candidates(knn.make_plan(bench, many, (0.3,)), k_max) == 0


def test_nested_picks_k_on_the_validation_rows_and_draws_neighbours_from_the_rest():
    tasks, ids, x = _tasks(seed=1)
    bench = prepare(tasks, ids, x)
    config = _config(selection="nested")
    folds, _ = _run(bench, config)
    for t, (task, got) in enumerate(zip(bench.tasks, folds)):
        train, test, val = shuffle_folds(bench, t, config.k_folds, config.seed, selection="nested")
        xt = bench.x[bench.rows[t]].astype(np.float64)
        for j in range(config.k_folds):
            models = {k: _sklearn(task, k, config).fit(xt[train[j]], task.labels[train[j]]) for k in K_LIST}
            on_val = {k: _score(task, task.labels[val[j]], m.predict(xt[val[j]])) for k, m in models.items()}
            on_test = {k: _score(task, task.labels[test[j]], m.predict(xt[test[j]])) for k, m in models.items()}
            chosen = max(K_LIST, key=lambda k: (on_val[k], -k))
            assert got.hyperparameters["k_per_fold"][j] == chosen
            assert abs(got.scores[j] - on_test[chosen]) < 1e-5
            assert abs(got.test_fold_scores[j] - max(on_test.values())) < 1e-5
        assert got.hyperparameters["selection"] == "nested"


def test_classification_ties_go_to_class_zero():
    """An even k with as many neighbours of each class predicts 0, as scikit-learn's first sorted class."""
    d = np.array([[0.1, 0.2, 0.3, 0.4]])
    y = np.array([[1.0, 0.0, 1.0, 0.0]])
    z = knn.neighbour_predictions(np, d, y, np.array([1, 2, 3, 4]), "uniform", True)
    np.testing.assert_array_equal(z, [[1, 0, 1, 0]])
    # distance weights: a neighbour at distance 0 outweighs every other one
    d0 = np.array([[0.0, 0.1, 0.1]])
    z = knn.neighbour_predictions(np, d0, np.array([[0.0, 1.0, 1.0]]), np.array([3]), "distance", True)
    assert z[0, 0] == 0


def test_folds_of_a_label_fraction_train_on_its_first_rows():
    tasks, ids, x = _tasks(seed=2)
    bench = prepare(tasks, ids, x)
    config = _config()
    folds, _ = _run(bench, config, fraction=0.5)
    task = bench.tasks[0]
    train, test, _ = shuffle_folds(bench, 0, config.k_folds, config.seed, 0.5)
    assert folds[0].n_train == train.shape[1] == round(0.5 * (len(task.ids) - test.shape[1]))
    xt = bench.x[bench.rows[0]].astype(np.float64)
    k = folds[0].hyperparameters["k_per_fold"][0]
    model = _sklearn(task, k, config).fit(xt[train[0]], task.labels[train[0]])
    np.testing.assert_allclose(folds[0].z_test[0], model.predict(xt[test[0]]), rtol=1e-9)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=600, dim=32, n_methods=2)


def test_a_sweep_compiles_once_and_equals_separate_runs(bench, tmp_path):
    config = _config()
    files = list(bench.submissions.values())
    before = knn.TRACE_COUNT
    runs = sweep(files, bench.labels_dir, config, output_dir=tmp_path, chunk_size=2)
    assert knn.TRACE_COUNT - before == 1  # 3 methods in 2 chunks, the last padded: one program
    for run, f in zip(runs, files):
        (alone,) = evaluate(f, bench.labels_dir, config, output_dir=tmp_path / "alone")
        for a, b in zip(run.scores, alone.scores):
            np.testing.assert_array_equal(a.fold_scores, b.fold_scores)


def test_evaluate_writes_k_per_fold_and_stored_probes_predict(bench, tmp_path):
    config = config_from_dict({"k_folds": 4, "probe_type": "knn", "store_models": True,
                               "probe_params": {"k_list": [3, 7], "weights": "distance"}})
    (run,) = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    task = run.scores[0].name
    result = json.loads((run.run_dir / task / f"{task}_result.json").read_text())
    hyper = result["hyperparamaters"]
    assert len(hyper["k_per_fold"]) == 4 and set(hyper["k_per_fold"]) <= {3, 7}
    probe = load_probe(run.run_dir / task / "probe")
    assert probe.probe_type == "knn" and probe.k in (3, 7)
    # The stored probe is scikit-learn's fitted on every labelled row (raw embeddings in, labels out).
    from neuco_jax.data import load_labels, load_submission
    raw_ids, raw_x = load_submission(bench.submissions["method_a"])
    (labels,) = [t for t in load_labels(bench.labels_dir) if t.name == task]
    keep = np.isin(labels.ids, raw_ids)
    rows = {i: r for r, i in enumerate(raw_ids)}
    xs = raw_x[[rows[i] for i in labels.ids[keep]]].astype(np.float64)
    z = (xs - probe.mean) / probe.std
    y = labels.labels[keep]
    model_y = (y - y.min()) / np.ptp(y) if labels.task_type == "regression" else y
    model = (KNeighborsRegressor if labels.task_type == "regression" else KNeighborsClassifier)(
        n_neighbors=probe.k, weights="distance", algorithm="brute").fit(z, model_y)
    queries = xs[:25] + 0.01  # off the training rows (no zero distances)
    want = model.predict((queries - probe.mean) / probe.std)
    if labels.task_type == "regression":
        want = y.min() + want * np.ptp(y)
    np.testing.assert_allclose(probe.predict(queries), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("probe, key", [
    ({"k_list": [3], "neighbours": 5}, "probe_params.neighbours"),
    ({"k_list": []}, "probe_params.k_list"),
    ({"k_list": [0, 3]}, "probe_params.k_list"),
    ({"metric": "manhattan"}, "probe_params.metric"),
    ({"weights": "gaussian"}, "probe_params.weights"),
])
def test_bad_knn_probe_params_name_the_key(probe, key):
    with pytest.raises(ConfigError, match=key) as err:
        config_from_dict({"k_folds": 3, "probe_type": "knn", "probe_params": probe})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("probe, key", [
    ({"k_list": [3], "neighbours": 5}, "probe_params.neighbours"),
    ({"k_list": [5000]}, "k_list holds k = 5000"),
])
def test_bad_knn_configs_are_one_line_errors_and_write_nothing(bench, tmp_path, probe, key):
    cfg = tmp_path / "knn.yaml"
    cfg.write_text(json.dumps({"k_folds": 3, "probe_type": "knn", "probe_params": probe}))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "neuco_jax", "evaluate", "--annotation_path", str(bench.labels_dir),
                           "--submission_file", str(bench.submissions["method_a"]), "--output_dir", str(out),
                           "--config", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("warning:")]  # the labels' blanks
    assert len(errors) == 1 and key in errors[0], proc.stderr
    assert not any(out.rglob("*.json"))
