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

from neuco_jax.data import Benchmark
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
    """Host arrays for P = tasks x folds probes, padded to common shapes.

    Samples are the rows of all tasks laid end to end (a task's samples are
    contiguous, in label-file order); a sample points at its embedding row.

    x: (n_rows, dim) float32       embeddings
    y: (n_samples,) float32        label of each sample
    sample_row: (n_samples,) int32 x row of each sample
    order: (probes, epochs, steps * batch) int32  sample visited at each slot
    n_train, n_test: (probes,) int32   true lengths of order[p, e] and test[p]
    test: (probes, chunks * batch) int32  held-out samples, padded
    is_cls: (probes,) bool; lr: (probes,) float32
    w0: (probes, dim) float32; b0: (probes,) float32   torch nn.Linear-style init
    """

    x: np.ndarray
    y: np.ndarray
    sample_row: np.ndarray
    order: np.ndarray
    n_train: np.ndarray
    test: np.ndarray
    n_test: np.ndarray
    is_cls: np.ndarray
    lr: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    n_tasks: int
    k_folds: int
    batch_size: int

    @property
    def epochs(self) -> int:
        return self.order.shape[1]


def make_plan(bench: Benchmark, *, k_folds: int, epochs: int, batch_size: int,
              learning_rate: float, seed: int = 42) -> ProbePlan:
    """Build the padded probe plan for every task and fold of a benchmark.

    Folds follow ShuffleSplit(random_state=seed) per task, exactly as the
    reference. Initial weights and each epoch's visiting order come from a
    generator seeded by (seed, task name), so a task's probes do not depend on
    which other tasks are evaluated, and they are the same for every method.
    """
    dim = bench.x.shape[1]
    bound = 1.0 / math.sqrt(dim)
    sizes = [len(r) for r in bench.rows]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_test = [math.ceil(TEST_SIZE * n) for n in sizes]
    slots = batch_size * max(math.ceil((n - t) / batch_size) for n, t in zip(sizes, n_test))
    test_slots = batch_size * max(math.ceil(t / batch_size) for t in n_test)

    n_probes = len(sizes) * k_folds
    order = np.zeros((n_probes, epochs, slots), np.int32)  # padding slots are masked by n_train
    test = np.zeros((n_probes, test_slots), np.int32)
    w0, b0 = [], []
    for t, (task, n, offset) in enumerate(zip(bench.tasks, sizes, offsets)):
        try:
            train_pos, test_pos = shuffle_split(n, k_folds, seed)
        except InputError as e:
            raise InputError(f"task '{task.name}': {e}") from None
        rng = np.random.default_rng([seed, zlib.crc32(task.name.encode())])
        w0.append(rng.uniform(-bound, bound, (k_folds, dim)))
        b0.append(rng.uniform(-bound, bound, k_folds))
        # A fresh shuffle of the fold's training rows for every epoch.
        n_train = train_pos.shape[1]
        perm = rng.permuted(np.broadcast_to(np.arange(n_train, dtype=np.int32), (k_folds, epochs, n_train)), axis=-1)
        probes = slice(t * k_folds, (t + 1) * k_folds)
        order[probes, :, :n_train] = np.take_along_axis(train_pos[:, None, :], perm, axis=-1) + offset
        test[probes, :test_pos.shape[1]] = test_pos + offset

    tasks, k = len(bench.tasks), k_folds
    per_probe = lambda per_task: np.repeat(np.asarray(per_task), k)  # noqa: E731 (tasks -> probes)
    return ProbePlan(
        x=np.ascontiguousarray(bench.x, np.float32),
        y=np.concatenate([t.labels for t in bench.tasks]).astype(np.float32),
        sample_row=np.concatenate(bench.rows).astype(np.int32),
        order=order,
        n_train=per_probe([n - t for n, t in zip(sizes, n_test)]).astype(np.int32),
        test=test,
        n_test=per_probe(n_test).astype(np.int32),
        is_cls=per_probe([t.is_classification for t in bench.tasks]),
        lr=np.full(tasks * k, learning_rate, np.float32),
        w0=np.concatenate(w0).astype(np.float32),
        b0=np.concatenate(b0).astype(np.float32),
        n_tasks=tasks, k_folds=k, batch_size=batch_size,
    )
