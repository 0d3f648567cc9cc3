"""The linear probe (`probe_type: linear`): the reference's SGD-trained probe, behind the probe interface.

The training itself is neuco_jax.engine's compiled pass over a neuco_jax.plan.ProbePlan (every
method, task, learning rate, fold and epoch at once); this module reads one method's
results for one ablation variant out of it, as the TaskFolds and stored Probes that the
pipeline writes for every probe kind.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from neuco_jax import engine
from neuco_jax.data import Prepared
from neuco_jax.engine import ProbeScores
from neuco_jax.plan import Embeddings, ProbePlan, make_plan
from neuco_jax.probes.folds import GroupPass, ResultsOf, TaskFolds, Variant
from neuco_jax.probes.stored import Probe
from neuco_jax.runtime import select_devices


def run_pass(p: GroupPass) -> ResultsOf:
    """The engine's one compiled pass over a group of methods (and its refit pass for `store_probes`).

    Methods of one coverage share a plan (folds, batch orders, initial weights); the group is
    padded to the chunk size by repeating a method, so every pass has the same shapes.
    """
    config = p.config
    t0 = time.perf_counter()
    if p.coverage not in p.plans:
        p.plans[p.coverage] = make_plan(
            p.group[0][1], k_folds=config.k_folds, epochs=config.epochs, batch_size=config.batch_size,
            learning_rates=p.learning_rates, label_fractions=p.fractions, seed=config.seed, dim=p.width,
            shuffle=config.shuffle, metric_rule=config.metric_rule, selection=config.selection)
    plan = p.plans[p.coverage]
    emb = p.embeddings()
    p.timings["load"] += time.perf_counter() - t0
    probes = _run(plan, emb, p, p.compiled_one)
    refit_plan = refit = None
    if config.store_probes:
        refit_plan = make_plan(p.group[0][1], k_folds=1, epochs=config.epochs, batch_size=config.batch_size,
                               learning_rates=p.learning_rates, seed=config.seed, dim=p.width, refit=True,
                               shuffle=config.shuffle, metric_rule=config.metric_rule)
        refit = _run(refit_plan, emb, p, lambda: None)

    def results_of(slot: int, variant: Variant, bench: Prepared):
        hyper = {"epochs": variant.epochs, "learning_rate": variant.config.learning_rate,
                 "batch_size": config.batch_size}
        folds = task_folds(plan, probes, slot, variant.lr_index, variant.fraction, variant.epochs, bench, hyper)
        stored = None
        if refit is not None:
            stored = refitted(refit_plan, refit, slot, variant.lr_index, bench,
                              {**hyper, "epochs": config.epochs, "seed": config.seed})
        return folds, stored

    return results_of


def _run(plan: ProbePlan, emb: Embeddings, p: GroupPass, compiled_one) -> ProbeScores:
    t0 = time.perf_counter()
    compiled = engine.compile_plan(plan, emb, select_devices(p.config.device))
    p.timings["compile"] += time.perf_counter() - t0
    compiled_one()
    t0 = time.perf_counter()
    probes = engine.run_plan(plan, emb, compiled)
    p.timings["train"] += time.perf_counter() - t0
    return probes


def task_folds(plan: ProbePlan, probes: ProbeScores, slot: int, lr_index: int, fraction: float, epochs: int,
               bench: Prepared, hyperparameters: dict) -> list[TaskFolds]:
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


def refitted(plan: ProbePlan, refit: ProbeScores, slot: int, lr_index: int, bench: Prepared,
             hyperparameters: dict) -> list[Probe]:
    """`store_probes`: the probes of a refit plan (one entry per task, one probe per learning rate)."""
    n_lr = len(plan.learning_rates)
    return [Probe(task=task.name, task_type=task.task_type, w=refit.w[slot, t * n_lr + lr_index, :bench.x.shape[1]],
                  b=float(refit.b[slot, t * n_lr + lr_index]), mean=bench.mean, std=bench.std,
                  hyperparameters={**hyperparameters, "refit_rows": len(task.ids)})
            for t, task in enumerate(bench.tasks)]
