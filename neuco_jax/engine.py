"""The compiled core: every probe of every task and fold trained and scored in one program.

Axes: methods x entries x group, where an entry is one (task, label fraction)
and its group is learning rates x folds. Methods and entries go through
`lax.map`s, the probes of a group are vmapped; epochs are a `lax.scan` and
minibatch steps a loop of the entry's own length. Per probe the maths is the
reference's:

  logits z = x . w + b                 x: (batch, dim), w: (dim,), b scalar
  loss     = mean over the batch's real rows of
             BCE-with-logits(z, y)     (classification)  or  (z - y)^2  (regression)
  AdamW    g -> m, v (betas 0.9, 0.999), u = m_hat / (sqrt(v_hat) + 1e-8) + 0.01 p,
           p <- p - lr u               (decoupled decay on all parameters, torch defaults)
  score    held-out R^2 = 1 - SS_res / SS_tot, or F1 of the positive class with
           z > 0 as positive; after every epoch; the probe's score is its best epoch.

Padding: plan arrays are padded to the largest task, but a task's step loop
runs only its own number of minibatches, so padding slots never touch its
parameters or optimiser state; the last, smaller batch is masked row-wise.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neuco_jax.plan import Embeddings, ProbePlan

BETAS = (0.9, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 0.01

# Counts traces of the compiled program (one per compilation); tests read it.
TRACE_COUNT = 0


@dataclasses.dataclass(frozen=True)
class ProbeScores:
    """Host results of one engine pass, per method and probe (see ProbePlan for the probe order).

    best: (methods, probes) best held-out score over epochs (NaN if every epoch was NaN)
    epoch_scores, train_loss, test_loss: (methods, probes, epochs)
    best_logits: (methods, probes, test_slots) held-out logits at the best epoch
      (the first n_test[p] are real; zeros if no epoch scored)
    w: (methods, probes, dim), b: (methods, probes) the parameters after the last epoch
    """

    best: np.ndarray
    epoch_scores: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    best_logits: np.ndarray
    w: np.ndarray
    b: np.ndarray


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


def _loss_and_grad(p, xb, yb, mask, is_cls):
    """Batch-mean loss and its gradient for every probe of a group.

    p: (group, dim + 1), the weights with the bias as last column, so one AdamW
    update covers both; xb: (group, batch, dim); yb, mask: (group, batch).
    d loss / d z is (sigmoid(z) - y) / n for BCE and 2 (z - y) / n for MSE, and
    the linear model's gradient is [xb^T dz, sum(dz)].
    """
    w, b = p[:, :-1], p[:, -1]
    z = jnp.einsum("kbd,kd->kb", xb, w) + b[:, None]
    n = jnp.maximum(mask.sum(-1, keepdims=True), 1.0)
    loss = jnp.sum(mask * jnp.where(is_cls, optax.sigmoid_binary_cross_entropy(z, yb), (z - yb) ** 2), -1) / n[:, 0]
    dz = mask * jnp.where(is_cls, jax.nn.sigmoid(z) - yb, 2.0 * (z - yb)) / n
    return loss, jnp.concatenate([jnp.einsum("kbd,kb->kd", xb, dz), dz.sum(-1, keepdims=True)], axis=1)


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


def _train_and_score(x, sample_row, dims, y, order, n_train, test, n_test, is_cls, lr, w0, b0, *, batch_size):
    """One pass over every method, entry and probe.

    x: (M, n_rows, dim), sample_row: (M, n_samples), dims: (M,), y: (n_samples,) as in Embeddings
    and ProbePlan; the per-probe plan arrays come as (entries, group, ...), and the per-entry
    constants n_train, n_test, is_cls as (entries,).

    Returns:
      per-epoch score, train loss and held-out loss, each (M, entries, epochs, group); the
      held-out logits at each probe's best epoch (M, entries, group, test_slots); the final
      weights (M, entries, group, dim) and biases (M, entries, group).
    """
    global TRACE_COUNT
    TRACE_COUNT += 1
    tx = _adamw()
    lane = jnp.arange(batch_size)
    dim = x.shape[-1]

    def method(args):
        """Every probe for one method. x: (n_rows, dim); rows: (n_samples,); width: its own dim."""
        x, rows, width = args

        def gather(idx):  # (group, batch) sample indices -> x rows (group, batch, dim), labels
            # The barrier materialises the rows once; left to itself XLA:CPU fuses the
            # gather into both dots of the step and runs slower.
            return jax.lax.optimization_barrier(x[rows[idx]]), y[idx]

        # torch nn.Linear's init, uniform(+-1/sqrt(width)), from the plan's unit draws;
        # columns beyond the method's width stay exactly 0 (no gradient, no decay).
        scale = 1.0 / jnp.sqrt(width.astype(jnp.float32))
        w_scale = jnp.where(jnp.arange(dim) < width, scale, 0.0)

        def entry(args):
            """All probes of one (task, label fraction). order: (group, epochs, slots)."""
            order, n_train, test, n_test, is_cls, lr, w0, b0 = args
            group = order.shape[0]
            n_steps = (n_train + batch_size - 1) // batch_size  # this entry's own minibatches per epoch
            test_mask = jnp.broadcast_to(jnp.arange(test.shape[1]) < n_test, test.shape).astype(x.dtype)

            def epoch(carry, order_e):  # order_e: (group, slots)
                def step(s, carry):
                    params, state, loss_sum = carry
                    idx = jax.lax.dynamic_slice_in_dim(order_e, s * batch_size, batch_size, axis=1)
                    mask = jnp.broadcast_to(s * batch_size + lane < n_train, idx.shape).astype(x.dtype)
                    xb, yb = gather(idx)
                    loss, grads = _loss_and_grad(params, xb, yb, mask, is_cls)
                    updates, state = jax.vmap(tx.update)(grads, state, params)
                    params = params - lr[:, None] * updates
                    return params, state, loss_sum + loss

                params, state, best_score, best_z = carry
                # A loop of the entry's own length: no padding step ever touches its probes.
                params, state, loss_sum = jax.lax.fori_loop(0, n_steps, step, (params, state, jnp.zeros(group)))
                w, b = params[:, :-1], params[:, -1]

                def chunk_logits(c):  # held-out logits in batch-sized chunks bound the gather's memory
                    idx = jax.lax.dynamic_slice_in_dim(test, c * batch_size, batch_size, axis=1)
                    xb, _ = gather(idx)
                    return jnp.einsum("kbd,kd->kb", xb, w) + b[:, None]

                z = jax.lax.map(chunk_logits, jnp.arange(test.shape[1] // batch_size))  # (chunks, group, batch)
                z = jnp.moveaxis(z, 0, 1).reshape(group, -1)
                score, test_loss = _heldout_scores(z, y[test], test_mask, jnp.broadcast_to(is_cls, (group,)))
                # Held-out logits of each probe's best epoch so far (the first of ties, as the reference).
                better = score > best_score
                best_score = jnp.where(better, score, best_score)
                best_z = jnp.where(better[:, None], z, best_z)
                return (params, state, best_score, best_z), (score, loss_sum / n_steps, test_loss)

            params = jnp.concatenate([w0 * w_scale, (b0 * scale)[:, None]], axis=1)
            state = jax.vmap(tx.init)(params)
            carry = (params, state, jnp.full(group, -jnp.inf), jnp.zeros(test.shape, x.dtype))
            (params, _, _, best_z), per_epoch = jax.lax.scan(epoch, carry, jnp.moveaxis(order, 1, 0))
            return per_epoch + (best_z, params[:, :-1], params[:, -1])  # (epochs, group) x 3, (group, test_slots), w, b

        # Entries run one after another (a task's rows stay in cache while all its
        # probes train); the probes of an entry are vmapped (and sharded over devices).
        return jax.lax.map(entry, (order, n_train, test, n_test, is_cls, lr, w0, b0))

    return jax.lax.map(method, (x, sample_row, dims))


@functools.cache
def _program(devices: tuple, batch_size: int):
    """The jitted engine for a set of devices: probes sharded over them, results replicated."""
    mesh = jax.sharding.Mesh(np.array(devices), ("probes",))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    fn = jax.jit(partial(_train_and_score, batch_size=batch_size), out_shardings=replicated)
    return fn, mesh


def _device_arrays(plan: ProbePlan, emb: Embeddings, mesh) -> tuple:
    """Host arrays -> global device arrays: probe axes sharded over the mesh, the rest replicated.

    The group axis of every entry is padded to a multiple of the device count
    with copies of its last probe (their results are dropped).
    """
    n_dev = mesh.devices.size
    entries, group = len(plan.entries), plan.group
    padded = -(-group // n_dev) * n_dev

    def per_probe(a):  # (probes, ...) -> (entries, padded group, ...)
        a = a.reshape((entries, group) + a.shape[1:])
        return np.concatenate([a, np.repeat(a[:, -1:], padded - group, axis=1)], axis=1)

    def put(a, spec):
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    first = lambda a: a.reshape(entries, group)[:, 0]  # noqa: E731 (per-entry constants stored per probe)
    replicated = [emb.x, emb.sample_row, emb.dims, plan.y, first(plan.n_train)]
    sharded = [per_probe(plan.order), per_probe(plan.test)]
    args = [put(a, ()) for a in replicated[:4]]
    args += [put(sharded[0], (None, "probes")), put(replicated[4], ()), put(sharded[1], (None, "probes")),
             put(first(plan.n_test), ()), put(first(plan.is_cls), ())]
    args += [put(per_probe(a), (None, "probes")) for a in (plan.lr, plan.w0, plan.b0)]
    return tuple(args)


def compile_plan(plan: ProbePlan, emb: Embeddings, devices=None):
    """Compile the engine for the shapes of a plan and a stack of methods (cached per shape).

    Args:
      devices: the devices to shard probes over; default: all of JAX's default backend.
    """
    fn, mesh = _program(tuple(devices or jax.devices()), plan.batch_size)
    return fn.lower(*_device_arrays(plan, emb, mesh)).compile(), mesh


def run_plan(plan: ProbePlan, emb: Embeddings, compiled=None, devices=None) -> ProbeScores:
    """Train and score every probe of every method in one compiled program; results on the host.

    Args:
      plan: the padded probe plan.
      emb: the methods' embeddings (leading axis: methods).
      compiled: what `compile_plan` returned; compiled on first use when None.
      devices: as in compile_plan (ignored when `compiled` is given).

    Returns:
      ProbeScores with a leading methods axis.
    """
    executable, mesh = compiled or compile_plan(plan, emb, devices)
    *per_epoch, best_z, w, b = jax.device_get(executable(*_device_arrays(plan, emb, mesh)))
    # (M, entries, epochs, padded group) -> (M, probes, epochs), padding dropped
    scores, train_loss, test_loss = (np.moveaxis(a[..., :plan.group], 2, 3).reshape(a.shape[0], -1, a.shape[2])
                                     for a in per_epoch)
    # (M, entries, padded group, ...) -> (M, probes, ...)
    best_z, w, b = (a[:, :, :plan.group].reshape((a.shape[0], -1) + a.shape[3:]) for a in (best_z, w, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a probe NaN at every epoch stays NaN
        best = np.nanmax(scores, axis=-1)
    return ProbeScores(best=best, epoch_scores=scores, train_loss=train_loss, test_loss=test_loss,
                       best_logits=best_z, w=w, b=b)
