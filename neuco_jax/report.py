"""HTML report of a phase: leaderboard with rank intervals, paired statistics, per-task Q and scores, configs.

Host side only. Reads what the runs wrote,

    <output_dir>/<phase>/<run>/results_summary.json          Q and score per task, config
    <output_dir>/<phase>/<run>/<task>/<task>_result.json     mean_score, std_dev, q_stat, optional q_t
    <output_dir>/<phase>/<run>/fold_scores.csv               fold scores (else the q_t above)

ranks the runs as the leaderboard does, computes neuco_jax.compare's statistics
(rank intervals, paired differences, Friedman and Nemenyi) where every run has
fold scores, and, when the phase is one of the sibling phases of a `sweep --configs`
(listed in <output_dir>/leaderboards/agreement/siblings_<base>.json, see
neuco_jax.agreement), their agreement between probes. It writes one self-contained
page (no scripts, no external fonts, styles or images: the figures are embedded as
base64 PNG) with the same figures as PNG files beside it:

    <output_dir>/reports/<phase>/report.html
    <output_dir>/reports/<phase>/<figure>.png        report_figures.FIGURES (and AGREEMENT_FIGURE)

Runs are shown by method name, the run folder's full name in a tooltip and in
the per-task and config tables. matplotlib is imported inside write_report only
(report_figures), so the command line pays its import cost for `report` alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np

from neuco_jax.agreement import agreement, sibling_phases
from neuco_jax.compare import compare_runs, display_names, in_board_order, select_runs
from neuco_jax.fold_scores import read_fold_scores
from neuco_jax.errors import InputError
from neuco_jax.leaderboard import (ACC_PREFIX, Q_PREFIX, SUMMARY_FILE, aggregate_ranks, rank_runs,
                                   read_runs, runs_table)
from neuco_jax.protocol import group_protocols
from neuco_jax.report_page import page_html
from neuco_jax.results import atomic_write_bytes, check_name
from neuco_jax.scores import q_statistic

REPORT_FILE = "report.html"


@dataclasses.dataclass(frozen=True)
class PhaseResults:
    """Every ranked run of a phase, in leaderboard order (best first).

    Arrays are (runs, tasks); NaN where a value is unknown (no result file, no
    fold scores).
    """

    phase: str
    weighting: str
    board: object             # DataFrame from leaderboard.rank_runs
    tasks: list[str]
    run_dirs: list[Path]
    configs: list[dict | None]
    q: np.ndarray             # (runs, tasks) Q from results_summary.json, as ranked
    q_se: np.ndarray          # (runs, tasks) jackknife standard error of Q over folds
    mean: np.ndarray          # (runs, tasks) mean_score
    std: np.ndarray           # (runs, tasks) std_dev over folds
    fold_min: np.ndarray      # (runs, tasks) worst fold score
    fold_max: np.ndarray      # (runs, tasks) best fold score
    n_folds: np.ndarray       # (runs, tasks) int, finite fold scores; 0 without q_t
    ranks: np.ndarray         # (runs, tasks) int, 1 = best Q on the task
    weights: np.ndarray       # (tasks,) task weights of the weighting
    unranked: list[str]       # experiments lacking some task, left out of the ranking
    mixed_protocols: str = ""  # protocol.ProtocolGroups.differences of the ranked runs; "" when they share one
    names: list[str] = ()     # display names: method names, the full name where two runs share a method
    comparison: object = None  # neuco_jax.compare.Comparison of the ranked runs; None when it cannot be computed
    stats_note: str = ""      # why comparison is None
    baseline: int = 0         # index of the run the per-task differences are taken against
    optimism: dict = dataclasses.field(default_factory=dict)  # {experiment: {task: selection optimism}}
    siblings: list[str] = ()  # phases of the same sweep --configs (this one included); () when none
    agreement: object = None  # neuco_jax.agreement.Agreement of the siblings; None when none or not computable
    agreement_note: str = ""  # why agreement is None although there are siblings

    @property
    def experiments(self) -> list[str]:
        return list(self.board["experiment"])


def write_report(output_dir, phase, weighting="std", out=None, latest=False, allow_mixed_protocols=False,
                 baseline=None, confidence=0.95, resamples=2000, seed=0) -> Path:
    """Writes the HTML report of every complete run of a phase, and its figures as PNG.

    Args:
      output_dir: the benchmark's output folder (str or Path).
      phase: name of the phase folder under output_dir.
      weighting: task weights of the ranking, "std" (the reference's) or "uniform".
      out: path of the HTML file; None means <output_dir>/reports/<phase>/report.html.
        The PNG files are written beside it.
      latest, allow_mixed_protocols: which runs are ranked, as for the
        leaderboard (leaderboard.read_runs, leaderboard.runs_table); runs of
        different protocols ranked together get a warning and a protocol column.
      baseline: the run (folder or method name) the per-task paired differences are taken
        against; None means the top-ranked run.
      confidence, resamples, seed: of the statistics (neuco_jax.compare.compare).

    Returns:
      Path of the HTML file.

    Raises:
      InputError: the phase folder is missing, a result file is broken, no
        run of the phase has every task, or (without allow_mixed_protocols) the
        runs differ in protocol; an unknown baseline.
    """
    results = load_phase(output_dir, phase, weighting, latest, allow_mixed_protocols, baseline, confidence,
                         resamples, seed)
    out = Path(out) if out is not None else Path(output_dir) / "reports" / check_name("phase", phase) / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    from neuco_jax.report_figures import report_figures

    figures = report_figures(results)
    for name, png in figures.items():
        atomic_write_bytes(out.parent / name, png)
    atomic_write_bytes(out, page_html(results, figures, out.parent).encode("ascii", "xmlcharrefreplace"))
    return out


def load_phase(output_dir, phase, weighting="std", latest=False, allow_mixed_protocols=False, baseline=None,
               confidence=0.95, resamples=2000, seed=0) -> PhaseResults:
    """Reads and ranks every complete run of a phase (see write_report), with the per-task result files.

    Returns:
      PhaseResults in leaderboard order.

    Raises:
      InputError: as write_report.
    """
    summaries = read_runs(output_dir, phase, latest)
    runs = runs_table(summaries, allow_mixed_protocols)
    board = rank_runs(runs, weighting)
    phase_dir = Path(output_dir) / phase
    if board.empty:
        raise InputError(f"{phase_dir}: no complete run to report (a complete run has a {SUMMARY_FILE} "
                         f"with the Q of every task of the phase); evaluate a submission into this phase first")
    tasks = [c[len(Q_PREFIX):] for c in board.columns if c.startswith(Q_PREFIX)]
    ordered = in_board_order(summaries, board)
    run_dirs = [run["run_dir"] for run in ordered]
    configs = [run["config"] for run in ordered]
    base = 0 if baseline is None else ordered.index(select_runs(ordered, [baseline], phase_dir, "--baseline")[0])

    q = board[[Q_PREFIX + t for t in tasks]].to_numpy(np.float64)
    ranks, weights, _ = aggregate_ranks(q, weighting)
    task_results = [[_read_task_result(run_dir, task) for task in tasks] for run_dir in run_dirs]
    n_runs, n_tasks = q.shape
    per_run = [_fold_scores(run_dir, tasks) for run_dir in run_dirs]
    # At least one fold column, all NaN where a run kept no fold scores (the reference's, without q_t).
    k = max([1] + [len(v) for run in per_run for v in run.values()])
    folds = np.full((n_runs, n_tasks, k), np.nan)  # (runs, tasks, folds), NaN-padded
    mean = board[[ACC_PREFIX + t for t in tasks]].to_numpy(np.float64, copy=True)
    std = np.full((n_runs, n_tasks), np.nan)
    for r, row in enumerate(task_results):
        for t, result in enumerate(row):
            if result:
                mean[r, t], std[r, t] = result["mean_score"], result["std_dev"]
            fold_scores = per_run[r].get(tasks[t], ())
            folds[r, t, :len(fold_scores)] = fold_scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no fold scores
        fold_min, fold_max = np.nanmin(folds, axis=-1), np.nanmax(folds, axis=-1)
    unranked = sorted(set(runs["experiment"]) - set(board["experiment"]))
    ranked = set(board["experiment"])
    mixed = group_protocols([run for run in summaries if run["experiment"] in ranked]).differences
    comparison, note = None, "needs at least two ranked runs"
    if len(ordered) >= 2:
        try:
            comparison = compare_runs(ordered, phase, confidence, resamples, seed, weighting, allow_mixed_protocols)
        except InputError as err:  # e.g. a run without fold scores: the rest of the report still stands
            note = str(err)
    optimism = {run["experiment"]: run["selection_optimism"] for run in ordered if run["selection_optimism"]}
    siblings = sibling_phases(output_dir, phase)
    found, agreement_note = None, ""
    if siblings:
        try:
            found = agreement(output_dir, siblings, resamples, seed, confidence, weighting)
        except InputError as err:  # e.g. a sibling phase deleted since: the rest of the report still stands
            agreement_note = str(err)
    return PhaseResults(phase, weighting, board, tasks, run_dirs, configs, q, jackknife_q_se(folds), mean, std,
                        fold_min, fold_max, np.isfinite(folds).sum(axis=-1), ranks, weights, unranked, mixed,
                        display_names(list(board["experiment"])), comparison, "" if comparison else note, base,
                        optimism, siblings, found, agreement_note)


def _fold_scores(run_dir: Path, tasks) -> dict:
    """{task: (k,) fold scores} of a run (fold_scores.csv, else q_t); empty when it kept none."""
    try:
        return read_fold_scores(run_dir, tasks).scores
    except InputError:  # a reference run without q_t: its Q still shows, without spread
        return {}


def jackknife_q_se(folds):
    """Jackknife standard error of Q over folds.

    Q = 2 mean(s) / (0.02 + std(s)) condenses the k fold scores s of a task, so
    it has no per-fold value to take a spread of. Its spread across folds is the
    jackknife's: Q_i is Q recomputed without fold i, and over the n finite folds

        se = sqrt((n - 1) / n * sum_i (Q_i - mean_i Q_i)^2)

    which is how much Q would move had other folds been drawn.

    Args:
      folds: (..., k) fold scores, NaN for failed or padded folds.

    Returns:
      (...) standard errors; NaN where fewer than 2 folds are finite.
    """
    folds = np.asarray(folds, np.float64)
    k = folds.shape[-1]
    # leave_out[..., i, j] = fold j's score with fold i left out: (..., k, k)
    leave_out = np.where(np.eye(k, dtype=bool), np.nan, folds[..., None, :])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows where a task has no folds
        q_i = q_statistic(np.nanmean(leave_out, axis=-1), np.nanstd(leave_out, axis=-1))  # (..., k)
        q_i = np.where(np.isfinite(folds), q_i, np.nan)  # a failed fold has no leave-one-out Q
        n = np.isfinite(q_i).sum(axis=-1)
        spread = np.nansum((q_i - np.nanmean(q_i, axis=-1, keepdims=True)) ** 2, axis=-1)
        return np.where(n >= 2, np.sqrt((n - 1) / np.maximum(n, 1) * spread), np.nan)


def _read_task_result(run_dir, task):
    """The <task>/<task>_result.json of a run as a dict, or None (with a warning) when it is missing."""
    path = run_dir / task / f"{task}_result.json"
    if not path.is_file():
        warnings.warn(f"{path} is missing: the report shows this task's Q and score "
                      "from results_summary.json without their spread", stacklevel=3)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: is not valid JSON ({err}); re-run the evaluation of this method") from err
    keys = ("mean_score", "std_dev", "q_stat")
    missing = [key for key in keys if key not in data] if isinstance(data, dict) else list(keys)
    if missing:
        raise InputError(f"{path}: lacks key(s) {', '.join(map(repr, missing))}; "
                         "re-run the evaluation of this method")
    data = dict(data)
    for key in keys:
        data[key] = _number(data[key], path, key)
    q_t = data.get("q_t")
    if q_t is not None:
        if not isinstance(q_t, list):
            raise InputError(f"{path}: 'q_t' is a {type(q_t).__name__}, expected a list of fold scores")
        data["q_t"] = [_number(v, path, "q_t") for v in q_t]
    return data


def _number(value, path, key):
    """A score from a result file as a float; null (and NaN) mean a failed task or fold."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{path}: {key!r} holds {value!r}, expected a number; "
                         "re-run the evaluation of this method")
    return float(value)
