"""What every probe kind hands the pipeline for one method and task: `TaskFolds`.

Scores, the result JSON's hyperparameters, plots and stored probes are written from it alike,
whichever probe kind (neuco_jax.probes.linear, neuco_jax.probes.ridge) produced it.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class TaskFolds:
    """One method's probes on one task, fold by fold.

    scores: (k,) held-out R^2 or F1 per fold (NaN: the fold failed)
    hyperparameters: the result JSON's `hyperparamaters` (sic) for this task
    y_test, z_test: per fold, (t,) held-out labels and decision values (logits) behind the score
    metric_rule: the F1 rule the scores used ("reference" or "logit"), which confusion plots follow
    train_loss, test_loss: (k, epochs) loss curves, or None for a probe without epochs
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
