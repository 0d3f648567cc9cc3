"""Held-out scores exactly as the reference computes them (torchmetrics 1.7.1), under both metric rules.

The table is derived by hand from torchmetrics' source (regression/r2.py,
classification/stat_scores.py, utilities/compute.py normalize_logits_if_needed),
not from torch at run time:
  R2Score        1 if |rss| <= 1e-4; else 0 if |tss| <= 1e-4; else 1 - rss / tss.
  BinaryF1Score  float predictions are probabilities (positive: > 0.5) when every one
                 lies in [0, 1] (a NaN does not), else sigmoid(z) > 0.5, i.e. z > 0;
                 F1 = 2 tp / (2 tp + fp + fn), 0 when that is 0/0.
metric_rule "logit": F1 positive iff z > 0 always; R^2 as above.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score
from test_engine import reference_fold, reference_score

from neuco_jax import engine
from neuco_jax.config import Config
from neuco_jax.data import prepare
from neuco_jax.leaderboard import write_leaderboard
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import make_plan, stack_embeddings
from neuco_jax.plots import confusion

NAN = float("nan")
_rng = np.random.default_rng(7)
_Y_ORD = _rng.uniform(size=12)
_Z_ORD = _Y_ORD + 0.3 * _rng.normal(size=12)

# (case, classification, logits, labels, score under "reference", score under "logit")
CASES = [
    # every logit in [0, 1]: probabilities, positive above 0.5 -> tp 1, fp 1, fn 1
    ("all in [0, 1]", True, [0.2, 0.7, 0.6, 0.4], [0, 1, 0, 1], 0.5, 4 / 6),
    # one logit of -0.1: the whole fold goes through the sigmoid (z > 0) -> tp 1, fp 2, fn 1
    ("one below 0", True, [0.2, 0.7, 0.6, -0.1], [0, 1, 0, 1], 2 / 5, 2 / 5),
    ("one above 1", True, [0.2, 0.7, 0.6, 1.1], [0, 1, 0, 1], 4 / 6, 4 / 6),
    # exactly 0.5 is not above 0.5 -> tp 1, fn 1; z > 0 -> tp 2, fp 1
    ("exactly 0.5", True, [0.5, 0.9, 0.1], [1, 1, 0], 2 / 3, 4 / 5),
    # exactly 0 and 1 lie in [0, 1] -> tp 1, fn 1; z > 0 -> tp 2
    ("exactly 0 and 1", True, [1.0, 0.0, 0.3], [1, 0, 1], 2 / 3, 1.0),
    # a NaN is not in [0, 1]: sigmoid for all, NaN negative -> tp 2 (in [0, 1] it would be 2/3)
    ("NaN", True, [NAN, 0.3, 0.6], [0, 1, 1], 1.0, 1.0),
    ("NaN, positive missed", True, [NAN, 0.7, 0.6], [1, 1, 0], 0.5, 0.5),
    # no true and no predicted positives: 0/0 -> 0; z > 0 -> fp 3 -> 0
    ("no positives at all", True, [0.1, 0.2, 0.3], [0, 0, 0], 0.0, 0.0),
    ("positives never predicted", True, [-1.0, -2.0, -0.5], [1, 0, 1], 0.0, 0.0),
    # constant labels: tss 0; rss = 0.0001 + 0.0001 + 0.0025 > 1e-4 -> 0
    ("constant labels", False, [0.3, 0.31, 0.29, 0.35, 0.3], [0.3] * 5, 0.0, 0.0),
    # near-constant labels: tss = 0.005^2 * 4 / 5 = 2e-5 <= 1e-4 -> 0
    ("near-constant labels", False, [0.3, 0.4, 0.2, 0.3, 0.3], [0.3, 0.3, 0.3, 0.3, 0.305], 0.0, 0.0),
    # constant labels, rss = 9e-6 + 9e-6 + 4e-6 <= 1e-4 -> 1
    ("constant labels, tiny residual", False, [0.303, 0.297, 0.302, 0.3, 0.3], [0.3] * 5, 1.0, 1.0),
    # rss = 5 * 0.004^2 = 8e-5 <= 1e-4 with tss 0.625 -> 1 (not 1 - rss / tss)
    ("tiny residual, large tss", False, [0.004, 0.504, 1.004, 0.254, 0.754], [0, 0.5, 1, 0.25, 0.75], 1.0, 1.0),
    ("ordinary", False, list(_Z_ORD), list(_Y_ORD), r2_score(_Y_ORD, _Z_ORD), r2_score(_Y_ORD, _Z_ORD)),
    # a diverged probe: rss NaN is not ~0 -> 1 - NaN / tss = NaN; on constant labels 0
    ("NaN residual", False, [NAN, 0.5, 0.2], [0, 0.5, 1], NAN, NAN),
    ("NaN residual, constant labels", False, [NAN, 0.5, 0.2], [0.5] * 3, 0.0, 0.0),
]
RULES = ("reference", "logit")


def _padded(cases, pad_logit):
    """The cases as one batch of probes (P, n), padded with pad_logit (masked out)."""
    n = max(len(c[2]) for c in cases) + 2
    z = np.full((len(cases), n), pad_logit, np.float32)
    y = np.ones((len(cases), n), np.float32)
    mask = np.zeros((len(cases), n), np.float32)
    for p, (_, _, logits, labels, *_) in enumerate(cases):
        z[p, :len(logits)], y[p, :len(labels)], mask[p, :len(logits)] = logits, labels, 1
    return z, y, mask


@pytest.mark.parametrize("pad_logit", [-5.0, 0.7])  # padding outside [0, 1] must not switch a fold to sigmoid
@pytest.mark.parametrize("rule", RULES)
def test_compiled_scores_follow_torchmetrics(rule, pad_logit):
    z, y, mask = _padded(CASES, pad_logit)
    is_cls = np.array([c[1] for c in CASES])
    scores, _ = jax.jit(engine._heldout_scores)(z, y, mask, is_cls, jnp.asarray(rule == "reference"))
    expected = np.array([c[4] if rule == "reference" else c[5] for c in CASES])
    # float32 sums of at most a dozen terms: a few ulps of the scores' size
    for case, got, want in zip(CASES, np.asarray(scores), expected):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, equal_nan=True, err_msg=case[0])


@pytest.mark.parametrize("rule", RULES)
def test_the_float64_test_scorer_follows_the_same_table(rule):
    """reference_score (the plain loop's scorer in test_engine) against the hand-made table."""
    for case, cls, z, y, ref, logit in CASES:
        want = ref if rule == "reference" else logit
        np.testing.assert_allclose(reference_score(z, y, cls, rule), want, atol=1e-12, equal_nan=True,
                                   err_msg=case)


@pytest.mark.parametrize("rule", RULES)
def test_confusion_matrix_counts_what_the_fold_scored(rule):
    for case, cls, z, y, ref, logit in CASES:
        if not cls:
            continue
        (tn, fp), (fn, tp) = confusion(np.array(y, float), np.array(z, np.float32), rule)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        assert f1 == pytest.approx(ref if rule == "reference" else logit), case
        assert tn + fp + fn + tp == len(z)


def test_switching_the_rule_does_not_recompile(toy_tasks):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    emb = stack_embeddings([bench])
    before = engine.TRACE_COUNT
    for rule in RULES:
        engine.run_plan(make_plan(bench, k_folds=2, epochs=2, batch_size=8, metric_rule=rule), emb)
    assert engine.TRACE_COUNT == before + 1


# ------------------------------------------------------------------ end to end, through evaluate

# The engine's float32 held-out logits lie within 1e-4 of the float64 loop's (checked to that
# tolerance in test_engine's test_best_epoch_logits_and_final_weights_match_the_plain_loop), so a
# fold-epoch whose float64 logits are further than this from any jump of its score (decision_margin)
# must get the float64 score up to float32 rounding.
LOGIT_ATOL = 1e-4
SCORE_ATOL = 1e-5  # the engine's per-epoch scores against the float64 loop (as in test_engine),
# plus a relative part: R^2 = 1 - rss / tss reaches -80 when a fold's tss is small, and rss, a
# float32 sum of n_test terms, carries a relative error of order n_test * 2^-24 (about 1e-6).
SCORE_RTOL = 1e-5


def _write_task(folder, name, kind, ids, labels):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,label"] + [f"{i},{float(v)!r}" for i, v in zip(ids, labels)]
    (folder / f"{name}__{kind}.csv").write_text("\n".join(lines) + "\n")


def _write_submission(path, ids, x):
    lines = ["id," + ",".join(str(j) for j in range(x.shape[1]))]
    lines += [f"{i}," + ",".join(repr(float(v)) for v in row) for i, row in zip(ids, x)]
    path.write_text("\n".join(lines) + "\n")


def _evaluate_capturing_plan(monkeypatch, *args, **kwargs):
    """evaluate(...) and the (plan, embeddings, ProbeScores) of its one engine pass."""
    seen = []
    run_plan = engine.run_plan

    def spy(plan, emb, *a, **k):
        out = run_plan(plan, emb, *a, **k)
        seen.append((plan, emb, out))
        return out

    monkeypatch.setattr(engine, "run_plan", spy)
    (run,) = evaluate(*args, **kwargs)
    (captured,) = seen
    return run, captured


def _check_against_float64_loop(run, task, plan, emb, probes):
    """Per fold and epoch, the engine's scores (and the written q_t) against reference_fold.

    Returns the fraction of fold-epochs compared (the others lie within LOGIT_ATOL of a jump).
    """
    q_t = np.array(json.loads((run.run_dir / task / f"{task}_result.json").read_text())["q_t"])
    np.testing.assert_array_equal(q_t, np.nanmax(probes.epoch_scores[0], axis=1).astype(np.float64))
    checked = []
    for p in range(len(plan.n_train)):
        scores, _, _, margins = reference_fold(plan, emb, p, keep=True)
        ok = margins > LOGIT_ATOL
        np.testing.assert_allclose(probes.epoch_scores[0, p][ok], scores[ok], atol=SCORE_ATOL, rtol=SCORE_RTOL)
        if ok.all():
            np.testing.assert_allclose(q_t[p], scores.max(), atol=SCORE_ATOL, rtol=SCORE_RTOL)
        checked.append(ok)
    return np.mean(checked)


def test_constant_heldout_labels_score_finite_and_rank(tmp_path, monkeypatch):
    """95% identical labels: many folds hold out one value only; R^2 there is 0 or 1, never -inf."""
    rng = np.random.default_rng(3)
    n, dim = 200, 4
    ids = [f"loc{i:04d}" for i in range(n)]
    labels = np.where(rng.uniform(size=n) < 0.95, 1.0, rng.uniform(0, 3, size=n)).round(3)
    _write_task(tmp_path / "labels", "mostly_constant", "regression", ids, labels)
    config = Config(k_folds=20, epochs=5, batch_size=32, learning_rate=0.02, output_fold_results=True)
    for method in ("method_a", "method_b"):
        _write_submission(tmp_path / f"{method}.csv", ids, rng.normal(size=(n, dim)))
        run, (plan, emb, probes) = _evaluate_capturing_plan(
            monkeypatch, tmp_path / f"{method}.csv", tmp_path / "labels", config, output_dir=tmp_path / "out")
        monkeypatch.undo()
        test_labels = [plan.y[plan.test[p, :plan.n_test[p]]] for p in range(len(plan.n_train))]
        constant = sum(np.ptp(y) == 0 for y in test_labels)
        assert constant >= 4, constant  # 0.95^20 = 36% of 20 folds expected
        (score,) = run.scores
        assert np.isfinite(score.fold_scores).all() and np.isfinite(score.q_stat)
        assert _check_against_float64_loop(run, "mostly_constant", plan, emb, probes) == 1.0
    board = pd.read_csv(write_leaderboard(tmp_path / "out", "results"))  # None (no file) if a Q were NaN
    assert sorted(board["experiment"].str.split("_2").str[0]) == ["method_a", "method_b"]
    assert np.isfinite(board["q::mostly_constant"]).all()


def test_weak_signal_f1_follows_the_reference_rule_not_the_logit_rule(tmp_path, monkeypatch):
    """62% positives, almost no signal: held-out logits sit in [0, 1] around the log-odds 0.49,
    where torchmetrics thresholds them at 0.5, not at 0."""
    rng = np.random.default_rng(5)
    n = 1000
    ids = [f"loc{i:04d}" for i in range(n)]
    # Four near-constant columns: after the global standardisation every row is almost the same,
    # so a probe's logits gather around the training rows' log-odds; column 0 holds a weak signal.
    x = np.array([3.0, -3.0, 1.5, -1.5]) + 0.2 * rng.normal(size=(n, 4))
    labels = (rng.uniform(size=n) < 0.62 + 0.1 * np.tanh((x[:, 0] - 3) / 0.2)).astype(int)
    _write_task(tmp_path / "labels", "weak_cls", "classification", ids, labels)
    _write_submission(tmp_path / "weak.csv", ids, x)
    per_rule = {}
    for rule in RULES:
        config = Config(k_folds=10, epochs=10, batch_size=64, learning_rate=0.02, output_fold_results=True,
                        metric_rule=rule)
        run, (plan, emb, probes) = _evaluate_capturing_plan(
            monkeypatch, tmp_path / "weak.csv", tmp_path / "labels", config, output_dir=tmp_path / rule)
        monkeypatch.undo()
        assert plan.metric_rule == rule
        assert _check_against_float64_loop(run, "weak_cls", plan, emb, probes) >= 0.9
        per_rule[rule] = probes.epoch_scores[0], run.scores[0].fold_scores
    (ref_epochs, ref_folds), (logit_epochs, logit_folds) = per_rule["reference"], per_rule["logit"]
    # Most fold-epochs have every held-out logit in [0, 1], where the two rules part.
    assert np.mean(ref_epochs != logit_epochs) > 0.5
    assert np.sum(ref_folds != logit_folds) >= 3
