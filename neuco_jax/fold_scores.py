"""Every run's per-fold (and per-epoch) scores, kept beside the reference's files: `fold_scores.csv`.

    <output_dir>/<phase>/<run>/fold_scores.csv

One row per task and fold, tasks in the run's order, folds 0..k-1:

    task, fold, n_train, n_test, score[, epoch_1, ..., epoch_E]

score: the fold's score (R^2 or F1; the best held-out epoch for the linear probe, the best candidate
  for the SVM), the value Q is computed from; empty when the fold failed (NaN)
n_train, n_test: rows the fold trained on and held out (neuco_jax.compare needs their ratio for the
  Nadeau-Bengio correction, and checks with n_test that two runs held out the same folds)
epoch_e: the held-out score after epoch e (linear probe only; ridge and SVM probes have no epochs)

The file is written whatever `output_fold_results` says, so that statistics over folds never need
a rerun; the reference's own files (`<task>/<task>_result.json`, `results_summary.json`) are not
touched. Floats are written with 17 significant digits, so reading the file back gives the exact
float64 scores that the summary's Q was computed from.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np

from neuco_jax.errors import InputError
from neuco_jax.plan import TEST_SIZE
from neuco_jax.probes.folds import TaskFolds

FOLD_SCORES_FILE = "fold_scores.csv"
_COLUMNS = ("task", "fold", "n_train", "n_test", "score")


def _number(v) -> str:
    v = float(v)
    return "" if math.isnan(v) else repr(v)  # repr: the shortest text that reads back to the same float


def write_fold_scores(run_dir: Path, folds: list[TaskFolds]) -> Path:
    """Writes `<run_dir>/fold_scores.csv` (module docstring) from the TaskFolds of one run."""
    epochs = max((f.epoch_scores.shape[1] for f in folds if f.epoch_scores is not None), default=0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_COLUMNS, *(f"epoch_{e + 1}" for e in range(epochs))])
    for f in folds:
        for k, score in enumerate(f.scores):
            per_epoch = f.epoch_scores[k] if f.epoch_scores is not None else ()
            writer.writerow([f.name, k, "" if f.n_train is None else int(f.n_train), len(f.y_test[k]),
                             _number(score), *map(_number, per_epoch), *[""] * (epochs - len(per_epoch))])
    path = Path(run_dir) / FOLD_SCORES_FILE
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@dataclasses.dataclass(frozen=True)
class RunFolds:
    """One run's fold scores, as compare reads them.

    scores: {task: (k,) float64} fold scores, NaN for failed folds
    n_train, n_test: {task: rows per fold}; None when the run does not say (an older run read from q_t)
    source: the file they were read from
    """

    scores: dict[str, np.ndarray]
    n_train: dict[str, int | None]
    n_test: dict[str, int | None]
    source: Path

    def ratio(self, task: str, label_fraction: float = 1.0) -> float:
        """n_test / n_train of a task's folds; for a run that did not record them, the ShuffleSplit's
        (10% held out) at the run's label fraction."""
        if self.n_train.get(task) and self.n_test.get(task):
            return self.n_test[task] / self.n_train[task]
        return TEST_SIZE / ((1 - TEST_SIZE) * label_fraction)


def read_fold_scores(run_dir: Path, tasks) -> RunFolds:
    """The fold scores of `tasks` in one run: its fold_scores.csv, else the `q_t` of its task JSONs.

    Raises:
      InputError: the run has neither (written by the reference, or by neuco_jax before it kept fold
        scores, without `output_fold_results`), or its file is malformed; one line naming the file.
    """
    run_dir = Path(run_dir)
    path = run_dir / FOLD_SCORES_FILE
    if path.is_file():
        return _read_csv(path, tasks)
    scores = {}
    for task in tasks:
        result = run_dir / task / f"{task}_result.json"
        q_t = json.loads(result.read_text(encoding="utf-8")).get("q_t") if result.is_file() else None
        if not isinstance(q_t, list) or not q_t:
            raise InputError(f"{run_dir}: no {FOLD_SCORES_FILE} and no per-fold scores ('q_t') in {result.name}; "
                             f"re-run this method with neuco_jax (which keeps fold scores) to compare it")
        scores[task] = np.array([math.nan if v is None else v for v in q_t], np.float64)
    return RunFolds(scores, dict.fromkeys(tasks), dict.fromkeys(tasks), run_dir)


def _read_csv(path: Path, tasks) -> RunFolds:
    def bad(problem):
        return InputError(f"{path}: {problem}; re-run this method (or delete the file to fall back on 'q_t')")

    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0][:len(_COLUMNS)]) != _COLUMNS:
        raise bad(f"header {rows[0] if rows else []} does not start with {', '.join(_COLUMNS)}")
    by_task: dict[str, list] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < len(_COLUMNS):
            raise bad(f"line {line} has {len(row)} fields, expected at least {len(_COLUMNS)}")
        try:
            fold, n_test = int(row[1]), int(row[3])
            n_train = int(row[2]) if row[2] else None
            score = float(row[4]) if row[4] else math.nan
        except ValueError:
            raise bad(f"line {line} holds {row[1:5]}, expected integers fold, n_train, n_test and a score") from None
        by_task.setdefault(row[0], []).append((fold, n_train, n_test, score))
    scores, n_train, n_test = {}, {}, {}
    for task in tasks:
        if task not in by_task:
            raise bad(f"has no rows for task {task!r}")
        folds = by_task[task]
        if [f[0] for f in folds] != list(range(len(folds))):
            raise bad(f"task {task!r} lists folds {[f[0] for f in folds]}, expected 0..{len(folds) - 1} in order")
        scores[task] = np.array([f[3] for f in folds], np.float64)
        n_train[task], n_test[task] = folds[0][1], folds[0][2]
    return RunFolds(scores, n_train, n_test, path)
