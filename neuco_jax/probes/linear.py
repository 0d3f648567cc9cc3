"""The linear probe (`probe_type: linear`): the reference's SGD-trained probe, behind the probe interface.

The training itself is neuco_jax.engine's compiled pass over a neuco_jax.plan.ProbePlan (every
method, task, learning rate, fold and epoch at once); this module reads one method's
results for one ablation variant out of it, as the TaskFolds and stored Probes that the
pipeline writes for every probe kind.
"""

from __future__ import annotations

import warnings

import numpy as np

from neuco_jax.data import Benchmark
from neuco_jax.engine import ProbeScores
from neuco_jax.plan import ProbePlan
from neuco_jax.probes.folds import TaskFolds
from neuco_jax.probes.stored import Probe


def task_folds(plan: ProbePlan, probes: ProbeScores, slot: int, lr_index: int, fraction: float, epochs: int,
               bench: Benchmark, hyperparameters: dict) -> list[TaskFolds]:
    """One method's (`slot`) tasks at one learning rate, label fraction and epoch budget.

    A fold's score is its best held-out score within the first `epochs` epochs; its held-out
    logits (for plots) are those of its best epoch over the whole run.
    """
    out = []
    k = plan.k_folds
    for e, (task_name, f) in enumerate(plan.entries):
        if f != fraction:
            continue
        ps = range(e * plan.group + lr_index * k, e * plan.group + (lr_index + 1) * k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a fold NaN at every epoch stays NaN
            best = np.nanmax(probes.epoch_scores[slot, ps.start:ps.stop, :epochs], axis=1)
        task = next(t for t in bench.tasks if t.name == task_name)
        out.append(TaskFolds(
            task_name, task.task_type, best, hyperparameters,
            [plan.y[plan.test[p, :plan.n_test[p]]] for p in ps],
            [probes.best_logits[slot, p, :plan.n_test[p]] for p in ps], plan.metric_rule,
            probes.train_loss[slot, ps.start:ps.stop, :epochs], probes.test_loss[slot, ps.start:ps.stop, :epochs],
            epoch_scores=probes.epoch_scores[slot, ps.start:ps.stop, :epochs], n_train=int(plan.n_train[ps.start])))
    return out


def refitted(plan: ProbePlan, refit: ProbeScores, slot: int, lr_index: int, bench: Benchmark,
             hyperparameters: dict) -> list[Probe]:
    """`store_probes`: the probes of a refit plan (one entry per task, one probe per learning rate)."""
    n_lr = len(plan.learning_rates)
    return [Probe(task=task.name, task_type=task.task_type, w=refit.w[slot, t * n_lr + lr_index, :bench.x.shape[1]],
                  b=float(refit.b[slot, t * n_lr + lr_index]), mean=bench.mean, std=bench.std,
                  hyperparameters={**hyperparameters, "refit_rows": len(task.ids)})
            for t, task in enumerate(bench.tasks)]
