"""The MLP probe (`probe_type: mlp`): a flax MLP per fold, trained as the linear probe is, in one program.

Per probe (one method, task, label fraction, learning rate and fold) the model is the flax
module `MLP`, on the standardised embedding x: (dim,):

  h_0 = x;  h_l = dropout(act(h_{l-1} W_l + c_l)),  l = 1..L   (hidden_dims; act gelu (exact, erf)
  z = h_L w + c                                                 or relu)
  init     torch nn.Linear's: every W_l, c_l, w, c uniform(+-1 / sqrt(fan_in)), the first layer's
           fan_in the method's own dim; drawn for all folds of a task at once from key(seed,
           crc32(task)) (`task_keys`, `initial_params`), so a fold's start depends on neither the
           other tasks, nor the learning rate, label fraction or the sweep's width (rows of W_1
           beyond the method's dim are 0: their inputs are 0)
  loss     the linear probe's: mean over the minibatch's rows of BCE-with-logits(z, y)
           (classification) or (z - y)^2 (regression)
  AdamW    engine's (torch's bias correction), decoupled decay `weight_decay` on every parameter
  score    after every epoch on the fold's held-out rows (engine._heldout_scores: torchmetrics' R^2
           or F1 under `metric_rule`); the fold's score follows the linear probe's rules
           (linear.task_folds: its best epoch, or with `selection: nested` the held-out score at the
           epoch that scores best on its inner validation split)
  dropout  inverted dropout after every hidden activation while training; a fold's masks for a
           minibatch are one draw keyed by (seed, task, epoch, minibatch, fold): deterministic,
           and the same for a fold's learning rates and label fractions (`dropout_multipliers`)

Minibatches are the linear probe's (neuco_jax.plan.make_plan): each probe visits its training
rows in its epoch's order (`shuffle: per_fold`, the reference's, or `shared`), minibatch s being
positions [s * batch_size, (s + 1) * batch_size) of that order, the last one smaller.

Axes: methods x entries x chunks x probes, an entry being one (task, label fraction) and its
probes learning rates x folds. Methods, entries and chunks of an entry's probes go through
`lax.map`s; a chunk's probes are vmapped (each minibatch step is batched matrix products
(probes, batch, dim) x (probes, dim, hidden) with per-probe weights, and one vmapped AdamW update)
and train through all their epochs before the next chunk starts: on a CPU a chunk is as many probes
as keep their weights, AdamW moments and gradients in cache (`probe_chunk`; stepping every probe
at once streams all of that from memory each step, as much traffic as the products), elsewhere
all of an entry's probes. Epochs are a `lax.scan` and an epoch's steps a loop of the entry's own
length. A nested twin (ProbePlan) trains the same weights as its fold's
probe, so it is not trained again: each probe scores its held-out and its validation rows.
Padding: orders and held-out rows are padded to the largest entry; an epoch's loop runs only its
own minibatches and held-out padding is masked, so padding never touches a probe. The program is
jitted once per MLP config, batch size, fold count and shapes (`run_plan`); learning rates, the
seed and the F1 rule are runtime values.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
import zlib
from functools import partial
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from neuco_jax.config import Config, MLPParams
from neuco_jax.data import Prepared
from neuco_jax.engine import HIGHEST, ProbeScores, _heldout_scores, _per_probe, _scale_by_adam_exact_bias
from neuco_jax.plan import Embeddings, ProbePlan, make_plan
from neuco_jax.probes.folds import GroupPass, ResultsOf, Variant
from neuco_jax.probes.linear import task_folds
from neuco_jax.probes.stored import MLPProbe
from neuco_jax.runtime import compile_once, select_devices

ACTIVATIONS = {"gelu": partial(nn.gelu, approximate=False), "relu": nn.relu}  # exact GELU: torch's nn.GELU()

# What a chunk of probes' training state should fit in on a CPU (probe_chunk). Measured on one demo task
# (docs/benchmarks.md; 2 cores, 32 MiB L3, probes of 4.2 MB): 2 probes at a time train at 116 GFLOP/s,
# 3 or 4 at 93, 8 at 80, all 40 at 78, one at 51 (each product then too small for both cores).
CACHE_BYTES = 10 << 20

# Counts traces of the compiled program (one per compilation); tests read it.
TRACE_COUNT = 0


class MLP(nn.Module):
    """The probe: Dense layers of `hidden_dims`, each followed by `activation`, then one output logit."""

    hidden_dims: tuple[int, ...]
    activation: str = "gelu"

    @nn.compact
    def __call__(self, x, keep=()):
        """x: (..., dim) -> logits (...,). keep: per hidden layer its dropout multipliers (..., width)
        (0, or 1 / (1 - rate) for a kept unit: inverted dropout), or () for no dropout."""
        for i, width in enumerate(self.hidden_dims):
            x = ACTIVATIONS[self.activation](nn.Dense(width, precision=HIGHEST, name=f"layer_{i}")(x))
            x = x * keep[i] if keep else x
        return nn.Dense(1, precision=HIGHEST, name=f"layer_{len(self.hidden_dims)}")(x)[..., 0]


def task_crc(name: str) -> int:
    """crc32 of a task name, as neuco_jax.plan seeds the task's folds and orders."""
    return zlib.crc32(name.encode())


def task_keys(seed, crc):
    """A task's (initial parameters key, dropout key): key(seed) folded with crc32(task name), split.

    seed, crc: uint32 scalars (traced or host); the keys do not depend on the other tasks."""
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), crc))
    return keys[0], keys[1]


def initial_params(key, k_folds: int, own_dim, width: int, hidden_dims: tuple[int, ...]) -> dict:
    """torch nn.Linear's initialisation of every fold's MLP, in flax's variables layout.

    Every kernel and bias is uniform(+-1 / sqrt(fan_in)), the first layer's fan_in being own_dim
    (the method's dimension, may be traced); rows of the first kernel at and beyond own_dim are 0
    (their inputs are padding). Leaves have a leading (k_folds,) axis. Two draws from `key` (a
    task's, task_keys): the first kernel's dimension-major, (width, k_folds, hidden), the rest
    (k_folds, n_rest); JAX's partitionable threefry draws element i of a shape from counter i, so a
    fold's parameters do not depend on width (they do on k_folds, as neuco_jax.plan's draws of the
    linear probe's weights do).
    """
    k_first, k_rest = jax.random.split(key)
    fans, outs = (width, *hidden_dims), (*hidden_dims, 1)
    bounds = [1.0 / jnp.sqrt(jnp.asarray(own_dim, jnp.float32))] + [1.0 / np.sqrt(f) for f in hidden_dims]
    first = _uniform(k_first, (width, k_folds, outs[0]), -1.0).transpose(1, 0, 2)
    shapes = [(outs[0],)] + [s for f, o in zip(fans[1:], outs[1:]) for s in ((f, o), (o,))]
    rest = _uniform(k_rest, (k_folds, sum(math.prod(s) for s in shapes)), -1.0)
    leaves = [first * (jnp.arange(width)[:, None] < own_dim)]
    for s in shapes:
        leaves.append(rest[:, :math.prod(s)].reshape(k_folds, *s))
        rest = rest[:, math.prod(s):]
    return {"params": {f"layer_{i}": {"kernel": leaves[2 * i] * bounds[i], "bias": leaves[2 * i + 1] * bounds[i]}
                       for i in range(len(outs))}}


def _uniform(key, shape: tuple[int, ...], low: float):
    """uniform(low, 1) float32 draws of `shape`, drawn flat: the same values as a shaped draw, but XLA:CPU
    compiles partitionable threefry of a multi-axis shape several times slower (5 s against 1 s)."""
    return jax.random.uniform(key, (math.prod(shape),), jnp.float32, low, 1.0).reshape(shape)


def dropout_multipliers(dropout_key, epoch, step, folds, batch: int, hidden_dims: tuple[int, ...],
                        rate: float) -> tuple:
    """Folds' inverted-dropout multipliers for minibatch `step` of `epoch`, per hidden layer
    (folds, batch, width): a unit is kept (1 / (1 - rate)) where its uniform draw is >= rate, else 0.

    dropout_key: the task's (task_keys); folds: (F,) int fold indices, or a count k for folds
    0..k-1. A fold's draw is keyed by (task, epoch, step, fold), so it is the same whichever
    probes train beside it.
    """
    folds = jnp.arange(folds) if isinstance(folds, int) else folds
    key = jax.random.fold_in(jax.random.fold_in(dropout_key, epoch), step)
    keep = jax.vmap(lambda f: _uniform(jax.random.fold_in(key, f), (batch, sum(hidden_dims)), 0.0))(folds)
    keep = (keep >= rate).astype(jnp.float32) / (1.0 - rate)
    return tuple(jnp.split(keep, np.cumsum(hidden_dims)[:-1], axis=-1))


class TrainArrays(NamedTuple):
    """What the compiled program reads from a ProbePlan, per entry (one task x label fraction).

    Probes: the plan's learning rates x folds without nested twins (a twin's weights are its fold's).

    offset, n_train: (entries,) int32           the task's first sample; training rows of each probe
    crc: (entries,) uint32                      crc32 of the task's name (task_keys)
    is_cls: (entries,) bool
    orders: (entries, epochs, probes, m_slots)  each probe's training rows (positions in its task) in
            int32                               their visiting order; beyond n_train other positions
                                                (never read: their minibatch weight is 0)
    test: (entries, probes, test_slots) int32   held-out positions, padded with 0 (masked)
    n_test: (entries,) int32                    held-out rows of each probe
    val, n_val: as test, n_test for the inner validation split (None without `selection: nested`)
    lr: (entries, probes) float32
    """

    offset: np.ndarray
    n_train: np.ndarray
    crc: np.ndarray
    is_cls: np.ndarray
    orders: np.ndarray
    test: np.ndarray
    n_test: np.ndarray
    val: np.ndarray | None
    n_val: np.ndarray | None
    lr: np.ndarray


def train_arrays(plan: ProbePlan) -> TrainArrays:
    """The plan's probes as TrainArrays: every probe's visiting order (ProbePlan.visits for all at once)."""
    entries, group = len(plan.entries), plan.group
    nested = plan.selection == "nested"
    probes = group // 2 if nested else group
    shuffle = np.broadcast_to(plan.shuffle[:, :, :probes], plan.shuffle.shape[:2] + (probes, plan.shuffle.shape[3]))
    member = plan.member[:, :, :probes].transpose(0, 2, 1)[:, None]  # (entries, 1, probes, slots)
    visited = np.take_along_axis(member, shuffle, axis=-1)  # (entries, epochs, probes, slots)
    m = int(plan.n_train.max())
    first = np.argsort(~visited, axis=-1, kind="stable")[..., :m]  # a probe's visited positions, in order
    orders = np.take_along_axis(shuffle, first, axis=-1)
    orders = np.pad(orders, [(0, 0)] * 3 + [(0, -(-m // plan.batch_size) * plan.batch_size - m)])
    per_entry = lambda a: a.reshape(entries, group, *a.shape[1:])  # noqa: E731
    test = plan.test - np.repeat(plan.offset, group)[:, None]
    test = per_entry(np.where(np.arange(test.shape[1]) < plan.n_test[:, None], test, 0).astype(np.int32))
    n_test = per_entry(plan.n_test)
    return TrainArrays(
        offset=plan.offset, n_train=per_entry(plan.n_train)[:, 0],
        crc=np.asarray([task_crc(name) for name, _ in plan.entries], np.uint32),
        is_cls=per_entry(plan.is_cls)[:, 0], orders=orders.astype(np.int32), test=test[:, :probes],
        n_test=n_test[:, 0], val=test[:, probes:] if nested else None, n_val=n_test[:, probes] if nested else None,
        lr=per_entry(plan.lr)[:, :probes])


class _Chunk(NamedTuple):
    """One chunk of an entry's probes: fold, lr (chunk,); orders (epochs, chunk, m_slots); test, val
    (chunk, slots) as in TrainArrays."""

    fold: jax.Array
    orders: jax.Array
    test: jax.Array
    val: jax.Array | None
    lr: jax.Array


def _train_and_score(x, sample_row, dims, y, arrays: TrainArrays, fold, seed, reference_rule, *,
                     params: MLPParams, batch_size: int, k_folds: int, refit: bool, chunk: int):
    """Every probe of every method and entry (see the module docstring).

    x: (M, n_rows, width), sample_row: (M, n_samples), dims: (M,) as in Embeddings; y: (n_samples,);
    arrays: TrainArrays (device arrays); fold: (probes,) int32, each probe's fold (< k_folds); seed:
    uint32 scalar; reference_rule: bool scalar (engine.predicted_positive), a runtime value so that both F1
    rules share one program.

    Returns (each with leading axes (M, entries)):
      refit: the parameters after the last epoch, leaves (M, entries, probes, ...).
      else: per-epoch held-out score, training loss and held-out loss, each (..., epochs, probes)
        (nested: then the validation score and loss), and the held-out logits at each probe's best
        held-out epoch (..., probes, test_slots).
    """
    global TRACE_COUNT
    TRACE_COUNT += 1
    model = MLP(params.hidden_dims, params.activation)
    tx = optax.chain(_scale_by_adam_exact_bias(), optax.add_decayed_weights(params.weight_decay))
    width = x.shape[-1]
    nested = arrays.val is not None

    def minibatch_loss(p, xb, yb, weights, keep, cls):
        """One probe's mean loss over its minibatch: xb (batch, width), yb and weights (batch,) (1/n or 0),
        keep its dropout multipliers (MLP)."""
        z = model.apply(p, xb, keep)
        per_row = jnp.where(cls, optax.sigmoid_binary_cross_entropy(z, yb), (z - yb) ** 2)
        return jnp.sum(weights * per_row)

    grads_of = jax.vmap(jax.value_and_grad(minibatch_loss), in_axes=(0, 0, 0, None, 0, None))
    logits_of = jax.vmap(lambda p, xs: model.apply(p, xs))  # (probes, ...) parameters and rows

    def method(args):
        """Every entry of one method: x (n_rows, width), rows (n_samples,), own_dim its width."""
        x, rows, own_dim = args

        def entry(a: TrainArrays):
            take = lambda pos: x[rows[a.offset + pos]]  # noqa: E731 (positions in the task -> embedding rows)
            init_key, dropout_key = task_keys(seed, a.crc)
            starts = initial_params(init_key, k_folds, own_dim, width, params.hidden_dims)  # every fold's
            n_steps = (a.n_train + batch_size - 1) // batch_size

            def train(c: _Chunk):
                """Every epoch of one chunk of the entry's probes."""
                # Each probe starts from its fold's parameters (learning rates share their fold's).
                start = jax.tree.map(lambda v: v[c.fold], starts)

                def step(s, carry, order, epoch):
                    p, state, loss_sum = carry
                    pos = jax.lax.dynamic_slice_in_dim(order, s * batch_size, batch_size, axis=1)  # (probes, batch)
                    first = s * batch_size
                    n = jnp.minimum(batch_size, a.n_train - first).astype(jnp.float32)
                    weights = (first + jnp.arange(batch_size) < a.n_train) / n
                    keep = () if params.dropout == 0 else dropout_multipliers(
                        dropout_key, epoch, s, c.fold, batch_size, params.hidden_dims, params.dropout)
                    loss, g = grads_of(p, take(pos), y[a.offset + pos], weights, keep, a.is_cls)
                    updates, state = jax.vmap(tx.update)(g, state, p)
                    p = jax.tree.map(lambda v, u: v - _per_probe(c.lr, u) * u, p, updates)
                    return p, state, loss_sum + loss

                def train_epoch(p, state, order, e):
                    """One epoch of the chunk: order (probes, m_slots); dropout keys from (task, e, step, fold)."""
                    return jax.lax.fori_loop(0, n_steps, partial(step, order=order, epoch=e),
                                             (p, state, jnp.zeros(order.shape[0])))

                carry = (start, jax.vmap(tx.init)(start))
                epochs = (c.orders, jnp.arange(c.orders.shape[0]))  # orders: (epochs, probes, m_slots)
                if refit:
                    (p, _), _ = jax.lax.scan(lambda c, xs: (train_epoch(*c, *xs)[:2], ()), carry, epochs)
                    return p

                def scored(positions, n):
                    """Every probe's logits on its rows `positions` (probes, slots), score and mean loss."""
                    x_rows, y_rows = take(positions), y[a.offset + positions]  # gathered once per chunk
                    mask = jnp.broadcast_to(jnp.arange(positions.shape[1]) < n, positions.shape).astype(x.dtype)
                    is_cls = jnp.full(positions.shape[0], a.is_cls)

                    def score(p):
                        z = logits_of(p, x_rows)  # (probes, slots)
                        return (z, *_heldout_scores(z, y_rows, mask, is_cls, reference_rule))

                    return score

                heldout = scored(c.test, a.n_test)
                validation = scored(c.val, a.n_val) if nested else None

                def epoch(carry, xs):
                    p, state, best_score, best_z = carry
                    p, state, loss_sum = train_epoch(p, state, *xs)
                    z, score, test_loss = heldout(p)
                    out = (score, loss_sum / n_steps, test_loss)
                    if nested:
                        out += validation(p)[1:]
                    # Held-out logits of each probe's best held-out epoch so far (the first of ties).
                    better = score > best_score
                    return (p, state, jnp.where(better, score, best_score), jnp.where(better[:, None], z, best_z)), out

                n_probes, slots = c.test.shape
                carry += (jnp.full(n_probes, -jnp.inf), jnp.zeros((n_probes, slots), x.dtype))
                (*_, best_z), per_epoch = jax.lax.scan(epoch, carry, epochs)
                return (*per_epoch, best_z)

            # Chunks of probes train one after the other, each through all its epochs: a chunk's parameters
            # and AdamW moments stay in cache across its steps (every probe at once streams them all from
            # memory each step, as much traffic as the step's products on a CPU).
            n_probes = a.lr.shape[0]
            n_chunks = -(-n_probes // chunk)
            pad = n_chunks * chunk - n_probes  # padded with copies of the first probe, dropped after

            def chunked(v, axis=0):
                v = jnp.concatenate([v, jnp.repeat(jax.lax.slice_in_dim(v, 0, 1, axis=axis), pad, axis)], axis)
                v = v.reshape(v.shape[:axis] + (n_chunks, chunk) + v.shape[axis + 1:])
                return jnp.moveaxis(v, axis, 0)

            def unchunked(v, axis=0):
                v = jnp.moveaxis(v, 0, axis)
                return jax.lax.slice_in_dim(v.reshape(v.shape[:axis] + (-1,) + v.shape[axis + 2:]), 0, n_probes,
                                            axis=axis)

            chunks = _Chunk(fold=chunked(fold), orders=chunked(a.orders, 1), test=chunked(a.test),
                            val=chunked(a.val) if nested else None, lr=chunked(a.lr))
            out = jax.lax.map(train, chunks)
            if refit:
                return jax.tree.map(unchunked, out)
            *per_epoch, best_z = out  # per epoch: (chunks, epochs, chunk); best_z: (chunks, chunk, slots)
            return (*(unchunked(v, 1) for v in per_epoch), unchunked(best_z))

        return jax.lax.map(entry, arrays)

    return jax.lax.map(method, (x, sample_row, dims))


@functools.cache
def _program(params: MLPParams, batch_size: int, k_folds: int, refit: bool, chunk: int):
    return jax.jit(partial(_train_and_score, params=params, batch_size=batch_size, k_folds=k_folds, refit=refit,
                           chunk=chunk))


def probe_chunk(params: MLPParams, width: int, n_probes: int, platform: str) -> int:
    """Probes of an entry that train together: on a CPU as many as keep their parameters, AdamW moments and
    gradients (4 float32 copies) within CACHE_BYTES, at least two; elsewhere all of them (an accelerator
    wants the batch)."""
    if platform != "cpu":
        return n_probes
    fans = (width, *params.hidden_dims)
    size = sum(i * o + o for i, o in zip(fans, (*params.hidden_dims, 1)))
    return int(min(max(2, CACHE_BYTES // (16 * size)), n_probes))


def run_plan(plan: ProbePlan, emb: Embeddings, config: Config, timings: dict | None = None, refit: bool = False):
    """Train and score every probe of a plan for every method of `emb`, on the config's first device.

    Returns (host arrays):
      refit: the final parameters, leaves (methods, entries, probes, ...).
      else: ProbeScores in the plan's probe order (methods, entries x group, ...), nested twins holding
        the validation split's scores and losses (their training loss is their fold's; their best
        logits are not kept, 0). w and b are None: an MLP has no linear weights.
    """
    timings = timings if timings is not None else {"compile": 0.0, "train": 0.0}
    t0 = time.perf_counter()
    device = select_devices(config.device)[0]
    arrays = train_arrays(plan)
    fold = (np.arange(arrays.lr.shape[1]) % plan.k_folds).astype(np.int32)
    args = jax.device_put((emb.x, emb.sample_row, emb.dims, plan.y, arrays, fold, np.uint32(config.seed),
                           np.asarray(plan.metric_rule == "reference")), device)
    chunk = probe_chunk(config.mlp, emb.x.shape[-1], arrays.lr.shape[1], device.platform)
    executable = compile_once(_program(config.mlp, plan.batch_size, plan.k_folds, refit, chunk), *args)
    timings["compile"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.device_get(executable(*args))
    timings["train"] += time.perf_counter() - t0
    if refit:
        return out
    # (M, entries, epochs, probes) -> (M, entries, group, epochs), twins after their folds' probes
    test_score, train_loss, test_loss, *val, best_z = out
    probes = [np.moveaxis(a, 2, 3) for a in (test_score, train_loss, test_loss, *val)]
    if val:
        probes = [np.concatenate([a, b], axis=2) for a, b in
                  zip(probes[:3], (probes[3], probes[1], probes[4]))]
        best_z = np.concatenate([best_z, np.zeros_like(best_z)], axis=2)
    scores, train_loss, test_loss = (a.reshape(a.shape[0], -1, a.shape[3]) for a in probes[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a probe NaN at every epoch stays NaN
        best = np.nanmax(scores, axis=-1)
    return ProbeScores(best=best, epoch_scores=scores, train_loss=train_loss, test_loss=test_loss,
                       best_logits=best_z.reshape(best_z.shape[0], -1, best_z.shape[3]), w=None, b=None)


def hyperparameters(config: Config) -> dict:
    """The result JSON's hyperparameters of an MLP run (a variant's own epochs and learning rate)."""
    return {"epochs": config.epochs, "learning_rate": config.learning_rate, "batch_size": config.batch_size,
            **config.mlp.to_dict()}


def run_pass(p: GroupPass) -> ResultsOf:
    """The probe interface (folds.py): every method of the group in one compiled pass (and one refit pass).

    Methods of one coverage share a plan (the linear probe's folds and orders); the group is padded
    to the chunk size by repeating a method, so every pass of a sweep has the same shapes.
    """
    config = p.config
    t0 = time.perf_counter()
    key = ("mlp", p.coverage)
    common = dict(epochs=config.epochs, batch_size=config.batch_size, learning_rates=p.learning_rates,
                  seed=config.seed, dim=p.width, shuffle=config.shuffle, metric_rule=config.metric_rule)
    if key not in p.plans:
        p.plans[key] = make_plan(p.group[0][1], k_folds=config.k_folds, label_fractions=p.fractions,
                                 selection=config.selection, **common)
    plan = p.plans[key]
    emb = p.embeddings()
    p.timings["load"] += time.perf_counter() - t0
    probes = run_plan(plan, emb, config, p.timings)
    p.compiled_one()
    refit_plan = refit = None
    if config.store_probes:
        refit_plan = make_plan(p.group[0][1], k_folds=1, refit=True, **common)
        refit = run_plan(refit_plan, emb, config, p.timings, refit=True)

    def results_of(slot: int, variant: Variant, bench: Prepared):
        hyper = hyperparameters(variant.config)
        folds = task_folds(plan, probes, slot, variant.lr_index, variant.fraction, variant.epochs, bench, hyper)
        stored = None
        if refit is not None:
            stored = refitted(refit, slot, variant.lr_index, bench, {**hyper, "epochs": config.epochs,
                                                                        "seed": config.seed})
        return folds, stored

    return results_of


def refitted(refit: dict, slot: int, lr_index: int, bench: Prepared, hyper: dict) -> list[MLPProbe]:
    """`store_probes`: one method's refitted MLPs (a refit plan: one entry per task, a probe per
    learning rate), the first kernel cut to the method's own dim."""
    layers = refit["params"]
    names = [f"layer_{i}" for i in range(len(layers))]
    dim = bench.x.shape[1]
    probes = []
    for t, task in enumerate(bench.tasks):
        kernels = [np.asarray(layers[n]["kernel"][slot, t, lr_index]) for n in names]
        kernels[0] = kernels[0][:dim]
        probes.append(MLPProbe(
            task=task.name, task_type=task.task_type, kernels=tuple(kernels),
            biases=tuple(np.asarray(layers[n]["bias"][slot, t, lr_index]) for n in names),
            activation=hyper["activation"], mean=bench.mean, std=bench.std,
            hyperparameters={**hyper, "refit_rows": len(task.ids)}))
    return probes
