"""fold_scores.csv: every run keeps its per-fold (and per-epoch) scores beside the reference's files."""

import json
import math

import numpy as np
import pytest

from neuco_jax.config import Ablations, Config, config_from_dict
from neuco_jax.data import load_labels
from neuco_jax.errors import InputError
from neuco_jax.fold_scores import FOLD_SCORES_FILE, read_fold_scores
from neuco_jax.pipeline import evaluate, sweep
from neuco_jax.scores import task_score
from neuco_jax.synthetic import make_benchmark

TASKS = ("crops", "random_cls")
REFERENCE_KEYS = {"q_stat", "mean_score", "std_dev", "hyperparamaters"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=600, dim=32, n_methods=1)


@pytest.fixture(scope="module")
def rows(bench):
    with pytest.warns(UserWarning):  # the synthetic labels' empty cells
        return {t.name: len(t.ids) for t in load_labels(bench.labels_dir)}


def check_run(run, rows, fraction=1.0, epochs=None):
    """The run's fold_scores.csv holds exactly its fold scores; the reference's files are as before."""
    folds = read_fold_scores(run.run_dir, TASKS)
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    for s in run.scores:
        np.testing.assert_array_equal(folds.scores[s.name], s.fold_scores)  # bit for bit, NaN for NaN
        assert task_score(s.name, s.task_type, folds.scores[s.name]).q_stat == summary["task_q_scores"][s.name]
        n = rows[s.name]
        assert folds.n_test[s.name] == math.ceil(0.1 * n)
        assert folds.n_train[s.name] == round(fraction * (n - math.ceil(0.1 * n)))
        result = json.loads((run.run_dir / s.name / f"{s.name}_result.json").read_text())
        assert set(result) == REFERENCE_KEYS  # no q_t without output_fold_results
    header = (run.run_dir / FOLD_SCORES_FILE).read_text().splitlines()[0].split(",")
    assert header[:5] == ["task", "fold", "n_train", "n_test", "score"]
    assert header[5:] == [f"epoch_{e + 1}" for e in range(epochs or 0)]
    if epochs:  # a fold's score is its best epoch within the variant's budget
        table = np.genfromtxt(run.run_dir / FOLD_SCORES_FILE, delimiter=",", skip_header=1,
                              usecols=range(4, 5 + epochs))
        np.testing.assert_array_equal(table[:, 0], np.nanmax(table[:, 1:], axis=1))


def test_linear_runs_and_ablation_variants_keep_fold_and_epoch_scores(bench, rows, tmp_path):
    config = Config(k_folds=3, epochs=3, batch_size=16, learning_rate=0.03, task_filter=TASKS,
                    ablations=Ablations(epochs=(1, 3), label_fractions=(0.5, 1.0)))
    runs = sweep(list(bench.submissions.values()), bench.labels_dir, config, output_dir=tmp_path)
    assert len(runs) == 2 * 2 * 2  # methods x fractions x epoch budgets
    for run in runs:
        check_run(run, rows, run.config.label_fraction, run.config.epochs)


@pytest.mark.parametrize("probe", ["ridge", "svm"])
def test_ridge_and_svm_runs_keep_fold_scores_without_epochs(bench, rows, tmp_path, probe):
    params = {"C_start_end": [0.1, 10], "kernel_degree_list": [1],
              "opt_params": {"n_iter": 2, "optimizer_kwargs": {"n_initial_points": 2}}} if probe == "svm" else {}
    config = config_from_dict({"k_folds": 3, "probe_type": probe, "task_filter": list(TASKS), "probe_params": params})
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, config, output_dir=tmp_path)
    check_run(run, rows)


def test_older_runs_fall_back_on_q_t_and_otherwise_say_to_rerun(tmp_path):
    task_dir = tmp_path / "run" / "crops"
    task_dir.mkdir(parents=True)
    result = task_dir / "crops_result.json"
    result.write_text(json.dumps({"q_stat": 1.0, "mean_score": 0.5, "std_dev": 0.1, "q_t": [0.25, None, 0.5]}))
    folds = read_fold_scores(tmp_path / "run", ["crops"])
    np.testing.assert_array_equal(folds.scores["crops"], [0.25, np.nan, 0.5])
    assert folds.ratio("crops") == pytest.approx(1 / 9) and folds.ratio("crops", 0.5) == pytest.approx(2 / 9)
    result.write_text(json.dumps({"q_stat": 1.0, "mean_score": 0.5, "std_dev": 0.1}))
    with pytest.raises(InputError, match="no fold_scores.csv and no per-fold scores.*re-run"):
        read_fold_scores(tmp_path / "run", ["crops"])
    (tmp_path / "run" / FOLD_SCORES_FILE).write_text("task,fold,n_train,n_test,score\ncrops,0,9,1,0.5\ncrops,2,9,1,x\n")
    with pytest.raises(InputError, match=r"fold_scores.csv: line 3 holds"):
        read_fold_scores(tmp_path / "run", ["crops"])
