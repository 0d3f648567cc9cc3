"""The compiled core: every probe of every task and fold trained and scored in one program.

Axes: methods x entries x group, where an entry is one (task, label fraction)
and its group is learning rates x folds. Methods and entries go through
`lax.map`s; the probes of a group step together (their products batched, their
AdamW updates vmapped); epochs are a `lax.scan` and minibatch windows a loop of
the epoch's own length. Per probe the maths is the reference's:

  logits z = x . w + b                 x: (batch, dim), w: (dim,), b scalar
  loss     = mean over the batch's real rows of
             BCE-with-logits(z, y)     (classification)  or  (z - y)^2  (regression)
  AdamW    g -> m, v (betas 0.9, 0.999), u = m_hat / (sqrt(v_hat) + 1e-8) + 0.01 p,
           p <- p - lr u               (decoupled decay on all parameters, torch defaults)
  score    after every epoch, on the fold's held-out logits, as torchmetrics scores them
           (the reference's R2Score / BinaryF1Score, see _heldout_scores): R^2 =
           1 - SS_res / SS_tot (1 if SS_res ~ 0, 0 if only SS_tot ~ 0), or F1 of the
           positive class, positive when z > 0.5 if every held-out z lies in [0, 1],
           else when z > 0 (`metric_rule: logit`: always z > 0); the probe's score is
           its best epoch.

A minibatch is read in windows of the epoch's shuffled task rows (see
ProbePlan): with per-fold orders each probe gathers its own window; with a
shared shuffle one window serves every probe, and the step is two matrix
products. A mask picks each probe's rows of the minibatch out of its window.
On one CPU device, per-fold windows go through a fused native kernel
(neuco_jax.native: each row read once for its forward and gradient) when it
could be built; elsewhere XLA gathers the rows and runs the products.
Padding: plan arrays are padded to the largest task, but an epoch's loop runs
only its own windows, so padding never touches a probe's parameters or
optimiser state; the last, smaller batch is averaged over its own rows.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import warnings
import weakref
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neuco_jax import native
from neuco_jax.plan import Embeddings, ProbePlan
from neuco_jax.runtime import compile_once, global_array

log = logging.getLogger(__name__)

HIGHEST = jax.lax.Precision.HIGHEST  # no reduced-precision matmuls on GPU/TPU
# AdamW's constants (torch's defaults); native/minibatch_step.cc holds the same ones.
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


def _bias_corrections(count):
    """Adam's 1 - beta1**t and 1 - beta2**t after `count` steps, as -expm1(t log beta) in float32."""
    t = count.astype(jnp.float32)
    return tuple(-jnp.expm1(t * math.log(b)) for b in BETAS)


def _scale_by_adam_exact_bias() -> optax.GradientTransformation:
    """Adam's moment scaling with torch's bias correction precision.

    optax.scale_by_adam forms 1 - b2**t in float32, which at t = 1 is off by
    1.3e-5 relative (torch does it in float64); every early step would be
    scaled wrongly. Here 1 - b**t = -expm1(t * log(b)), accurate in float32.
    """
    b1, b2 = BETAS

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return _AdamState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(grads, state, params=None):
        del params
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        count = state.count + 1
        c1, c2 = _bias_corrections(count)
        updates = jax.tree.map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + EPS), mu, nu)
        return updates, _AdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def _adamw() -> optax.GradientTransformation:
    # AdamW without its learning rate: lr is a per-probe array applied below,
    # so changing it never recompiles.
    return optax.chain(_scale_by_adam_exact_bias(), optax.add_decayed_weights(WEIGHT_DECAY))


def _per_probe(v, leaf):
    """Broadcast a (P,) vector against a (P, ...) array."""
    return v.reshape(v.shape + (1,) * (leaf.ndim - 1))


# torchmetrics' R2Score treats a sum of squares as zero when isclose(ss, 0, atol=1e-4) (rtol
# vanishes at 0): |ss| <= 1e-4.
R2_ATOL = 1e-4


def predicted_positive(z, mask, reference_rule):
    """Which held-out logits a fold's F1 counts as positive, per probe.

    z, mask: (P, n), padding masked out; reference_rule: bool scalar, True for torchmetrics'
    BinaryF1Score (metric_rule "reference"), False for "logit > 0" (metric_rule "logit").

    BinaryF1Score gets the fold's logits as float predictions: if EVERY one lies in [0, 1]
    (a NaN does not) it takes them as probabilities, positive when z > 0.5; otherwise it
    applies a sigmoid first, positive when sigmoid(z) > 0.5. That is z > 0 here: torch's
    float32 sigmoid rounds to exactly 0.5 for 0 < z below about 1e-7 (calling those
    negative), a band far inside the float32 noise of a trained logit; the exact edge
    depends on each library's exp, so no implementation can match it bit for bit.
    (On CUDA, torchmetrics' test lets a NaN pass as in [0, 1]; a NaN is negative either way.)
    """
    inside = jnp.all((mask == 0) | ((z >= 0) & (z <= 1)), axis=-1, keepdims=True)  # (P, 1)
    return jnp.where(reference_rule & inside, z > 0.5, z > 0)


def _heldout_scores(z, y, mask, is_cls, reference_rule):
    """The held-out score as torchmetrics computes it, and the mean loss, per probe.

    z, y, mask: (P, n) with padding masked out; is_cls: (P,) bool; reference_rule: bool
    scalar, see predicted_positive (R^2 is the same under both rules).

    R2Score: rss = SS_res and tss = SS_tot; the score is 1 - rss / tss where both exceed
    1e-4, 0 where only tss is ~0 (constant held-out labels) and 1 wherever rss is ~0.
    A NaN rss is not ~0: a diverged probe scores NaN (0 on constant labels), as in
    torchmetrics. It forms tss in one pass (sum y^2 - sum y * mean, in float32); the two-pass
    sum here is the exact value that one rounds.
    """
    n = jnp.maximum(mask.sum(-1), 1.0)
    y_mean = jnp.sum(y * mask, -1) / n
    ss_res = jnp.sum(mask * (y - z) ** 2, -1)
    ss_tot = jnp.sum(mask * (y - y_mean[:, None]) ** 2, -1)
    rss_zero, tss_zero = ss_res <= R2_ATOL, ss_tot <= R2_ATOL  # both sums are >= 0 (or NaN: not ~0)
    r2 = jnp.where(rss_zero, 1.0, jnp.where(tss_zero, 0.0, 1.0 - ss_res / jnp.where(tss_zero, 1.0, ss_tot)))
    pred = predicted_positive(z, mask, reference_rule)
    pos = y > 0.5
    tp = jnp.sum(mask * (pred & pos), -1)
    fp = jnp.sum(mask * (pred & ~pos), -1)
    fn = jnp.sum(mask * (~pred & pos), -1)
    denom = 2 * tp + fp + fn
    f1 = jnp.where(denom > 0, 2 * tp / jnp.where(denom > 0, denom, 1.0), 0.0)
    bce = optax.sigmoid_binary_cross_entropy(z, y)
    loss = jnp.sum(mask * jnp.where(is_cls[:, None], bce, (z - y) ** 2), -1) / n
    return jnp.where(is_cls, f1, r2), loss


def _train_and_score(x, sample_row, dims, y, offset, n_rows, shuffle, member, n_units, start, step, last, n_train,
                     test, n_test, is_cls, lr, w0, b0, reference_rule, *, batch_size, window, use_native=False):
    """One pass over every method, entry and probe.

    x: (M, n_rows, dim), sample_row: (M, n_samples), dims: (M,), y: (n_samples,) as in Embeddings
    and ProbePlan; the per-probe plan arrays come as (entries, group, ...) (member as
    (entries, slots, group); test as positions in the entry's task), everything else per entry.
    reference_rule: bool scalar, the F1 rule (predicted_positive). A runtime value, not a
    static one: both rules share one compiled program, and switching never recompiles.

    Returns:
      per-epoch score, train loss and held-out loss, each (M, entries, epochs, group); the
      held-out logits at each probe's best epoch (M, entries, group, test_slots); the final
      weights (M, entries, group, dim) and biases (M, entries, group).
    """
    global TRACE_COUNT
    TRACE_COUNT += 1
    tx = _adamw()
    dim, slots = x.shape[-1], shuffle.shape[-1]
    # Parameters are [w, b, 0...]: a column of ones after the embedding makes the bias one more
    # weight, and the width is padded to a multiple of 16 (zero inputs keep those weights 0).
    width = -(-(dim + 1) // 16) * 16
    own_orders = shuffle.shape[2] > 1  # per-probe orders (else one shared shuffle per entry and epoch)
    dot = partial(jnp.dot, precision=HIGHEST)

    def method(args):
        """Every probe for one method. x: (n_rows, dim); rows: (n_samples,); own_dim: its width."""
        x, rows, own_dim = args
        # torch nn.Linear's init, uniform(+-1/sqrt(own_dim)), from the plan's unit draws;
        # columns beyond the method's width stay exactly 0 (no gradient, no decay).
        scale = 1.0 / jnp.sqrt(own_dim.astype(jnp.float32))
        w_scale = jnp.where(jnp.arange(dim) < own_dim, scale, 0.0)

        def entry(cls, args):
            """All probes of one (task, label fraction); `cls` (static): a classification task."""
            offset, n_rows, shuffle, member, n_units, start, step, last, n_train, test, n_test, _, lr, w0, b0 = args
            group = member.shape[1]
            samples = offset + jnp.minimum(jnp.arange(slots), n_rows - 1)  # padding repeats the last row
            x_task = jnp.concatenate([x[rows[samples]], jnp.ones((slots, 1), x.dtype),
                                      jnp.zeros((slots, width - dim - 1), x.dtype)], axis=1)  # (slots, width)
            y_task = y[samples]
            n_steps = (n_train + batch_size - 1) // batch_size  # this entry's own minibatches per epoch
            test_mask = jnp.broadcast_to(jnp.arange(test.shape[1]) < n_test, test.shape).astype(x.dtype)
            # The native kernels (per-fold orders on one CPU device): the step, and held-out logits.
            fused, heldout = (native.minibatch_step(cls), native.heldout_logits()) if use_native else (None, None)

            def epoch(carry, plan_e):
                n_units, start, step, last, order = plan_e  # order: (orders, slots), orders = 1 or group
                y_e = y_task[order.T]  # (slots, orders), against z's (window, group)
                # Minibatch number of each shuffled position, per probe (-1: not one of its training rows).
                visited = jnp.take_along_axis(member, order.T, axis=0)  # (slots, group)
                batch = jnp.where(visited, (jnp.cumsum(visited, 0, dtype=jnp.int32) - 1) // batch_size, -1)
                if own_orders:  # each probe gathers its own window of rows: a batched matrix-vector product
                    def products(start):
                        idx = jax.lax.dynamic_slice_in_dim(order, start, window, axis=1)
                        # The barrier materialises the rows once; left to itself XLA:CPU fuses the
                        # gather into both products and runs slower.
                        xw = jax.lax.optimization_barrier(x_task[idx])  # (group, window, width)
                        return (lambda p: jnp.einsum("gwd,gd->wg", xw, p, precision=HIGHEST),
                                lambda dz: jnp.einsum("gwd,wg->gd", xw, dz, precision=HIGHEST))
                else:  # one window of the shared shuffle serves every probe: two matrix products
                    x_e = x_task[order[0]]

                    def products(start):
                        xw = jax.lax.dynamic_slice_in_dim(x_e, start, window)  # (window, width)
                        return lambda p: dot(xw, p.T), lambda dz: dot(dz.T, xw)

                def unit(u, carry):
                    """One window of minibatch step[u]: its rows of every probe, forward and gradient."""
                    params, state, grad, loss_sum = carry
                    s = step[u]
                    n = jnp.minimum(batch_size, n_train - s * batch_size)  # the minibatch's rows
                    if fused is not None:  # the native kernel: the whole step, each row read once
                        adam, count = state[0], state[0].count + 1
                        c1, c2 = _bias_corrections(count)
                        idx = jax.lax.dynamic_slice_in_dim(order, start[u], window, axis=1)
                        params, mu, nu, loss = fused(x_task, y_task, idx, n, params, adam.mu, adam.nu, lr, c1, c2)
                        return params, (_AdamState(count, mu, nu), *state[1:]), grad, loss_sum + loss
                    yw = jax.lax.dynamic_slice_in_dim(y_e, start[u], window)
                    mask = (jax.lax.dynamic_slice_in_dim(batch, start[u], window) == s) / n.astype(x.dtype)
                    forward, backward = products(start[u])
                    z = forward(params)  # (window, group)
                    if cls:  # d loss / d z: (sigmoid(z) - y) / n for BCE, 2 (z - y) / n for MSE
                        dz, loss = jax.nn.sigmoid(z) - yw, optax.sigmoid_binary_cross_entropy(z, yw)
                    else:
                        dz, loss = 2.0 * (z - yw), (z - yw) ** 2
                    g, loss = backward(mask * dz), jnp.sum(mask * loss, 0)
                    loss_sum = loss_sum + loss
                    if own_orders:  # a per-fold window is a whole minibatch (ProbePlan): every unit steps
                        updates, state = jax.vmap(tx.update)(g, state, params)
                        return params - lr[:, None] * updates, state, grad, loss_sum
                    # The minibatch's last window takes the AdamW step and starts a fresh gradient.
                    grad = grad + g
                    updates, stepped = jax.vmap(tx.update)(grad, state, params)
                    done = last[u]
                    params = jnp.where(done, params - lr[:, None] * updates, params)
                    state = jax.tree.map(lambda new, old: jnp.where(done, new, old), stepped, state)
                    return params, state, jnp.where(done, 0.0, grad), loss_sum

                params, state, best_score, best_z = carry
                # A loop of the epoch's own windows: no padding step ever touches its probes.
                params, state, _, loss_sum = jax.lax.fori_loop(
                    0, n_units, unit, (params, state, jnp.zeros_like(params), jnp.zeros(group, x.dtype)))
                if heldout is not None:  # each probe's held-out rows only
                    z = heldout(x_task, test, n_test, params)
                else:  # every row of the task for every probe (one matrix product), then each probe's own
                    z = jnp.take_along_axis(dot(x_task, params.T).T, test, axis=1)  # (group, test_slots)
                score, test_loss = _heldout_scores(z, y_task[test], test_mask, jnp.full(group, cls), reference_rule)
                # Held-out logits of each probe's best epoch so far (the first of ties, as the reference).
                better = score > best_score
                best_score = jnp.where(better, score, best_score)
                best_z = jnp.where(better[:, None], z, best_z)
                return (params, state, best_score, best_z), (score, loss_sum / n_steps, test_loss)

            params = jnp.zeros((group, width), x.dtype).at[:, :dim].set(w0 * w_scale).at[:, dim].set(b0 * scale)
            state = jax.vmap(tx.init)(params)
            carry = (params, state, jnp.full(group, -jnp.inf), jnp.zeros(test.shape, x.dtype))
            (params, _, _, best_z), per_epoch = jax.lax.scan(epoch, carry, (n_units, start, step, last, shuffle))
            # (epochs, group) x 3, then (group, test_slots), w, b
            return per_epoch + (best_z, params[:, :dim], params[:, dim])

        # Entries run one after another (a task's rows stay in cache while all its probes
        # train); the probes of an entry step together (and are sharded over devices).
        # Classification and regression steps are compiled apart.
        args = (offset, n_rows, shuffle, member, n_units, start, step, last, n_train, test, n_test, is_cls,
                lr, w0, b0)
        return jax.lax.map(lambda a: jax.lax.cond(a[11], partial(entry, True), partial(entry, False), a), args)

    return jax.lax.map(method, (x, sample_row, dims))


@functools.cache
def _program(devices: tuple, batch_size: int, window: int, use_native: bool):
    """The jitted engine for a set of devices: probes sharded over them, results replicated."""
    mesh = jax.sharding.Mesh(np.array(devices), ("probes",))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    fn = jax.jit(partial(_train_and_score, batch_size=batch_size, window=window, use_native=use_native),
                 out_shardings=replicated)
    return fn, mesh


def uses_native(per_fold: bool, devices, native_step: bool = True) -> bool:
    """Whether the engine takes the fused native step: per-fold orders on one CPU device, kernel built."""
    return native_step and per_fold and len(devices) == 1 and devices[0].platform == "cpu" and native.available()


def _device_arrays(plan: ProbePlan, emb: Embeddings, mesh) -> tuple:
    """The program's arguments: the methods' arrays, then the plan's (placed once per plan and mesh)."""
    def put(a):
        return global_array(a, mesh)

    return (put(emb.x), put(emb.sample_row), put(emb.dims), *_placed_plan(plan, mesh))


# Each plan's device arrays, per mesh, while the plan lives: a sweep's chunks and a research loop's
# repeat calls (neuco_jax.benchmark) reuse them instead of padding and copying ~100 MB per pass.
_placed: dict[tuple[int, object], tuple] = {}


def _placed_plan(plan: ProbePlan, mesh) -> tuple:
    key = (id(plan), mesh)
    if key not in _placed:
        _placed[key] = _plan_arrays(plan, mesh)
        weakref.finalize(plan, _placed.pop, key, None)
    return _placed[key]


def _plan_arrays(plan: ProbePlan, mesh) -> tuple:
    """A plan's host arrays -> global device arrays: probe axes sharded over the mesh, the rest replicated.

    The group axis of every entry is padded to a multiple of the device count
    with copies of its last probe (their results are dropped).
    """
    n_dev = mesh.devices.size
    entries, group = len(plan.entries), plan.group
    padded = -(-group // n_dev) * n_dev

    def pad(a, axis=1):  # copies of the last probe along the group axis
        last = np.take(a, [-1], axis=axis)
        return np.concatenate([a, np.repeat(last, padded - group, axis=axis)], axis=axis)

    def per_probe(a):  # (probes, ...) -> (entries, padded group, ...)
        return pad(a.reshape((entries, group) + a.shape[1:]))

    def put(a, spec=()):
        return global_array(a, mesh, *spec)

    first = lambda a: a.reshape(entries, group)[:, 0]  # noqa: E731 (per-entry constants stored per probe)
    # Held-out samples as positions in their task (padding: position 0, masked).
    test = plan.test - np.repeat(plan.offset, group)[:, None]
    test = np.where(np.arange(test.shape[1]) < plan.n_test[:, None], test, 0).astype(np.int32)
    sharded = (None, "probes")
    shuffle = put(pad(plan.shuffle, axis=2), (None, None, None, "probes")) if plan.own_orders else put(plan.shuffle)
    return (put(plan.y), put(plan.offset), put(plan.n_rows),
            shuffle, put(pad(plan.member, axis=2), (None, None, "probes")), put(plan.n_units), put(plan.start),
            put(plan.step), put(plan.last), put(first(plan.n_train)), put(per_probe(test), sharded),
            put(first(plan.n_test)), put(first(plan.is_cls)),
            *(put(per_probe(a), sharded) for a in (plan.lr, plan.w0, plan.b0)),
            put(np.asarray(plan.metric_rule == "reference")))


def compile_plan(plan: ProbePlan, emb: Embeddings, devices=None, native_step: bool = True):
    """Compile the engine for the shapes of a plan and a stack of methods (cached per shape).

    Args:
      devices: the devices to shard probes over; default: all of JAX's default backend.
      native_step: take the fused native step where it applies (`uses_native`); False keeps
        the pure-XLA step everywhere.
    """
    devices = tuple(devices or jax.devices())
    use_native = uses_native(plan.own_orders, devices, native_step)
    log.info("engine: %d device(s), %s shuffle, %s step", len(devices), "per-fold" if plan.own_orders else "shared",
             "native" if use_native else "XLA")
    fn, mesh = _program(devices, plan.batch_size, plan.window, use_native)
    return compile_once(fn, *_device_arrays(plan, emb, mesh)), mesh


def run_plan(plan: ProbePlan, emb: Embeddings, compiled=None, devices=None, native_step: bool = True) -> ProbeScores:
    """Train and score every probe of every method in one compiled program; results on the host.

    Args:
      plan: the padded probe plan.
      emb: the methods' embeddings (leading axis: methods).
      compiled: what `compile_plan` returned; compiled on first use when None.
      devices, native_step: as in compile_plan (ignored when `compiled` is given).

    Returns:
      ProbeScores with a leading methods axis.
    """
    executable, mesh = compiled or compile_plan(plan, emb, devices, native_step)
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
