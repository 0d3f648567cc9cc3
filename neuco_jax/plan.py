"""Folds, batch orders and initial weights: the padded bundle the compiled engine trains on.

Every probe (one task x one fold) is a row of the plan. Tasks differ in size,
so each probe's arrays are padded to the largest task and carry their true
length (`n_train`, `n_test`); the engine masks the padding.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np

from neuco_jax.config import METRIC_RULES, SELECTIONS, SHUFFLES
from neuco_jax.data import Prepared
from neuco_jax.errors import InputError

TEST_SIZE = 0.1


def shuffle_split(n: int, k: int, seed: int = 42, test_size: float = TEST_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The folds of scikit-learn's `ShuffleSplit(k, test_size=0.1, random_state=seed)`.

    One fresh `RandomState(seed)`; for each split a permutation of range(n)
    whose first ceil(test_size * n) entries are held out.

    Returns:
      train: (k, n - n_test) int64 and test: (k, n_test) int64 row positions.
    """
    n_test = math.ceil(test_size * n)
    if n - n_test < 1:
        raise InputError(f"{n} rows cannot be split into train and {test_size:.0%} held out; a task needs at least 2 rows")
    rng = np.random.RandomState(seed)
    perms = np.stack([rng.permutation(n) for _ in range(k)]) if k else np.zeros((0, n), np.int64)
    return perms[:, n_test:], perms[:, :n_test]


@dataclasses.dataclass(frozen=True)
class ProbePlan:
    """Host arrays for every probe, shared by all methods of the same coverage.

    Probes are grouped into entries: one entry per (task, label fraction),
    holding `group = learning rates x folds` probes (probe index inside an
    entry: lr_index * k_folds + fold). With `selection` "nested" every
    learning rate appears twice (`learning_rates` is the config's, repeated):
    the first block's probes hold out the fold's held-out rows, the second's
    (twins: the same training rows, order, initial weights and learning rate,
    so the same weights at every epoch) an inner validation split of the
    fold's training rows, on which the epoch is chosen. All probes of an entry share its
    training-set size and step together. Samples are the rows of all
    tasks laid end to end (a task's samples are contiguous, in label-file
    order); `Embeddings.sample_row` maps each sample to a method's x row.
    Inside an entry, a sample is named by its position in its task (0..n_rows-1);
    positions up to `slots` beyond that are padding.

    Each epoch, a probe visits its training rows in minibatches of
    `batch_size`, in the order they take in the epoch's shuffle of the task's
    positions. With per-fold shuffles (the reference's) every probe has its
    own, holding its training rows first, so minibatch s is positions
    [s * batch_size, (s + 1) * batch_size). With a shared shuffle the probes of
    an entry share one: each fold's order is still a uniformly random
    permutation of its training rows, and the folds' minibatches at step s lie
    close together in it, so the engine reads that stretch once for every
    probe (one matrix product each way) instead of gathering each probe's
    rows. But the folds then see nearly the same sequence of minibatches, and
    their scores vary less than with independent orders (docs/benchmarks.md).
    Minibatch spans are cut into windows of `window` shuffled positions; one
    window is a unit of the engine's loop. With per-fold orders the window is
    the batch size and every window is one whole minibatch (`last` is all true).

    y: (n_samples,) float32                    label of each sample
    offset, n_rows: (entries,) int32           first sample and number of samples of the entry's task
    shuffle: (entries, epochs, orders, slots)  each epoch's order(s) of the task's positions; shared
            int32                              (orders = 1): all positions, padding last; per-fold
                                               (orders = group): the probe's training rows, then
                                               the last position (always padding) repeated
    member: (entries, slots, group) bool       the position is in the probe's training set
    n_units: (entries, epochs) int32           windows in the epoch
    start, step: (entries, epochs, units) int32  where each window starts in the shuffle and the
                                               minibatch it belongs to; a minibatch of every probe
                                               lies in its consecutive windows
    last: (entries, epochs, units) bool        the window is its minibatch's last (the AdamW step)
    n_train, n_test: (probes,) int32           training rows per epoch, held-out rows
    test: (probes, test_slots) int32           held-out samples, padded
    is_cls: (probes,) bool; lr: (probes,) float32
    w0: (probes, dim) float32; b0: (probes,)   uniform(-1, 1) draws; the engine scales
                                               them by 1/sqrt(method's dim), torch nn.Linear's init
    entries: (task name, label fraction) of each entry, in probe order
    metric_rule: how held-out F1 counts a logit as positive (config key `metric_rule`;
                 the engine passes it as a runtime value, see engine.predicted_positive)
    selection: "test_fold" or "nested" (config key `selection`): whether the second half of
               `learning_rates` are twins scoring an inner validation split (above)
    """

    y: np.ndarray
    offset: np.ndarray
    n_rows: np.ndarray
    shuffle: np.ndarray
    member: np.ndarray
    n_units: np.ndarray
    start: np.ndarray
    step: np.ndarray
    last: np.ndarray
    window: int
    n_train: np.ndarray
    test: np.ndarray
    n_test: np.ndarray
    is_cls: np.ndarray
    lr: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    entries: tuple[tuple[str, float], ...]
    learning_rates: tuple[float, ...]
    k_folds: int
    batch_size: int
    metric_rule: str = "reference"
    selection: str = "test_fold"

    @property
    def epochs(self) -> int:
        return self.shuffle.shape[1]

    @property
    def group(self) -> int:
        """Probes per entry: learning rates x folds."""
        return len(self.learning_rates) * self.k_folds

    def visits(self, probe: int, epoch: int) -> np.ndarray:
        """The samples a probe trains on in an epoch, in visiting order (minibatches are consecutive runs)."""
        e, g = divmod(probe, self.group)
        order = self.shuffle[e, epoch, g if self.own_orders else 0]
        return self.offset[e] + order[self.member[e, order, g]]

    @property
    def own_orders(self) -> bool:
        """Every probe has its own order (else the probes of an entry share one per epoch)."""
        return self.shuffle.shape[2] > 1


@dataclasses.dataclass(frozen=True)
class Embeddings:
    """The methods evaluated in one pass, stacked.

    x: (methods, n_rows, dim) float32; sample_row: (methods, n_samples) int32;
    dims: (methods,) int32, each method's own dimension (columns beyond it are 0).
    """

    x: np.ndarray
    sample_row: np.ndarray
    dims: np.ndarray

    def take(self, methods) -> Embeddings:
        """The methods at the given indices (a chunk of a sweep)."""
        return Embeddings(self.x[methods], self.sample_row[methods], self.dims[methods])


def coverage(bench: Prepared) -> tuple:
    """What a plan depends on besides the config: task names and their ids, in order."""
    return tuple((t.name, tuple(t.ids)) for t in bench.tasks)


def stack_embeddings(benches: list[Prepared], width: int | None = None) -> Embeddings:
    """Stack benchmarks of identical coverage into one methods axis.

    Each embedding keeps its own standardisation and dimension (`dims`) and is
    zero-padded on the right to `width` (default: the widest). Device arrays (neuco_jax.benchmark)
    are stacked with jax.numpy, on their device.
    """
    if any(coverage(b) != coverage(benches[0]) for b in benches[1:]):
        raise ValueError("stack_embeddings needs benchmarks with the same tasks and ids")
    dims = [b.x.shape[1] for b in benches]
    width = width or max(dims)
    n_rows = max(b.x.shape[0] for b in benches)
    if any(not isinstance(b.x, np.ndarray) for b in benches):  # device arrays are stacked on their device
        import jax.numpy as jnp

        x = jnp.stack([jnp.pad(b.x, ((0, n_rows - b.x.shape[0]), (0, width - b.x.shape[1]))) for b in benches])
    else:
        x = np.zeros((len(benches), n_rows, width), np.float32)
        for m, b in enumerate(benches):
            x[m, :b.x.shape[0], :b.x.shape[1]] = b.x
    sample_row = np.stack([np.concatenate(b.rows) for b in benches]).astype(np.int32)
    return Embeddings(x=x, sample_row=sample_row, dims=np.asarray(dims, np.int32))


def inner_split(train: np.ndarray, test: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """`selection: nested`: each fold's inner validation split, the last n_test of its training positions.

    train, test: (folds, n_train), (folds, n_test) as shuffle_split gives them (training positions in
    random order). Returns (folds, n_train - n_test) training and (folds, n_test) validation positions:
    as many validation rows as held-out ones, so that a fold's probes all score the same count.
    """
    n_val = test.shape[1]
    if train.shape[1] - n_val < 1:
        raise InputError(f"task '{task}': {train.shape[1] + n_val} rows leave no training rows beside a held-out "
                         f"and an inner validation split; selection nested needs at least 3 labelled rows")
    return train[:, :-n_val], train[:, -n_val:]


def make_plan(bench: Prepared, *, k_folds: int, epochs: int, batch_size: int,
              learning_rates=(0.001,), label_fractions=(1.0,), seed: int = 42,
              dim: int | None = None, refit: bool = False, shuffle: str = "per_fold",
              metric_rule: str = "reference", selection: str = "test_fold") -> ProbePlan:
    """Build the padded probe plan for every task, label fraction, learning rate and fold.

    Folds follow ShuffleSplit(random_state=seed) per task, exactly as the
    reference. A label fraction f keeps the first round(f * n_train) rows of
    each fold's training set (the split's order is already random, so this is
    a random subset, nested across fractions and the same for every method).
    Initial weights and each epoch's visiting order come from generators
    seeded by (seed, task name): a task's probes do not depend on which other
    tasks are evaluated, and they are the same for every method and learning
    rate (so scores are paired). Weights are drawn dimension-major, so a probe
    of a d-dimensional embedding starts from the first d draws of a wider one.

    shuffle: "per_fold" (the reference's): every fold draws its own order each
    epoch; "shared": the folds of a task share one shuffle per epoch (each
    fold's order is still uniformly random, but the folds' training noise is
    correlated, which narrows their spread; see ProbePlan).

    metric_rule: "reference" (torchmetrics' BinaryF1Score) or "logit" (positive iff logit > 0).

    selection: "test_fold" (the reference's: a fold's epoch is chosen on its held-out rows) or
    "nested": the last n_test of each fold's (randomly ordered) training rows are its inner
    validation split (as many rows as it holds out), the probe trains on the rest (a label fraction keeps the first
    round(f * rest)), and twin probes score the validation split (see ProbePlan).
    """
    if shuffle not in SHUFFLES:
        raise InputError(f"shuffle '{shuffle}' must be one of {', '.join(SHUFFLES)}")
    if metric_rule not in METRIC_RULES:
        raise InputError(f"metric_rule '{metric_rule}' must be one of {', '.join(METRIC_RULES)}")
    if selection not in SELECTIONS:
        raise InputError(f"selection '{selection}' must be one of {', '.join(SELECTIONS)}")
    dim = dim or bench.x.shape[1]
    sizes = [len(r) for r in bench.rows]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    if refit:
        k_folds, label_fractions = 1, (1.0,)
    folds = []
    for task, n in zip(bench.tasks, sizes):
        if refit:
            everything = np.random.RandomState(seed).permutation(n)[None]
            folds.append((everything, everything, everything))
            continue
        try:
            train_pos, test_pos = shuffle_split(n, k_folds, seed)
        except InputError as e:
            raise InputError(f"task '{task.name}': {e}") from None
        val_pos = test_pos
        if selection == "nested":
            train_pos, val_pos = inner_split(train_pos, test_pos, task.name)
        folds.append((train_pos, test_pos, val_pos))
    for f in label_fractions:
        if not 0 < f <= 1:
            raise InputError(f"label fraction {f} must be in (0, 1]")
    entries = [(t, f) for t in range(len(sizes)) for f in label_fractions]
    n_train = [max(1, round(f * folds[t][0].shape[1])) for t, f in entries]
    # Nested twins: the learning-rate blocks repeated, the second copy holding out the validation split.
    twin = [False] * len(learning_rates) + [True] * (len(learning_rates) if selection == "nested" and not refit else 0)
    learning_rates = tuple(learning_rates) * (len(twin) // len(learning_rates))
    n_lr, group = len(learning_rates), len(learning_rates) * k_folds
    heldout = [folds[t][2 if twin[l] else 1] for t, _ in entries for l in range(n_lr)]  # per block: (k, t)
    test_slots = batch_size * max(math.ceil(h.shape[1] / batch_size) for h in heldout)

    shuffles, members, spans = [], [], []
    n_probes = len(entries) * group
    test = np.zeros((n_probes, test_slots), np.int32)
    w0 = np.zeros((n_probes, dim), np.float32)
    b0 = np.zeros(n_probes, np.float32)
    for e, ((t, f), m) in enumerate(zip(entries, n_train)):
        task, n = bench.tasks[t], sizes[t]
        key = zlib.crc32(task.name.encode())
        init = np.random.default_rng([seed, key, 0])
        b_unit = init.uniform(-1, 1, k_folds)
        w_unit = init.uniform(-1, 1, (dim, k_folds)).T
        train_pos = folds[t][0]
        member = np.zeros((n, k_folds), bool)
        member[train_pos[:, :m], np.arange(k_folds)[:, None]] = True  # a label fraction keeps the first m
        # Orders are drawn epoch-major (a plan of fewer epochs is a prefix of this one);
        # full-data entries keep the stream of a plan without label fractions.
        rng = np.random.default_rng([seed, key, 1] + ([] if f == 1 else [round(f * 1e6)]))
        if shuffle == "shared":  # one shuffle of the task's positions per epoch
            order = rng.permuted(np.broadcast_to(np.arange(n, dtype=np.int32), (epochs, 1, n)), axis=-1)
            spans.append(np.stack([_minibatch_spans(member[o[0]], batch_size) for o in order], axis=1))
        else:  # each fold's training rows in a fresh order (then padding, below)
            perm = rng.permuted(np.broadcast_to(np.arange(m, dtype=np.int32), (epochs, k_folds, m)), axis=-1)
            order = np.take_along_axis(train_pos[None, :, :m].astype(np.int32), perm, axis=-1)
            starts = np.arange(0, m, batch_size)
            spans.append(np.broadcast_to(np.stack([starts, np.minimum(starts + batch_size, m)])[:, None],
                                         (2, epochs, len(starts))))
        shuffles.append(order)
        members.append(member)
        for l in range(n_lr):
            probes = slice(e * group + l * k_folds, e * group + (l + 1) * k_folds)
            rows = heldout[e * n_lr + l]
            test[probes, :rows.shape[1]] = rows + offsets[t]
            w0[probes], b0[probes] = w_unit, b_unit

    # Per-fold orders hold each minibatch in one window of batch_size positions.
    window = (_window(np.concatenate([(hi - lo).ravel() for lo, hi in spans]), batch_size)  # each (epochs, steps)
              if shuffle == "shared" else batch_size)
    # Cut each minibatch's span into windows: unit u of an epoch starts at start[u] in minibatch step[u].
    units = [[_windows(lo, hi, window) for lo, hi in zip(*span)] for span in spans]
    n_units = np.asarray([[len(s) for s, _ in entry] for entry in units], np.int32)
    start = np.zeros(n_units.shape + (n_units.max(),), np.int32)
    step, last = np.zeros_like(start), np.zeros(start.shape, bool)
    for e, entry in enumerate(units):
        for ep, (first, minibatch) in enumerate(entry):
            n = len(first)
            start[e, ep, :n], step[e, ep, :n] = first, minibatch
            last[e, ep, :n] = np.append(minibatch[1:] != minibatch[:-1], True)
    # Every window lies inside the padded positions, so the engine's slices are never
    # shifted, and the last position is always padding.
    slots = -(-max(max(sizes) + 1, int(start.max()) + window) // 16) * 16
    orders = np.full((len(entries), epochs, 1 if shuffle == "shared" else group, slots), slots - 1, np.int32)
    member = np.zeros((len(entries), slots, group), bool)
    for e, (order, mem) in enumerate(zip(shuffles, members)):
        if shuffle == "shared":  # a permutation of all positions, padding last
            orders[e, ..., :order.shape[-1]] = order
            orders[e, ..., order.shape[-1]:] = np.arange(order.shape[-1], slots)
        else:  # learning rates share their fold's order
            orders[e].reshape(epochs, n_lr, k_folds, slots)[..., :order.shape[-1]] = order[:, None]
        member[e, :mem.shape[0]] = np.tile(mem, n_lr)

    per_probe = lambda v: np.repeat(np.asarray(v), group)  # noqa: E731 (entries -> probes)
    return ProbePlan(
        y=np.concatenate([t.labels for t in bench.tasks]).astype(np.float32),
        offset=np.asarray([offsets[t] for t, _ in entries], np.int32),
        n_rows=np.asarray([sizes[t] for t, _ in entries], np.int32),
        shuffle=orders, member=member, n_units=n_units, start=start, step=step, last=last, window=window,
        n_train=per_probe(n_train).astype(np.int32), test=test,
        n_test=np.repeat([h.shape[1] for h in heldout], k_folds).astype(np.int32),
        is_cls=per_probe([bench.tasks[t].is_classification for t, _ in entries]),
        lr=np.tile(np.repeat(np.asarray(learning_rates, np.float32), k_folds), len(entries)),
        w0=w0, b0=b0,
        entries=tuple((bench.tasks[t].name, f) for t, f in entries),
        learning_rates=tuple(float(v) for v in learning_rates),
        k_folds=k_folds, batch_size=batch_size, metric_rule=metric_rule,
        selection="test_fold" if refit else selection,
    )


def _minibatch_spans(visited: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each minibatch lies in one epoch's shuffle, over all folds.

    visited: (n, folds) bool, whether shuffled position i is a training row of
    the fold (every fold has the same count m). Returns (lo, hi), each
    (ceil(m / batch_size),): minibatch s of every fold lies in positions [lo[s], hi[s]).
    """
    folds = visited.shape[1]
    positions = np.nonzero(visited.T)[1].reshape(folds, -1)  # (folds, m), ascending
    m = positions.shape[1]
    first = np.arange(0, m, batch_size)
    last = np.minimum(first + batch_size, m) - 1
    return positions[:, first].min(0), positions[:, last].max(0) + 1


# A window costs the engine about as much as this many more rows (measured on a 2-core CPU).
WINDOW_OVERHEAD_ROWS = 64


def _windows(lo: np.ndarray, hi: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows covering spans [lo[s], hi[s]): their starts and the span (minibatch) each belongs to."""
    count = -(-(hi - lo) // window)
    step = np.repeat(np.arange(len(lo)), count)
    first = np.repeat(lo, count) + window * (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    return first.astype(np.int32), step.astype(np.int32)


def _window(widths: np.ndarray, batch_size: int) -> int:
    """The window length (a multiple of 8) that covers all minibatch spans at least cost.

    A span of w positions takes ceil(w / window) windows; each costs window + overhead rows.
    """
    candidates = np.arange(8, max(int(widths.max()), batch_size) + 8, 8)
    cost = [np.sum(-(-widths // c)) * (c + WINDOW_OVERHEAD_ROWS) for c in candidates]
    return int(candidates[int(np.argmin(cost))])
