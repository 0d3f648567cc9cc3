"""Host-side statistics: per-fold scores -> per-task mean, spread and Q -> per-run overall scores."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

# How the leaderboard weights tasks (neuco_jax.leaderboard): "std" (the reference's) or "uniform".
WEIGHTINGS = ("std", "uniform")


def q_statistic(mean_score: float, std_dev: float) -> float:
    """NeuCo-Bench's Q: high when a task is solved well AND stably; 100 is perfect, < 0 when R^2 < 0."""
    return mean_score / (0.02 + std_dev) * 2


@dataclasses.dataclass(frozen=True)
class TaskScore:
    """One task's result. fold_scores: (k_folds,) best held-out score of each fold, NaN if it failed."""

    name: str
    task_type: str
    fold_scores: np.ndarray
    mean_score: float
    std_dev: float
    q_stat: float

    @property
    def failed_folds(self) -> int:
        return int(np.isnan(self.fold_scores).sum())


def task_score(name: str, task_type: str, fold_scores: np.ndarray) -> TaskScore:
    """Condense the k fold scores of a task as the reference does (nanmean, population nanstd)."""
    fold_scores = np.asarray(fold_scores, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tasks give NaN, as in the reference
        mean, std = float(np.nanmean(fold_scores)), float(np.nanstd(fold_scores))
    return TaskScore(name, task_type, fold_scores, mean, std, q_statistic(mean, std))


def overall(scores: list[TaskScore]) -> tuple[float, float]:
    """(overall_q_score, overall_acc_score): the means over tasks of Q and of mean_score."""
    if not scores:
        return float("nan"), float("nan")
    return float(np.mean([s.q_stat for s in scores])), float(np.mean([s.mean_score for s in scores]))
