"""The compiled core: every probe of every task and fold trained and scored in one program.

Leading axis `probes` (P = tasks x folds) is vmapped; epochs and minibatch
steps are `lax.scan`s. Per probe the maths is the reference's:

  logits z = x . w + b                 x: (batch, dim), w: (dim,), b scalar
  loss     = mean over the batch's real rows of
             BCE-with-logits(z, y)     (classification)  or  (z - y)^2  (regression)
  AdamW    g -> m, v (betas 0.9, 0.999), u = m_hat / (sqrt(v_hat) + 1e-8) + 0.01 p,
           p <- p - lr u               (decoupled decay on all parameters, torch defaults)
  score    held-out R^2 = 1 - SS_res / SS_tot, or F1 of the positive class with
           z > 0 as positive; after every epoch; the probe's score is its best epoch.

Padding: a probe whose task has fewer minibatches than the largest task
sees extra steps; in those its parameters and optimiser state stay unchanged
(`active` below), so each probe follows exactly its own unpadded schedule.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neuco_jax.plan import ProbePlan

BETAS = (0.9, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 0.01

# Counts traces of the compiled program (one per compilation); tests read it.
TRACE_COUNT = 0


@dataclasses.dataclass(frozen=True)
class ProbeScores:
    """Host results of one engine pass, per probe (P = tasks x folds).

    best: (P,) best held-out score over epochs (NaN if every epoch was NaN)
    epoch_scores, train_loss, test_loss: (P, epochs)
    """

    best: np.ndarray
    epoch_scores: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray


class _AdamState(NamedTuple):
    count: jax.Array  # steps taken, int32 scalar
    mu: optax.Updates
    nu: optax.Updates


def _scale_by_adam_exact_bias() -> optax.GradientTransformation:
    """Adam's moment scaling with torch's bias correction precision.

    optax.scale_by_adam forms 1 - b2**t in float32, which at t = 1 is off by
    1.3e-5 relative (torch does it in float64); every early step would be
    scaled wrongly. Here 1 - b**t = -expm1(t * log(b)), accurate in float32.
    """
    b1, b2 = BETAS
    log_b1, log_b2 = math.log(b1), math.log(b2)

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return _AdamState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(grads, state, params=None):
        del params
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        count = state.count + 1
        t = count.astype(jnp.float32)
        c1, c2 = -jnp.expm1(t * log_b1), -jnp.expm1(t * log_b2)
        updates = jax.tree.map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + EPS), mu, nu)
        return updates, _AdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def _adamw() -> optax.GradientTransformation:
    # AdamW without its learning rate: lr is a per-probe array applied below,
    # so changing it never recompiles.
    return optax.chain(_scale_by_adam_exact_bias(), optax.add_decayed_weights(WEIGHT_DECAY))


def _probe_loss(params, xb, yb, mask, is_cls):
    """Mean loss over the real rows of one probe's minibatch. xb: (batch, dim); yb, mask: (batch,)."""
    w, b = params
    z = xb @ w + b
    per_row = jnp.where(is_cls, optax.sigmoid_binary_cross_entropy(z, yb), (z - yb) ** 2)
    return jnp.sum(per_row * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _per_probe(v, leaf):
    """Broadcast a (P,) vector against a (P, ...) array."""
    return v.reshape(v.shape + (1,) * (leaf.ndim - 1))


def _heldout_scores(z, y, mask, is_cls):
    """R^2 or F1 and mean loss per probe. z, y, mask: (P, n) with padding masked out."""
    n = jnp.maximum(mask.sum(-1), 1.0)
    y_mean = jnp.sum(y * mask, -1) / n
    ss_res = jnp.sum(mask * (y - z) ** 2, -1)
    ss_tot = jnp.sum(mask * (y - y_mean[:, None]) ** 2, -1)
    r2 = 1.0 - ss_res / ss_tot
    pred = z > 0
    pos = y > 0.5
    tp = jnp.sum(mask * (pred & pos), -1)
    fp = jnp.sum(mask * (pred & ~pos), -1)
    fn = jnp.sum(mask * (~pred & pos), -1)
    denom = 2 * tp + fp + fn
    f1 = jnp.where(denom > 0, 2 * tp / jnp.where(denom > 0, denom, 1.0), 0.0)
    bce = optax.sigmoid_binary_cross_entropy(z, y)
    loss = jnp.sum(mask * jnp.where(is_cls[:, None], bce, (z - y) ** 2), -1) / n
    return jnp.where(is_cls, f1, r2), loss


@partial(jax.jit, static_argnames=("batch_size",))
def _train_and_score(x, y, sample_row, order, n_train, test, n_test, is_cls, lr, w0, b0, *, batch_size):
    """Shapes as in ProbePlan. Returns best (P,) and per-epoch score, train and test loss (P, E)."""
    global TRACE_COUNT
    TRACE_COUNT += 1
    n_probes, _, slots = order.shape
    steps = slots // batch_size
    tx = _adamw()
    lane = jnp.arange(batch_size)
    grad_fn = jax.vmap(jax.value_and_grad(_probe_loss))

    def gather(idx):  # (P, batch) sample indices -> x rows (P, batch, dim), labels (P, batch)
        return x[sample_row[idx]], y[idx]

    test_mask = (jnp.arange(test.shape[1])[None, :] < n_test[:, None]).astype(x.dtype)
    y_test = y[test]

    def epoch(carry, order_e):  # order_e: (P, slots)
        def step(carry, s):
            params, state, loss_sum = carry
            idx = jax.lax.dynamic_slice_in_dim(order_e, s * batch_size, batch_size, axis=1)
            mask = (s * batch_size + lane)[None, :] < n_train[:, None]
            xb, yb = gather(idx)
            loss, grads = grad_fn(params, xb, yb, mask.astype(x.dtype), is_cls)
            updates, new_state = jax.vmap(tx.update)(grads, state, params)
            new_params = jax.tree.map(lambda p, u: p - _per_probe(lr, p) * u, params, updates)
            active = s * batch_size < n_train  # (P,): this step holds real rows for the probe
            keep = lambda new, old: jnp.where(_per_probe(active, old), new, old)  # noqa: E731
            params = jax.tree.map(keep, new_params, params)
            state = jax.tree.map(keep, new_state, state)
            return (params, state, loss_sum + jnp.where(active, loss, 0.0)), None

        params, state = carry
        (params, state, loss_sum), _ = jax.lax.scan(step, (params, state, jnp.zeros(n_probes)), jnp.arange(steps))
        n_steps = jnp.ceil(n_train / batch_size)
        w, b = params

        def chunk_logits(c):  # held-out logits in batch-sized chunks bound the gather's memory
            idx = jax.lax.dynamic_slice_in_dim(test, c * batch_size, batch_size, axis=1)
            xb, _ = gather(idx)
            return jnp.einsum("pbd,pd->pb", xb, w) + b[:, None]

        z = jax.lax.map(chunk_logits, jnp.arange(test.shape[1] // batch_size))  # (chunks, P, batch)
        z = jnp.moveaxis(z, 0, 1).reshape(n_probes, -1)
        score, test_loss = _heldout_scores(z, y_test, test_mask, is_cls)
        return (params, state), (score, loss_sum / n_steps, test_loss)

    params = (w0, b0)
    state = jax.vmap(tx.init)(params)
    _, (scores, train_loss, test_loss) = jax.lax.scan(epoch, (params, state), jnp.moveaxis(order, 1, 0))
    scores, train_loss, test_loss = scores.T, train_loss.T, test_loss.T  # (P, E)
    return jnp.nanmax(scores, axis=1), scores, train_loss, test_loss


def _arrays(plan: ProbePlan) -> tuple:
    return (plan.x, plan.y, plan.sample_row, plan.order, plan.n_train, plan.test, plan.n_test,
            plan.is_cls, plan.lr, plan.w0, plan.b0)


def compile_plan(plan: ProbePlan):
    """Compile the engine for a plan's shapes (cached: same shapes, same executable)."""
    return _train_and_score.lower(*_arrays(plan), batch_size=plan.batch_size).compile()


def run_plan(plan: ProbePlan, compiled=None) -> ProbeScores:
    """Train and score every probe of a plan in one compiled program; results back on the host.

    Args:
      plan: the padded probe plan.
      compiled: the executable from `compile_plan(plan)`; compiled on first use when None.
    """
    fn = compiled or partial(_train_and_score, batch_size=plan.batch_size)
    best, scores, train_loss, test_loss = jax.device_get(fn(*_arrays(plan)))
    return ProbeScores(best=best, epoch_scores=scores, train_loss=train_loss, test_loss=test_loss)
