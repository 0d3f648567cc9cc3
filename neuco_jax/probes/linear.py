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

    A fold's score is its best held-out score within the first `epochs` epochs (selection
    "test_fold", the reference's). With selection "nested" it is the held-out score at the epoch
    whose twin (ProbePlan) scores best on the inner validation split, the first of ties; the
    test_fold rule's score of the same probe is kept beside it, and the chosen epochs (1-based)
    go into the hyperparameters. Held-out logits (for plots) are those of the fold's best
    held-out epoch over the whole run, under either selection.
    """
    out = []
    k = plan.k_folds
    n_lr = len(plan.learning_rates) // (2 if plan.selection == "nested" else 1)
    for e, (task_name, f) in enumerate(plan.entries):
        if f != fraction:
            continue
        ps = range(e * plan.group + lr_index * k, e * plan.group + (lr_index + 1) * k)
        per_epoch = probes.epoch_scores[slot, ps.start:ps.stop, :epochs]  # (k, epochs) held out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a fold NaN at every epoch stays NaN
            best = np.nanmax(per_epoch, axis=1)
        hyper, test_fold = hyperparameters, None
        if plan.selection == "nested":
            twins = ps.start + n_lr * k
            validation = probes.epoch_scores[slot, twins:twins + k, :epochs]  # (k, epochs)
            failed = np.isnan(validation).all(axis=1)
            chosen = np.argmax(np.where(np.isnan(validation), -np.inf, validation), axis=1)  # first of ties
            test_fold, best = best, np.where(failed, np.nan, per_epoch[np.arange(k), chosen])
            hyper = {**hyperparameters, "selection": "nested",
                     "selected_epochs": [None if bad else int(c) + 1 for c, bad in zip(chosen, failed)]}
        task = next(t for t in bench.tasks if t.name == task_name)
        out.append(TaskFolds(
            task_name, task.task_type, best, hyper,
            [plan.y[plan.test[p, :plan.n_test[p]]] for p in ps],
            [probes.best_logits[slot, p, :plan.n_test[p]] for p in ps], plan.metric_rule,
            probes.train_loss[slot, ps.start:ps.stop, :epochs], probes.test_loss[slot, ps.start:ps.stop, :epochs],
            epoch_scores=per_epoch, n_train=int(plan.n_train[ps.start]), test_fold_scores=test_fold))
    return out


def refitted(plan: ProbePlan, refit: ProbeScores, slot: int, lr_index: int, bench: Benchmark,
             hyperparameters: dict) -> list[Probe]:
    """`store_probes`: the probes of a refit plan (one entry per task, one probe per learning rate)."""
    n_lr = len(plan.learning_rates)
    return [Probe(task=task.name, task_type=task.task_type, w=refit.w[slot, t * n_lr + lr_index, :bench.x.shape[1]],
                  b=float(refit.b[slot, t * n_lr + lr_index]), mean=bench.mean, std=bench.std,
                  hyperparameters={**hyperparameters, "refit_rows": len(task.ids)})
            for t, task in enumerate(bench.tasks)]
