"""Leaderboard: rank every run of a phase and write the leaderboard CSV.

Host side only (numpy, pandas). Each run folder
``<output_dir>/<phase>/<method>_<timestamp>/`` holds a ``results_summary.json``;
the leaderboard goes to
``<output_dir>/leaderboards/<phase>/leaderboard_<YYYYmmdd_HHMMSS>.csv``.

Ranking is the reference's rank-then-aggregate. For q of shape (runs, tasks),
the per-task Q scores of the runs that have every task:

    rank[r, t]     = 1 + #{runs s : q[s, t] > q[r, t]}      highest Q first, ties
                                                           share the lowest rank
    weight[t]      = sd[t] / sum_t' sd[t']                 "std": sd[t] is the
                                                           std (ddof 1) of q[:, t]
                   = 1 / tasks                             "uniform" (average rank)
    weighted[r]    = sum_t rank[r, t] * weight[t]          lower is better
    aggregated[r]  = 1 + #{runs s : weighted[s] < weighted[r]}

"std" weighting (the reference's, and the default) lets the tasks on which the
methods differ most decide most of the order; "uniform" counts every task the
same.

Runs are ranked together only when they share a scoring protocol
(neuco_jax.protocol): a phase whose complete runs were scored under different
protocols is an error unless `allow_mixed_protocols`, which ranks them anyway
and adds a `protocol` column. `latest` keeps the newest run of each method.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neuco_jax.errors import InputError
from neuco_jax.protocol import MixedProtocolsError, group_protocols, protocol_of
from neuco_jax.results import RUN_NAME as _RUN_NAME
from neuco_jax.results import SUMMARY_FILE, atomic_write_text, check_name, timestamp
from neuco_jax.scores import WEIGHTINGS

Q_PREFIX = "q::"
ACC_PREFIX = "acc::"

_RANK_COLUMNS = ["experiment", "mean_score", "weighted_score", "aggregated_rank"]
_OVERALL_COLUMNS = ["overall_q_score", "overall_acc_score"]
# results_summary.json as the reference writes it now, and as it wrote it before
# it reported accuracies (Q scores only, under other names).
_CURRENT_KEYS = ("experiment", "overall_q_score", "overall_acc_score",
                 "task_q_scores", "task_acc_scores")
_OLDER_KEYS = ("experiment", "overall_score", "task_results")


def read_runs(output_dir, phase, latest=False):
    """Parses the results_summary.json of every complete run of a phase.

    Run folders are read in name order so that nothing depends on the file
    system's listing order. A run folder without results_summary.json (a run
    still going, or one that crashed) is skipped with a warning; hidden folders
    are runs still being written (results.write_run stages them).

    Args:
      output_dir: the benchmark's output folder (str or Path).
      phase: name of the phase folder under output_dir.
      latest: keep only the newest complete run of each method (latest_runs);
        default every run, as the reference.

    Returns:
      One dict per run as `_read_summary` gives it, plus run_dir (Path).

    Raises:
      InputError: the phase folder does not exist, or a results_summary.json
        cannot be parsed or lacks the keys of both known formats.
    """
    phase_dir = Path(output_dir) / phase
    if not phase_dir.is_dir():
        raise InputError(
            f"{phase_dir}: phase folder not found; check output_dir and phase "
            f"(runs are written to <output_dir>/<phase>/<method>_<timestamp>/)")
    runs = []
    for run_dir in sorted((p for p in phase_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                          key=lambda p: p.name):
        summary = run_dir / SUMMARY_FILE
        if not summary.is_file():
            warnings.warn(f"skipping incomplete run {run_dir}: it has no {SUMMARY_FILE}",
                          stacklevel=3)
            continue
        runs.append({**_read_summary(summary), "run_dir": run_dir})
    return latest_runs(runs) if latest else runs


def latest_runs(runs):
    """The newest run of each method among runs (as read_runs gives them), in their order.

    A run's method is its folder name without the `_YYYYmmdd_HHMMSS` stamp and
    the `_N` of a name clash; newest means the latest stamp, then the highest N.
    A folder not named that way is a method of its own.
    """
    newest = {}  # method -> (stamp, clash), index of its newest run
    for i, run in enumerate(runs):
        match = _RUN_NAME.fullmatch(run["run_dir"].name)
        method, age = ((match["method"], (match["stamp"], int(match["clash"] or 1))) if match
                       else (run["run_dir"].name, ("", 0)))
        if method not in newest or age > newest[method][0]:
            newest[method] = (age, i)
    keep = {i for _, i in newest.values()}
    return [run for i, run in enumerate(runs) if i in keep]


def runs_table(runs, allow_mixed_protocols=False):
    """The runs of `read_runs` as one table, after checking that the ones to rank share a protocol.

    Args:
      runs: as read_runs returns them.
      allow_mixed_protocols: rank runs of different protocols anyway; the
        table then gets a `protocol` column, one short id per protocol.

    Returns:
      DataFrame with one row per run and columns experiment, q::<task>...,
      acc::<task>..., overall_q_score, overall_acc_score (and protocol, see
      above); tasks in sorted order, NaN where a run lacks a task (and for
      every accuracy of a run written in the older format, which had none).

    Raises:
      MixedProtocolsError: the runs that have every task (those rank_runs
        ranks) differ in protocol, and allow_mixed_protocols is false; one line
        naming the differing keys, their values and runs, and the fixes.
    """
    tasks = sorted({task for run in runs for task in run["q"]})
    columns = ["experiment", *(Q_PREFIX + t for t in tasks),
               *(ACC_PREFIX + t for t in tasks), *_OVERALL_COLUMNS]
    rows = [
        {"experiment": run["experiment"],
         **{Q_PREFIX + t: run["q"].get(t, math.nan) for t in tasks},
         **{ACC_PREFIX + t: run["acc"].get(t, math.nan) for t in tasks},
         "overall_q_score": run["overall_q"],
         "overall_acc_score": run["overall_acc"]}
        for run in runs
    ]
    table = pd.DataFrame(rows, columns=columns)
    complete = _complete(table).to_numpy()
    ranked = [run for run, c in zip(runs, complete) if c]
    groups = group_protocols(ranked)
    if groups.mixed and not allow_mixed_protocols:
        where = ranked[0]["run_dir"].parent if "run_dir" in ranked[0] else "runs"
        raise MixedProtocolsError(
            f"{where}: these runs were scored under different protocols: {groups.differences}; "
            f"rank each protocol in its own phase (or only the newest run of each method with --latest), "
            f"or rank them together anyway with --allow_mixed_protocols (allow_mixed_protocols=True), "
            f"which marks each run's protocol")
    if groups.mixed:
        table.loc[complete, "protocol"] = groups.ids
    return table


def collect_runs(output_dir, phase, latest=False, allow_mixed_protocols=False):
    """Every complete run of a phase as one table: runs_table of read_runs (see both)."""
    return runs_table(read_runs(output_dir, phase, latest), allow_mixed_protocols)


def _complete(table):
    """Boolean Series: the rows of a runs table that have every task's Q (the runs that are ranked)."""
    q_columns = [c for c in table.columns if c.startswith(Q_PREFIX)]
    if not q_columns:
        return pd.Series(False, index=table.index)
    return table[q_columns].notna().all(axis=1)


def _read_summary(path):
    """Parses one results_summary.json in either known format.

    Args:
      path: Path of the file.

    Returns:
      dict with experiment (str), q and acc ({task: float}; acc empty for the
      older format), overall_q and overall_acc (float, NaN when absent),
      config (the run's config dict, or None), protocol (protocol.protocol_of)
      ablation_axes (the protocol keys an ablation variant varies; empty
      for other runs) and selection_optimism ({task: float}, a `selection:
      nested` run's mean reference-rule score minus nested score; empty for
      other runs).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _summary_error(path, f"is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise _summary_error(path, f"holds a JSON {type(data).__name__}, expected an object")
    if "task_q_scores" not in data and "task_results" not in data:
        raise _summary_error(
            path, "has neither 'task_q_scores' (current format) nor 'task_results' (older format)")
    older = "task_q_scores" not in data
    keys = _OLDER_KEYS if older else _CURRENT_KEYS
    missing = [key for key in keys if key not in data]
    if missing:
        raise _summary_error(path, f"lacks key(s) {', '.join(map(repr, missing))}")
    if not isinstance(data["experiment"], str):
        raise _summary_error(path, f"has 'experiment' {data['experiment']!r}, expected a string")

    config = data["config"] if isinstance(data.get("config"), dict) else None
    axes = data.get("ablation_axes", [])
    if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
        raise _summary_error(path, f"has 'ablation_axes' {axes!r}, expected a list of config keys")
    optimism = data.get("selection_optimism", {})
    record = {"config": config, "protocol": protocol_of(data), "ablation_axes": tuple(axes),
              "selection_optimism": _task_scores({"selection_optimism": optimism}, "selection_optimism", path)}
    if older:
        return {"experiment": data["experiment"],
                "q": _task_scores(data, "task_results", path), "acc": {},
                "overall_q": _score(data["overall_score"], path, "overall_score"),
                "overall_acc": math.nan, **record}
    q = _task_scores(data, "task_q_scores", path)
    acc = _task_scores(data, "task_acc_scores", path)
    if set(q) != set(acc):
        raise _summary_error(
            path, f"names tasks {sorted(set(q) ^ set(acc))} in only one of "
                  "'task_q_scores' and 'task_acc_scores'")
    return {"experiment": data["experiment"], "q": q, "acc": acc,
            "overall_q": _score(data["overall_q_score"], path, "overall_q_score"),
            "overall_acc": _score(data["overall_acc_score"], path, "overall_acc_score"), **record}


def _task_scores(data, key, path):
    """Returns data[key], a {task: score} object, as {task: float}."""
    scores = data[key]
    if not isinstance(scores, dict):
        raise _summary_error(path, f"has {key!r} of type {type(scores).__name__}, "
                                   "expected an object {task: score}")
    return {task: _score(value, path, f"{key}.{task}") for task, value in scores.items()}


def _score(value, path, key):
    """Returns a score from the JSON as a float; null (or NaN) means missing."""
    if value is None:
        return math.nan
    # bool is an int in Python, but true/false in a score field is a broken file.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _summary_error(path, f"has {key!r} = {value!r}, expected a number")
    if math.isinf(value):
        raise _summary_error(path, f"has {key!r} = {value!r}, expected a finite number")
    return float(value)


def _summary_error(path, problem):
    """Builds the InputError for a results_summary.json that cannot be used."""
    return InputError(f"{path}: {problem}; re-run the evaluation of this method "
                      f"or delete its run folder {path.parent}")


def min_rank(values, axis=0):
    """Ranks 1..n along an axis, ties sharing the lowest rank (scipy's rankdata(method="min")).

    The rank of v is 1 + the number of values strictly below it. Written out
    here because importing scipy.stats costs a command-line run 0.4 s.
    """
    values = np.moveaxis(np.asarray(values, np.float64), axis, 0)
    ranks = np.empty(values.shape, np.int64)
    for column in np.ndindex(values.shape[1:]):
        v = values[(slice(None),) + column]
        ranks[(slice(None),) + column] = np.searchsorted(np.sort(v), v, side="left") + 1
    return np.moveaxis(ranks, 0, axis)


def aggregate_ranks(q, weighting="std"):
    """Per-task ranks, task weights and weighted scores (module docstring's maths).

    Args:
      q: array-like (runs, tasks) of finite Q scores, at least one run and task.
      weighting: "std" (the reference's) or "uniform" (plain average rank).

    Returns:
      ranks: int array (runs, tasks), 1 = best on that task.
      weights: float array (tasks,), summing to 1.
      weighted_score: float array (runs,), lower is better.
    """
    _check_weighting(weighting)
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or 0 in q.shape or not np.isfinite(q).all():
        raise ValueError(f"q must be a finite (runs, tasks) array with at least one run "
                         f"and one task, got shape {q.shape}; drop runs with missing Q first")
    n_runs, n_tasks = q.shape
    ranks = min_rank(-q, axis=0)
    if weighting == "std" and n_runs > 1:
        spread = np.array([_sample_std(q[:, t]) for t in range(n_tasks)])
    else:
        # "uniform"; also the reference's choice for a single run, which has no spread.
        spread = np.ones(n_tasks)
    total = math.fsum(spread)
    if total == 0.0:
        # Every task has the same Q for every run, so every run ranks 1 everywhere.
        # The reference divides 0 by 0 here and ranks no run; equal weights give
        # every run the shared first place instead.
        spread = np.ones(n_tasks)
        total = float(n_tasks)
    # sum(rank * spread) / total equals sum(rank * weight), but math.fsum rounds
    # once, whatever the order of the terms: runs tied in exact arithmetic stay
    # tied whatever the order of runs and tasks, and integer rank sums under
    # "uniform" are exact. Differs from the reference by at most a few ulps.
    weighted_score = np.array([math.fsum(row * spread) for row in ranks]) / total
    return ranks, spread / total, weighted_score


def _sample_std(values):
    """Standard deviation (ddof 1) of values (n,), n >= 2, independent of their order."""
    mean = math.fsum(values) / values.size
    return math.sqrt(math.fsum((values - mean) ** 2) / (values.size - 1))


def _check_weighting(weighting):
    """Raises ValueError unless weighting is one of WEIGHTINGS."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of "
                         f"{', '.join(map(repr, WEIGHTINGS))}")


def rank_runs(runs, weighting="std"):
    """Ranks runs by rank-then-aggregate over their per-task Q scores.

    Only the q::<task> columns decide; runs missing any task's Q are dropped.

    Args:
      runs: DataFrame as returned by collect_runs.
      weighting: "std" (task weight proportional to the spread of its Q across
        runs, the reference's) or "uniform" (plain average rank).

    Returns:
      DataFrame sorted best first (ties in weighted_score by experiment name)
      with columns experiment, mean_score, weighted_score, aggregated_rank,
      q::<task>..., acc::<task>..., overall_q_score, overall_acc_score, and
      protocol where runs carries one (mixed protocols allowed). Empty, with
      those columns, when no run has every task.
    """
    _check_weighting(weighting)
    missing = [c for c in ("experiment", *_OVERALL_COLUMNS) if c not in runs.columns]
    if missing:
        raise ValueError(f"runs table lacks column(s) {', '.join(missing)}; "
                         "build it with collect_runs")
    q_columns = sorted(c for c in runs.columns if c.startswith(Q_PREFIX))
    acc_columns = sorted(c for c in runs.columns if c.startswith(ACC_PREFIX))
    columns = [*_RANK_COLUMNS, *q_columns, *acc_columns, *_OVERALL_COLUMNS,
               *(["protocol"] if "protocol" in runs.columns else [])]
    complete = runs.loc[_complete(runs)]
    if complete.empty:
        return pd.DataFrame(columns=columns)

    q = complete[q_columns].to_numpy(dtype=np.float64)  # (runs, tasks)
    _, _, weighted_score = aggregate_ranks(q, weighting)
    board = complete.assign(mean_score=q.mean(axis=1), weighted_score=weighted_score,
                            aggregated_rank=min_rank(weighted_score))
    # Two stable sorts: by score, ties in name order, independent of input order.
    board = (board.sort_values("experiment", kind="stable")
             .sort_values("weighted_score", kind="stable"))
    return board[columns].reset_index(drop=True)


def save_leaderboard(board, output_dir, phase, stamp=None):
    """Writes a ranked table to <output_dir>/leaderboards/<phase>/leaderboard_<stamp>.csv atomically.

    Args:
      board: DataFrame as returned by rank_runs.
      output_dir: the benchmark's output folder (str or Path).
      phase: name of the phase.
      stamp: "YYYYmmdd_HHMMSS" for the file name; None means now.

    Returns:
      The CSV's path, or None (nothing written) when the board is empty.
    """
    if board.empty:
        return None
    folder = Path(output_dir) / "leaderboards" / check_name("phase", phase)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"leaderboard_{stamp or timestamp()}.csv"
    atomic_write_text(path, board.to_csv(index=False))
    return path


def write_leaderboard(output_dir, phase, weighting="std", stamp=None, latest=False, allow_mixed_protocols=False):
    """Ranks every complete run of a phase and saves the leaderboard; see collect_runs and save_leaderboard."""
    runs = collect_runs(output_dir, phase, latest, allow_mixed_protocols)
    return save_leaderboard(rank_runs(runs, weighting), output_dir, phase, stamp)


def format_leaderboard(board):
    """Formats a leaderboard as a compact text table for the terminal.

    Shows rank, experiment, weighted score, mean Q and mean accuracy (and the
    protocol, where the board has one); the per-task scores are in the CSV.

    Args:
      board: DataFrame as returned by rank_runs.

    Returns:
      The table as one multi-line string.
    """
    if board.empty:
        return "No complete runs to rank."
    table = board[["aggregated_rank", "experiment", "weighted_score", "mean_score", "overall_acc_score",
                   *(["protocol"] if "protocol" in board.columns else [])]].rename(columns={
                       "aggregated_rank": "rank", "mean_score": "mean_Q",
                       "overall_acc_score": "mean_acc"})
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
