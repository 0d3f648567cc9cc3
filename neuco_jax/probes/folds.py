"""What every probe kind hands the pipeline for one method and task: `TaskFolds`.

Scores, the result JSON's hyperparameters, plots and stored probes are written from it alike,
whichever probe kind (neuco_jax.probes.linear, neuco_jax.probes.ridge) produced it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuco_jax.data import Benchmark
from neuco_jax.plan import inner_split, shuffle_split


@dataclasses.dataclass(frozen=True)
class TaskFolds:
    """One method's probes on one task, fold by fold.

    scores: (k,) held-out R^2 or F1 per fold (NaN: the fold failed)
    hyperparameters: the result JSON's `hyperparamaters` (sic) for this task
    y_test, z_test: per fold, (t,) held-out labels and decision values (logits) behind the score
    metric_rule: the F1 rule the scores used ("reference" or "logit"), which confusion plots follow
    train_loss, test_loss: (k, steps) per-fold curves, or None: the linear probe's training and
      held-out loss per epoch; the SVM's training and held-out 'scoring' per candidate (the reference's
      "loss" curves over hyperparameter settings); None for ridge
    curve_axis: what the curves' steps are, "epoch" or "candidate"
    epoch_scores: (k, epochs) held-out score after each epoch (the linear probe), or None (ridge, SVM)
    n_train: training rows of each fold (after a label fraction), or None where the probe does not say
    test_fold_scores: (k,) with `selection: nested`, the same probes' scores under the reference's
      selection (the best epoch or candidate on the fold's held-out rows), or None: `scores` are those
    """

    name: str
    task_type: str
    scores: np.ndarray
    hyperparameters: dict
    y_test: list[np.ndarray]
    z_test: list[np.ndarray]
    metric_rule: str
    train_loss: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    curve_axis: str = "epoch"
    epoch_scores: np.ndarray | None = None
    n_train: int | None = None
    test_fold_scores: np.ndarray | None = None


def shuffle_folds(bench: Benchmark, t: int, k_folds: int, seed: int, fraction: float = 1.0,
                  selection: str = "test_fold"):
    """The folds of task t as the linear probe's plan draws them: train (k, m), test (k, t), validation.

    With selection "nested" the validation positions (k, t) are split off the training ones first
    (neuco_jax.plan.inner_split); else validation is None. A label fraction then keeps the first
    round(fraction * n_train) training rows of each fold.
    """
    train, test = shuffle_split(len(bench.rows[t]), k_folds, seed)
    val = None
    if selection == "nested":
        train, val = inner_split(train, test, bench.tasks[t].name)
    return train[:, :max(1, round(fraction * train.shape[1]))], test, val
