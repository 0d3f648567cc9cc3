"""The one interface between the pipeline and every probe kind.

The pipeline hands a kind's `run_pass(GroupPass)` a group of methods that cover the same ids; the
kind trains and scores all of them and returns `results_of(slot, variant, bench)`: one method's
(`slot`) `TaskFolds` per task at one ablation variant, and its refitted probes (`store_probes`) or
None. Scores, the result JSON's hyperparameters, plots and stored probes are written from those
alike, whichever kind (neuco_jax.probes.linear, ridge, svm, knn, mlp) produced them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from neuco_jax.config import Config
from neuco_jax.data import Prepared
from neuco_jax.plan import Embeddings, inner_split, shuffle_split, stack_embeddings


@dataclasses.dataclass(frozen=True)
class TaskFolds:
    """One method's probes on one task, fold by fold.

    scores: (k,) held-out R^2 or F1 per fold (NaN: the fold failed)
    hyperparameters: the result JSON's `hyperparamaters` (sic) for this task
    y_test, z_test: per fold, (t,) held-out labels and decision values (logits) behind the score
    metric_rule: the F1 rule the scores used ("reference", "logit", or "libsvm": an SVM's decision
      >= 0), which confusion plots follow
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


@dataclasses.dataclass(frozen=True)
class Variant:
    """One reported run: a method at one point of the ablation grid (config: the variant's own)."""

    lr_index: int
    fraction: float
    epochs: int
    name: str
    config: Config


@dataclasses.dataclass(frozen=True)
class GroupPass:
    """What a probe kind's `run_pass` gets: methods that cover the same ids, and the run's settings.

    group: [(method index, its Prepared submission)]; slots are positions in this list
    config: the run's Config; fractions: the label fractions of its ablation grid
    learning_rates: the learning rates of its grid (probes trained by steps)
    coverage: the ids the group covers (neuco_jax.plan.coverage); plans: a cache that outlives the
      group, {coverage: what a kind plans once per coverage}, e.g. the linear probe's ProbePlan
    width: the widest method of the sweep; chunk_size: methods per compiled pass (pad to it)
    timings: the sweep's {stage: seconds}, which a kind adds its "compile" and "train" time to
    compiled_one: call once when the group's program is compiled (progress)
    """

    group: list[tuple[int, Prepared]]
    config: Config
    fractions: tuple[float, ...]
    learning_rates: tuple[float, ...]
    coverage: tuple
    plans: dict
    width: int
    chunk_size: int
    timings: dict
    compiled_one: Callable[[], None]

    def embeddings(self) -> Embeddings:
        """The group's methods stacked, padded to chunk_size by repeating the last: every pass of a sweep
        has the same shapes, so its program compiles once."""
        benches = [b for _, b in self.group]
        return stack_embeddings(benches + benches[-1:] * (self.chunk_size - len(benches)), self.width)


# results_of(slot, variant, bench) -> (TaskFolds per task, refitted probes or None)
ResultsOf = Callable[[int, Variant, Prepared], tuple[list[TaskFolds], list | None]]


def shuffle_folds(bench: Prepared, t: int, k_folds: int, seed: int, fraction: float = 1.0,
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
