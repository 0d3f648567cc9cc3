"""probe_type svm end to end: the search, the reference's per-fold protocol, result files and stored probes,
against scikit-learn's SVC / SVR fitted candidate by candidate on each fold."""

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score
from sklearn.svm import SVC, SVR

from neuco_jax import load_probe
from neuco_jax.cli import main
from neuco_jax.config import SVMParams, config_from_dict, default_config_text
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.leaderboard import write_leaderboard
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import shuffle_split
from neuco_jax.probes import search
from neuco_jax.probes.svm import Candidate
from neuco_jax.protocol import MixedProtocolsError
from neuco_jax.synthetic import make_benchmark

TASKS = ["biomass_mean", "random_cls"]
SPACE = {"C_start_end": [0.01, 100], "kernel_degree_list": [2, 3], "kernel_gamma_start_end": [0.001, 0.1],
         "kernel_coef0_start_end": [0, 1], "epsilon_list": [0.01, 0.1]}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=700, dim=48, n_methods=1)


def _config(n_iter, n_initial, n_points=1, **keys):
    return config_from_dict({
        "k_folds": 3, "probe_type": "svm", "task_filter": TASKS, "output_fold_results": True,
        "probe_params": {**SPACE, "opt_params": {"n_iter": n_iter, "n_points": n_points,
                                                 "optimizer_kwargs": {"n_initial_points": n_initial}}},
        **keys})


def _sklearn(candidate: Candidate, regression: bool):
    kw = dict(kernel="poly", C=candidate.C, degree=candidate.degree, coef0=candidate.coef0,
              gamma="scale" if candidate.gamma is None else candidate.gamma)
    return SVR(epsilon=candidate.epsilon, **kw) if regression else SVC(**kw)


def test_initial_points_stratify_the_space_and_repeat_for_a_seed():
    params = SVMParams(C_start_end=(1e-3, 1e3), kernel_degree_list=(2, 3), kernel_gamma_start_end=(1e-4, 10),
                       kernel_coef0_start_end=(-1, 2), epsilon_list=(0.01, 0.5), n_iter=8, n_initial_points=8)
    seen = []
    points = search.search(params, True, 7, lambda batch: seen.append(batch) or np.zeros(len(batch)))
    assert len(seen) == 1 and points == seen[0] and len(points) == 8
    # one point in each eighth of log C, log gamma and coef0 (the Latin hypercube)
    for key, lo, hi, log in (("C", 1e-3, 1e3, True), ("gamma", 1e-4, 10, True), ("coef0", -1, 2, False)):
        v = np.array([p[key] for p in points])
        u = (np.log(v) - np.log(lo)) / (np.log(hi) - np.log(lo)) if log else (v - lo) / (hi - lo)
        assert sorted(np.floor(u * 8).astype(int)) == list(range(8))
    assert {p["degree"] for p in points} == {2, 3} and {p["epsilon"] for p in points} == {0.01, 0.5}
    again = search.search(params, True, 7, lambda batch: np.zeros(len(batch)))
    assert again == points
    assert search.search(params, True, 8, lambda batch: np.zeros(len(batch))) != points
    # classification searches no epsilon (scikit-learn's SVC has none)
    assert all("epsilon" not in p for p in search.search(params, False, 7, lambda b: np.zeros(len(b))))


def test_rounds_spend_the_budget_and_the_surrogate_finds_the_optimum():
    params = SVMParams(C_start_end=(1e-3, 1e3), kernel_degree_list=(2, 3), kernel_coef0_start_end=(-1, 2),
                       n_iter=30, n_initial_points=6, n_points=4)

    def objective(p):  # a smooth optimum at C 10, coef0 0.5, degree 3; NaN (unconverged) at tiny C
        if p["C"] < 2e-3:
            return np.nan
        return -(np.log10(p["C"]) - 1) ** 2 - (p["coef0"] - 0.5) ** 2 - 0.5 * (p["degree"] == 2)

    sizes = []
    points = search.search(params, False, 0,
                           lambda batch: sizes.append(len(batch)) or np.array([objective(p) for p in batch]))
    assert sizes == [6, 4, 4, 4, 4, 4, 4] and len(points) == 30
    values = np.array([objective(p) for p in points])
    assert np.nanmax(values[6:]) > np.nanmax(values[:6])  # the surrogate improves on the initial design
    best = points[int(np.nanargmax(values))]
    assert best["degree"] == 3 and abs(np.log10(best["C"]) - 1) < 0.5 and abs(best["coef0"] - 0.5) < 0.3


@pytest.fixture(scope="module")
def initial_only(bench, tmp_path_factory):
    """A run whose budget is the initial design only, so its candidates follow from the seed alone."""
    config = _config(4, 4, enable_plots=True, store_probes=True)
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config,
                    output_dir=tmp_path_factory.mktemp("out"))
    return config, run


def _prepared(bench):
    tasks = load_labels(bench.labels_dir)
    ids, raw = load_submission(bench.submissions["method_a"], valid_ids={i for t in tasks for i in t.ids})
    return tasks, ids, raw, prepare(tasks, ids, raw, task_filter=TASKS)


def test_fold_scores_and_winner_are_the_references_over_the_same_candidates(bench, initial_only):
    config, run = initial_only
    *_, prepared = _prepared(bench)
    for t, task in enumerate(prepared.tasks):
        regression = not task.is_classification
        candidates = [Candidate(**p) for p in search.search(config.svm, regression, config.seed,
                                                            lambda b: np.zeros(len(b)))]
        x = prepared.x[prepared.rows[t]].astype(np.float64)
        y = task.labels if regression else np.where(task.labels > 0, 1, -1)
        train, test = shuffle_split(len(x), 3, seed=42)
        metric = np.empty((3, len(candidates)))
        scoring = np.empty_like(metric)
        for k in range(3):
            for c, cand in enumerate(candidates):
                pred = _sklearn(cand, regression).fit(x[train[k]], y[train[k]]).predict(x[test[k]])
                metric[k, c] = (r2_score(y[test[k]], pred) if regression else
                                f1_score(y[test[k]], pred, zero_division=0.0))
                scoring[k, c] = (-mean_squared_error(y[test[k]], pred) if regression else
                                 accuracy_score(y[test[k]], pred))
        result = json.loads((run.run_dir / task.name / f"{task.name}_result.json").read_text())
        # Both stop at libsvm's tol 1e-3: held-out values agree to a few 1e-3, so R^2 to ~1e-3; F1 is equal
        # but for an odd prediction whose decision value is within tol of 0: one flip moves a fold's F1 by
        # at most 2 / (its positives), and it is allowed in one fold.
        gap = np.abs(np.array(result["q_t"]) - metric.max(1))
        if regression:
            assert gap.mean() < 0.005, gap
        else:
            flips = gap > 1e-12
            assert flips.sum() <= 1 and (gap <= 2 / (y[test] > 0).sum(1)).all(), gap
        winner = result["hyperparamaters"]
        found = next(c for c in candidates if c.C == winner["C"])
        assert winner == {"C": found.C, "coef0": found.coef0, "degree": found.degree, "gamma": found.gamma,
                          "kernel": "poly", "tol": 1e-3, **({"epsilon": found.epsilon} if regression else {}),
                          "candidates": 4, "fits_not_converged": 0}
        mean_scoring = scoring.mean(0)  # the refit winner: best mean scoring, up to near-ties
        assert mean_scoring[candidates.index(found)] >= mean_scoring.max() - (1e-3 if regression else 0.02)


def test_stored_svm_probes_predict_like_sklearns_refit(bench, initial_only):
    config, run = initial_only
    tasks, ids, raw, prepared = _prepared(bench)
    for t, task in enumerate(prepared.tasks):
        regression = not task.is_classification
        probe = load_probe(run.run_dir / task.name / "probe")
        assert probe.probe_type == "svm" and probe.hyperparameters["refit_rows"] == len(task.ids)
        h = probe.hyperparameters
        cand = Candidate(C=h["C"], degree=h["degree"], gamma=h["gamma"], coef0=h["coef0"],
                         **({"epsilon": h["epsilon"]} if regression else {}))
        x = prepared.x[prepared.rows[t]].astype(np.float64)
        model = _sklearn(cand, regression).fit(x, task.labels if regression else np.where(task.labels > 0, 1, -1))
        assert probe.gamma == pytest.approx(model._gamma, rel=1e-12)
        standardised = (raw.astype(np.float64) - prepared.mean) / prepared.std
        ref = model.decision_function(standardised) if not regression else model.predict(standardised)
        z = probe.decision_function(raw)
        assert np.abs(z - ref).mean() < 5e-3 * max(1.0, np.abs(ref).std())
        if regression:
            raw_task = next(r for r in tasks if r.name == task.name)
            kept = raw_task.labels[np.isin(raw_task.ids, ids)]
            lo, hi = kept.min(), kept.max()
            np.testing.assert_allclose(probe.predict(raw), lo + z * (hi - lo))
        else:
            sure = np.abs(ref) > 1e-2
            np.testing.assert_array_equal(probe.predict(raw)[sure], (ref[sure] > 0).astype(int))


def test_curves_over_candidates_are_drawn(initial_only):
    _, run = initial_only
    for task in TASKS:
        pngs = {p.name for p in (run.run_dir / task).glob("*.png")}
        assert {"loss_train.png", "loss_validation.png"} <= pngs and len(pngs) == 5


def test_rounds_reproduce_and_the_summary_records_the_probe(bench, tmp_path):
    config = _config(6, 3, n_points=3, task_filter=["biomass_mean"])
    a, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path / "a")
    b, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path / "b")
    np.testing.assert_array_equal(a.scores[0].fold_scores, b.scores[0].fold_scores)
    summary = json.loads((a.run_dir / "results_summary.json").read_text())
    assert summary["config"]["probe_type"] == "svm"
    assert summary["config"]["probe_params"]["opt_params"]["n_iter"] == 6
    result = json.loads((a.run_dir / "biomass_mean" / "biomass_mean_result.json").read_text())
    assert result["hyperparamaters"]["candidates"] == 6


def test_the_packaged_sample_config_runs_from_the_command_line(bench, tmp_path):
    text = default_config_text("svm")
    for old, new in (("k_folds: 40", "k_folds: 2"), ("n_iter: 50", "n_iter: 5"),
                     ("task_filter: null", "task_filter: [random_cls]")):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "svm.yaml").write_text(text)
    assert main(["--quiet", "evaluate", "--annotation_path", str(bench.labels_dir), "--submission_file",
                 str(bench.submissions["method_a"]), "--config", str(tmp_path / "svm.yaml"),
                 "--output_dir", str(tmp_path / "out")]) == 0
    result, = (tmp_path / "out").rglob("random_cls_result.json")
    assert json.loads(result.read_text())["hyperparamaters"]["candidates"] == 5


def test_the_leaderboard_keeps_svm_and_ridge_runs_apart(bench, tmp_path):
    svm_config = _config(3, 3, task_filter=["random_cls"])
    ridge_config = config_from_dict({"k_folds": 3, "probe_type": "ridge", "task_filter": ["random_cls"]})
    for config, name in ((svm_config, "a_svm"), (ridge_config, "a_ridge")):
        evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path, method_name=name)
    with pytest.raises(MixedProtocolsError, match="probe_type") as e:
        write_leaderboard(tmp_path, "results")
    assert "\n" not in str(e.value)
