"""The ridge probe against scikit-learn's RidgeCV / RidgeClassifierCV fitted on each fold's training rows."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.metrics import f1_score, r2_score

from neuco_jax import load_probe
from neuco_jax.config import Config, config_from_dict
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.errors import ConfigError
from neuco_jax.pipeline import evaluate, sweep
from neuco_jax.plan import shuffle_split
from neuco_jax.probes import ridge
from neuco_jax.probes.ridge import fit_task
from neuco_jax.synthetic import make_benchmark

ALPHAS = (0.01, 0.3, 3.0, 30.0, 300.0)


def _sklearn(x, y, cls, alphas=ALPHAS):
    return (RidgeClassifierCV if cls else RidgeCV)(alphas=alphas).fit(x, y)


@pytest.mark.parametrize("n, d", [(160, 24), (90, 150)])  # covariance (n > d) and Gram (n < d) regimes
@pytest.mark.parametrize("cls", [False, True])
def test_every_fold_equals_sklearn(n, d, cls):
    rng = np.random.default_rng(n + d)
    x = rng.normal(size=(n, d)).astype(np.float32)
    signal = x[:, :8] @ rng.normal(size=8) * rng.uniform(0.05, 1.0) + rng.normal(size=n)
    y = (signal > np.median(signal)).astype(float) if cls else (signal - signal.min()) / np.ptp(signal)
    train, test = shuffle_split(n, 8)
    fit = fit_task(x, y, cls, train, test, ALPHAS)
    x64 = x.astype(np.float64)
    ours, theirs = [], []
    for f in range(8):
        model = _sklearn(x64[train[f]], y[train[f]], cls)
        assert fit.alpha[f] == model.alpha_
        np.testing.assert_allclose(fit.z[f], model.decision_function(x64[test[f]]) if cls else
                                   model.predict(x64[test[f]]), atol=1e-8)
        np.testing.assert_allclose(fit.w[f], model.coef_.ravel(), atol=1e-8)
        ours.append(fit.scores[f])
        theirs.append(f1_score(y[test[f]], model.predict(x64[test[f]])) if cls else
                      r2_score(y[test[f]], model.predict(x64[test[f]])))
    assert abs(np.mean(ours) - np.mean(theirs)) < (0.005 if cls else 1e-3)


@pytest.mark.parametrize("n, d", [(120, 16), (40, 60)])  # m > d (cov) and m <= d (gram)
def test_every_route_equals_sklearn_and_the_others(n, d):
    """eigh, cholesky and woodbury (ridge.ROUTES), whichever `route` would pick, fold by fold.

    atol 1e-8, the bound of test_every_fold_equals_sklearn: float64 rounding (2.2e-16) times the
    condition of X^T X + alpha I (below 1e5 here, at alpha 0.01) is ~2e-11, the largest difference
    seen (1e-11); weights and predictions are O(1).
    """
    rng = np.random.default_rng(n * d)
    x = rng.normal(size=(n, d)) @ np.diag(rng.uniform(0.1, 3.0, d))  # uneven scales: a spread spectrum
    y = x[:, :4] @ rng.normal(size=4) + rng.normal(size=n)
    y = (y - y.min()) / np.ptp(y)
    train, test = shuffle_split(n, 5)
    fits = {name: ridge._fit(x, y, False, train, test, ALPHAS, name) for name in ridge.ROUTES}
    for f in range(5):
        model = _sklearn(x[train[f]], y[train[f]], False)
        for name, fit in fits.items():
            assert fit.alpha[f] == model.alpha_, name
            np.testing.assert_allclose(fit.w[f], model.coef_, atol=1e-8, err_msg=name)
            np.testing.assert_allclose(fit.z[f], model.predict(x[test[f]]), atol=1e-8, err_msg=name)
            np.testing.assert_allclose(fit.w[f], fits["eigh"].w[f], atol=1e-8, err_msg=name)


def test_the_route_rule_at_the_demo_shape():
    """The crossovers the module docstring states: n 4423, m 3980, d 1024, k 40 as on landcover_forest."""
    n, m, d, k = 4423, 3980, 1024, 40
    assert [ridge.route(n, m, d, k, a) for a in (1, 3, 5, 6, 20)] == ["woodbury"] * 3 + ["eigh"] * 2
    assert ridge.route(n, n, d, 1, 1) == "cholesky"  # a refit on all rows: no fold to share a factorisation
    assert ridge.route(n, n, d, 1, 3) == "eigh"
    assert ridge.route(n, 398, d, k, 3) == "cholesky"  # label fraction 0.1: the gram shape
    assert "woodbury" not in ridge.route_costs(n, 398, d, k, 3)


def test_ties_go_to_the_first_alpha():
    """Identical leave-one-out errors (a constant-free target: zero labels' spread) keep the first alpha."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = np.full(40, 0.5)  # every alpha predicts the mean exactly: LOO error 0 for all
    train, test = shuffle_split(40, 3)
    assert list(fit_task(x, y, False, train, test, (5.0, 1.0, 0.1)).alpha) == [5.0, 5.0, 5.0]
    for name in ridge.ROUTES:
        assert list(ridge._fit(x, y, False, train, test, (5.0, 1.0, 0.1), name).alpha) == [5.0, 5.0, 5.0], name


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=700, dim=48, n_methods=2)


def _prepared(bench, method):
    tasks = load_labels(bench.labels_dir)
    ids, raw = load_submission(bench.submissions[method], valid_ids={i for t in tasks for i in t.ids})
    return tasks, ids, raw, prepare(tasks, ids, raw)


def test_evaluate_writes_the_reference_files_with_the_alpha_of_every_fold(bench, tmp_path):
    config = config_from_dict({"k_folds": 4, "probe_type": "ridge", "probe_params": {"alphas": list(ALPHAS)},
                               "output_fold_results": True, "enable_plots": True,
                               "task_filter": ["crops", "random_cls"]})
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    assert summary["config"]["probe_type"] == "ridge"
    assert summary["config"]["probe_params"]["alphas"] == list(ALPHAS)
    *_, prepared = _prepared(bench, "method_a")
    for t, task in enumerate(prepared.tasks):
        if task.name not in ("crops", "random_cls"):
            continue
        result = json.loads((run.run_dir / task.name / f"{task.name}_result.json").read_text())
        x = prepared.x[prepared.rows[t]].astype(np.float64)
        train, test = shuffle_split(len(x), 4, seed=42)
        alphas, scores = [], []
        for f in range(4):
            model = _sklearn(x[train[f]], task.labels[train[f]], task.is_classification)
            alphas.append(model.alpha_)
            pred = model.predict(x[test[f]])
            scores.append(f1_score(task.labels[test[f]], pred) if task.is_classification else
                          r2_score(task.labels[test[f]], pred))
        assert result["hyperparamaters"] == {"alphas": list(ALPHAS), "alpha_per_fold": alphas}
        np.testing.assert_allclose(result["q_t"], scores, atol=1e-6)
        pngs = sorted(p.name for p in (run.run_dir / task.name).glob("*.png"))
        kind = "confusion" if task.is_classification else "scatter"
        assert pngs == [f"fold_{k}_{kind}.png" for k in range(4)]  # no loss curves: ridge has no epochs


def test_a_sweep_equals_separate_runs(bench, tmp_path):
    config = Config(k_folds=3, probe_type="ridge", alphas=ALPHAS, task_filter=("biomass_mean", "random_cls"))
    files = [bench.submissions[m] for m in ("method_a", "method_b")]
    together = sweep(files, bench.labels_dir, config, output_dir=tmp_path / "a")
    for run, f in zip(together, files):
        alone, = evaluate(f, bench.labels_dir, config, output_dir=tmp_path / "b")
        for s, o in zip(run.scores, alone.scores):
            np.testing.assert_array_equal(s.fold_scores, o.fold_scores)


def test_stored_probes_equal_sklearns_refit_on_all_rows(bench, tmp_path):
    config = Config(k_folds=3, probe_type="ridge", alphas=ALPHAS, store_probes=True,
                    task_filter=("crops", "random_cls"))
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    tasks, ids, raw, prepared = _prepared(bench, "method_a")
    for t, task in enumerate(prepared.tasks):
        if task.name not in ("crops", "random_cls"):
            continue
        probe = load_probe(run.run_dir / task.name / "probe")
        assert probe.probe_type == "ridge"
        model = _sklearn(prepared.x[prepared.rows[t]].astype(np.float64), task.labels, task.is_classification)
        assert probe.hyperparameters["alpha"] == model.alpha_
        standardised = (raw.astype(np.float64) - prepared.mean) / prepared.std
        if task.is_classification:
            z = model.decision_function(standardised)
            sure = np.abs(z) > 1e-4
            np.testing.assert_array_equal(probe.predict(raw)[sure], model.predict(standardised)[sure])
        else:
            raw_task = next(r for r in tasks if r.name == task.name)
            kept = raw_task.labels[np.isin(raw_task.ids, ids)]
            lo, hi = kept.min(), kept.max()
            np.testing.assert_allclose(probe.predict(raw), lo + model.predict(standardised) * (hi - lo),
                                       atol=1e-4 * (hi - lo))


@pytest.mark.parametrize("raw, key", [
    ({"probe_type": "lasso"}, "probe_type"),
    ({"probe_type": "ridge", "probe_params": {"alphas": []}}, "probe_params.alphas"),
    ({"probe_type": "ridge", "probe_params": {"alphas": None}}, "probe_params.alphas"),
    ({"probe_type": "ridge", "probe_params": {"alphas": [1.0, 0.0]}}, "probe_params.alphas"),
    ({"probe_type": "ridge", "probe_params": {"alphas": [-1]}}, "probe_params.alphas"),
    ({"probe_type": "ridge", "ablations": {"learning_rates": [0.1, 0.01]}}, "ablations.learning_rates"),
    ({"probe_type": "ridge", "ablations": {"epochs": [1, 2]}}, "ablations.epochs"),
])
def test_bad_ridge_configs_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=f"'{key}'") as e:
        config_from_dict({"k_folds": 5, **raw})
    assert "\n" not in str(e.value)
    if key == "probe_type":
        assert "linear" in str(e.value) and "ridge" in str(e.value)


def test_ridge_defaults_to_sklearns_alphas():
    config = config_from_dict({"k_folds": 5, "probe_type": "ridge"})
    assert config.alphas == (0.1, 1.0, 10.0)
    assert config.to_dict()["probe_params"] == {"alphas": [0.1, 1.0, 10.0], "device": "auto"}


@pytest.mark.parametrize("route_name", ridge.ROUTES)
def test_every_lapack_call_is_unbatched(route_name):
    """jaxlib 0.10.2 spreads a batched LAPACK call over XLA's CPU pool and blocks on it: on two cores a vmapped
    batch of four folds' eigendecompositions hung 9 of 12 small runs (ridge.py's docstring). The compiled
    routes must hold only unbatched (matrix, not stack of matrices) LAPACK calls."""
    n, d, k, m = 60, 8, 5, 50
    with jax.enable_x64(True):
        x, y = jnp.zeros((n, d)), jnp.zeros(n)
        text = ridge._fit_task.lower(
            x, y, y, jnp.zeros((k, m), jnp.int32), jnp.zeros((k, n - m), jnp.int32), jnp.zeros((k, 6), jnp.int32),
            jnp.ones(3), route_name=route_name, is_cls=False).as_text()
    calls = re.findall(r"custom_call @(\w*lapack\w*)\(.*?\) .*?: \((.*?)\) ->", text)
    assert calls, "no LAPACK call found: the pattern no longer matches the lowered text"
    for name, operands in calls:
        for shape in re.findall(r"tensor<([^>]*)>", operands):
            assert shape.count("x") <= 2, (name, shape)  # (rows, cols, dtype): rank 2
