"""Metrics, Q statistics and result files against scikit-learn / numpy."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import f1_score, r2_score

from neuco_jax.config import Config
from neuco_jax.engine import _heldout_scores
from neuco_jax.results import write_run
from neuco_jax.scores import overall, task_score


@pytest.mark.parametrize("reference_rule", [True, False])
def test_heldout_r2_and_f1_match_sklearn_with_padding(reference_rule):
    """Ordinary folds: the logits of each classification fold leave [0, 1], so both metric rules
    threshold at 0 (tests/test_metrics.py covers the edge cases)."""
    rng = np.random.default_rng(0)
    lengths = [7, 30, 19, 30]
    width = 32
    y = rng.uniform(size=(4, width)).astype(np.float32)
    y[2:] = (y[2:] > 0.6)  # probes 2 and 3 are classification
    z = (y + rng.normal(0, 0.4, size=y.shape) - 0.3).astype(np.float32)
    mask = (np.arange(width)[None] < np.array(lengths)[:, None]).astype(np.float32)
    is_cls = np.array([False, False, True, True])
    assert all(((z[p, :n] < 0) | (z[p, :n] > 1)).any() for p, n in ((2, 19), (3, 30)))
    got, _ = _heldout_scores(jnp.array(z), jnp.array(y), jnp.array(mask), jnp.array(is_cls),
                             jnp.asarray(reference_rule))
    expected = [r2_score(y[0, :7], z[0, :7]), r2_score(y[1, :30], z[1, :30]),
                f1_score(y[2, :19], z[2, :19] > 0), f1_score(y[3, :30], z[3, :30] > 0)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_f1_is_zero_without_true_or_predicted_positives():
    z = -np.ones((1, 4), np.float32)
    y = np.zeros((1, 4), np.float32)
    got, _ = _heldout_scores(jnp.array(z), jnp.array(y), jnp.ones((1, 4)), jnp.array([True]), jnp.asarray(True))
    assert float(got[0]) == f1_score(y[0], z[0] > 0, zero_division=0) == 0.0


def test_task_statistics_use_nanmean_and_population_nanstd():
    folds = np.array([0.5, 0.7, np.nan, 0.6])
    s = task_score("t", "regression", folds)
    assert s.mean_score == pytest.approx(np.nanmean(folds))
    assert s.std_dev == pytest.approx(np.nanstd(folds, ddof=0))
    assert s.q_stat == pytest.approx(np.nanmean(folds) / (0.02 + np.nanstd(folds)) * 2)
    assert s.failed_folds == 1
    perfect = task_score("p", "regression", np.ones(5))
    assert perfect.q_stat == pytest.approx(100.0)
    assert np.isnan(task_score("n", "regression", np.full(3, np.nan)).q_stat)
    q, acc = overall([s, perfect])
    assert q == pytest.approx((s.q_stat + 100) / 2) and acc == pytest.approx((s.mean_score + 1) / 2)


def test_run_files_have_the_reference_layout(tmp_path):
    scores = [task_score("crops", "regression", np.array([0.4, 0.5])),
              task_score("random_cls", "classification", np.array([0.1, 0.3]))]
    config = Config(k_folds=2, output_fold_results=True)
    run = write_run(tmp_path, "dev", "my_method", scores, config, stamp="20250101_120000")
    assert run == tmp_path / "dev" / "my_method_20250101_120000"
    assert sorted(p.name for p in run.iterdir()) == ["crops", "random_cls", "results_summary.json"]
    result = json.loads((run / "crops" / "crops_result.json").read_text())
    assert set(result) == {"q_stat", "mean_score", "std_dev", "hyperparamaters", "q_t"}
    assert result["q_t"] == [0.4, 0.5]
    assert result["hyperparamaters"] == {"epochs": 10, "learning_rate": 0.001, "batch_size": 64}
    summary = json.loads((run / "results_summary.json").read_text())
    assert summary["experiment"] == run.name
    assert summary["task_q_scores"] == {"crops": scores[0].q_stat, "random_cls": scores[1].q_stat}
    assert summary["overall_acc_score"] == pytest.approx(np.mean([0.45, 0.2]))
    assert summary["config"]["probe_params"]["batch_size"] == 64
    # Same name again: a second folder, the first untouched; no staging folder left behind.
    again = write_run(tmp_path, "dev", "my_method", scores, Config(k_folds=2), stamp="20250101_120000")
    assert again.name == "my_method_20250101_120000_2"
    assert "q_t" not in json.loads((again / "crops" / "crops_result.json").read_text())
    assert sorted(p.name for p in (tmp_path / "dev").iterdir()) == [run.name, again.name]


@pytest.mark.parametrize("method", ["../escape", "a/b", "..", ""])
def test_names_that_escape_output_dir_are_rejected(tmp_path, method):
    from neuco_jax.errors import InputError
    with pytest.raises(InputError, match="plain folder name"):
        write_run(tmp_path, "dev", method, [], Config(k_folds=2))
