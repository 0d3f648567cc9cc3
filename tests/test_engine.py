"""The vmapped engine against a plain per-fold loop written independently in numpy."""

import jax
import numpy as np
import pytest
from sklearn.metrics import f1_score

from neuco_jax import engine, native
from neuco_jax.data import prepare
from neuco_jax.plan import make_plan, stack_embeddings


def reference_score(z, y, classification, metric_rule="reference"):
    """A fold's held-out score as torchmetrics 1.7.1 computes it (R2Score, BinaryF1Score), in float64.

    Written from torchmetrics' source: R^2 is 1 when isclose(rss, 0, atol=1e-4), else 0 when
    isclose(tss, 0, atol=1e-4), else 1 - rss / tss with tss = sum y^2 - sum y * mean; F1 reads
    float predictions as probabilities (> 0.5) only if all lie in [0, 1], else thresholds
    sigmoid(z) at 0.5, i.e. z > 0. metric_rule "logit": F1 positive iff z > 0.
    """
    z, y = np.asarray(z, np.float64), np.asarray(y, np.float64)
    if classification:
        as_probs = metric_rule == "reference" and bool(np.all((z >= 0) & (z <= 1)))
        return f1_score(y > 0.5, z > 0.5 if as_probs else z > 0, zero_division=0)
    rss, tss = np.sum((y - z) ** 2), np.sum(y * y) - np.sum(y) * np.mean(y)
    if abs(rss) <= 1e-4:  # isclose(rss, 0, atol=1e-4); a NaN is not close
        return 1.0
    return 0.0 if abs(tss) <= 1e-4 else 1.0 - rss / tss


def decision_margin(z, y, classification, metric_rule="reference"):
    """How far (max over rows) the logits z can move before their fold's score jumps.

    An engine whose float32 logits are closer than this to the float64 ones scores within
    float32 rounding of the float64 score. F1 jumps when a logit crosses its threshold (0.5 or
    0) or, under the reference rule, when the fold switches threshold: its last logit outside
    [0, 1] moves in, or one moves out. R^2 jumps where rss crosses 1e-4; moving every logit by
    at most d changes sqrt(rss) by at most sqrt(n) d (triangle inequality).
    """
    z, y = np.asarray(z, np.float64), np.asarray(y, np.float64)
    if not classification:
        return abs(np.sqrt(np.sum((y - z) ** 2)) - np.sqrt(1e-4)) / np.sqrt(len(z))
    outside = np.maximum(-z, z - 1)  # > 0 outside [0, 1]
    to_inside = outside.max()
    as_probs = metric_rule == "reference" and to_inside <= 0
    threshold = np.abs(z - (0.5 if as_probs else 0.0)).min()
    return min(threshold, abs(to_inside)) if metric_rule == "reference" else threshold


def reference_fold(plan, emb, p, m=0, keep=False):
    """Probe p of method m trained the way torch's nn.Linear + AdamW would, in float64.

    Scored with plan.metric_rule; with keep, also returns the final (w, b), the best epoch's
    held-out logits and every epoch's decision_margin.
    """
    lr, b1, b2, eps, wd = float(plan.lr[p]), 0.9, 0.999, 1e-8, 0.01
    x, y, rows = emb.x[m].astype(np.float64), plan.y.astype(np.float64), emb.sample_row[m]
    bound = 1 / np.sqrt(emb.dims[m])  # torch nn.Linear: uniform(-1/sqrt(in), 1/sqrt(in))
    w, b = plan.w0[p].astype(np.float64) * bound, float(plan.b0[p]) * bound
    m = [np.zeros_like(w), 0.0]
    v = [np.zeros_like(w), 0.0]
    t = 0
    test = plan.test[p, :plan.n_test[p]]
    x_test, y_test = x[rows[test]], y[test]
    scores, best_z, margins = [], None, []
    for e in range(plan.epochs):
        order = plan.visits(p, e)
        for start in range(0, len(order), plan.batch_size):
            idx = order[start:start + plan.batch_size]  # the last, smaller batch is kept
            xb, yb = x[rows[idx]], y[idx]
            z = xb @ w + b
            if plan.is_cls[p]:
                dz = (1 / (1 + np.exp(-z)) - yb) / len(idx)
            else:
                dz = 2 * (z - yb) / len(idx)
            grads = [xb.T @ dz, dz.sum()]
            t += 1
            params = [w, b]
            for i in range(2):  # torch.optim.AdamW: decay first, then the Adam step
                params[i] = params[i] * (1 - lr * wd)
                m[i] = b1 * m[i] + (1 - b1) * grads[i]
                v[i] = b2 * v[i] + (1 - b2) * grads[i] ** 2
                m_hat, v_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
                params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
            w, b = params
        z = x_test @ w + b
        scores.append(reference_score(z, y_test, plan.is_cls[p], plan.metric_rule))
        margins.append(decision_margin(z, y_test, plan.is_cls[p], plan.metric_rule))
        if len(scores) == 1 or scores[-1] > max(scores[:-1]):
            best_z = z
    if keep:
        return np.array(scores), (w, b), best_z, np.array(margins)
    return np.array(scores)


# The per-fold step runs natively on one CPU device where a C++ compiler is present; test both.
STEPS = [("per_fold", True), ("per_fold", False), ("shared", False)]


def _step_params(steps):
    return [pytest.param(shuffle, native_step, id=f"{shuffle}-{'native' if native_step else 'xla'}",
                         marks=[pytest.mark.skipif(native_step and not native.available(),
                                                   reason="native step unavailable (no C++ compiler, or NEUCO_JAX_NATIVE=0)")])
            for shuffle, native_step in steps]


@pytest.mark.parametrize("shuffle,native_step", _step_params(STEPS))
@pytest.mark.parametrize("lr", [2e-2, 1e-1])
def test_engine_matches_plain_per_fold_loop(toy_tasks, lr, shuffle, native_step):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    assert {t.task_type for t in bench.tasks} == {"regression", "classification"}
    # Two label fractions: the quarter's minibatches span several windows of the shared shuffle.
    plan = make_plan(bench, k_folds=4, epochs=4, batch_size=16, learning_rates=(lr, lr / 2),
                     label_fractions=(1.0, 0.25), shuffle=shuffle)
    assert plan.n_units.sum() > plan.last.sum() or shuffle == "per_fold"
    emb = stack_embeddings([bench])
    assert engine.uses_native(plan.own_orders, jax.devices(), native_step) == native_step
    got = engine.run_plan(plan, emb, native_step=native_step)
    expected = np.stack([reference_fold(plan, emb, p) for p in range(len(plan.n_train))])
    np.testing.assert_allclose(got.epoch_scores[0], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.best[0], expected.max(axis=1), atol=1e-5, rtol=0)


def test_one_compilation_per_run_whatever_the_number_of_tasks(toy_tasks):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    before = engine.TRACE_COUNT
    engine.run_plan(make_plan(bench, k_folds=3, epochs=2, batch_size=8, learning_rates=(1e-3,)),
                    stack_embeddings([bench]))
    assert engine.TRACE_COUNT == before + 1
    # Same shapes again (another learning rate): the compiled program is reused.
    engine.run_plan(make_plan(bench, k_folds=3, epochs=2, batch_size=8, learning_rates=(1e-2,)),
                    stack_embeddings([bench]))
    assert engine.TRACE_COUNT == before + 1


def test_padding_steps_leave_a_small_task_unchanged(toy_tasks):
    """The small task scores the same alone as next to a task with many more minibatches."""
    tasks, ids, x = toy_tasks
    cls_task = [t for t in tasks if t.task_type == "classification"]
    kw = dict(k_folds=3, epochs=3, batch_size=8, learning_rates=(1e-2,))
    both, alone = (prepare(t, ids, x) for t in (tasks, cls_task))
    scores_both = engine.run_plan(make_plan(both, **kw), stack_embeddings([both]))
    scores_alone = engine.run_plan(make_plan(alone, **kw), stack_embeddings([alone]))
    np.testing.assert_allclose(scores_both.epoch_scores[0, :3], scores_alone.epoch_scores[0], atol=1e-6)


@pytest.mark.parametrize("shuffle,native_step", _step_params(STEPS))
def test_best_epoch_logits_and_final_weights_match_the_plain_loop(toy_tasks, shuffle, native_step):
    tasks, ids, x = toy_tasks
    bench = prepare(tasks, ids, x)
    plan = make_plan(bench, k_folds=2, epochs=3, batch_size=16, learning_rates=(0.05,), shuffle=shuffle)
    emb = stack_embeddings([bench])
    got = engine.run_plan(plan, emb, native_step=native_step)
    for p in range(len(plan.n_train)):
        scores, (w, b), best_z, _ = reference_fold(plan, emb, p, keep=True)
        np.testing.assert_allclose(got.w[0, p], w, atol=1e-4)
        np.testing.assert_allclose(got.b[0, p], b, atol=1e-4)
        n = plan.n_test[p]
        np.testing.assert_allclose(got.best_logits[0, p, :n], best_z, atol=1e-4)
        assert got.best_logits[0, p, :n].shape == (n,)
