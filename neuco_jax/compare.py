"""Which differences on a leaderboard are real: rank intervals, paired tests, Friedman and Nemenyi.

Host side (numpy, scipy; the maths is neuco_jax.stats'). Reads a phase's runs as the leaderboard
does (leaderboard.read_runs, the protocol guard of runs_table, rank_runs) and each run's fold
scores (neuco_jax.fold_scores), checks that the runs held out the same folds, and writes next to
the leaderboard:

    <output_dir>/leaderboards/<phase>/ranks_<YYYYmmdd_HHMMSS>.csv   one row per run, leaderboard order
    <output_dir>/leaderboards/<phase>/pairs_<YYYYmmdd_HHMMSS>.csv   one row per pair of runs and task
    <output_dir>/leaderboards/<phase>/cd_<YYYYmmdd_HHMMSS>.{png,svg} critical-difference diagram

ranks: aggregated_rank and weighted_score as on the leaderboard; rank_ci_*, weighted_score_ci_*
  and p_first (share of resamples ranked first) from the paired fold bootstrap (stats.fold_bootstrap:
  the same fold indices for every run, every task's Q, ranks, weights and aggregate recomputed);
  task_rank_ci_*, task_p_first from resampling tasks (stats.task_bootstrap); average_rank: the mean
  rank over tasks that the Friedman test and the diagram use.
pairs: a is the better-ranked run of each pair; positive differences mean a is better. Per task:
  mean_diff of the paired fold scores (a - b), its interval and p-value from the Nadeau-Bengio
  corrected t-test, and q_diff (Q_a - Q_b) with a fold-bootstrap percentile interval. task
  `overall`: mean_diff = weighted_score_b - weighted_score_a with the bootstrap's normal interval
  and p-value, q_diff the difference of mean Q. p_adjusted: Holm within each task's family of
  pairs (and within overall's); significant: p_adjusted < 1 - confidence. The intervals are per
  comparison, not adjusted.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neuco_jax import stats
from neuco_jax.errors import InputError
from neuco_jax.fold_scores import read_fold_scores
from neuco_jax.leaderboard import Q_PREFIX, rank_runs, read_runs, runs_table
from neuco_jax.results import SUMMARY_FILE, method_name
from neuco_jax.results import atomic_write_bytes, atomic_write_text, check_name, timestamp

RANK_COLUMNS = ["experiment", "aggregated_rank", "rank_ci_low", "rank_ci_high", "weighted_score",
                "weighted_score_ci_low", "weighted_score_ci_high", "p_first",
                "task_rank_ci_low", "task_rank_ci_high", "task_p_first", "average_rank", "method"]
PAIR_COLUMNS = ["experiment_a", "experiment_b", "task", "mean_diff", "ci_low", "ci_high", "p_value",
                "p_adjusted", "significant", "q_diff", "q_ci_low", "q_ci_high"]
OVERALL = "overall"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The statistics of one set of runs, in leaderboard order (best first).

    board: leaderboard.rank_runs of the runs; names: display names (method names, the run's full
      name where two runs share a method); tasks; run_dirs
    scores: (runs, tasks, folds) fold scores, NaN for failed folds; ratio: (runs, tasks) n_test / n_train
    ranks, pairs: the two tables (module docstring); friedman: stats.Friedman over tasks
    """

    phase: str
    weighting: str
    confidence: float
    resamples: int
    seed: int
    board: pd.DataFrame
    names: list[str]
    tasks: list[str]
    run_dirs: list[Path]
    scores: np.ndarray
    ratio: np.ndarray
    ranks: pd.DataFrame
    pairs: pd.DataFrame
    friedman: stats.Friedman

    @property
    def experiments(self) -> list[str]:
        return list(self.board["experiment"])

    def cliques(self) -> list[list[int]]:
        """Groups of runs (indices, best first) that the Nemenyi test does not separate."""
        return stats.cliques(self.friedman.average_rank, self.friedman.critical_difference)


def compare(output_dir, phase, runs=None, confidence=0.95, resamples=2000, seed=0, weighting="std",
            latest=False, allow_mixed_protocols=False) -> Comparison:
    """Reads a phase's complete runs (or the named subset) and computes their statistics.

    Args:
      output_dir, phase: where the runs are, as for the leaderboard.
      runs: names of the runs to compare, each a run folder's name or a method name that names one
        run (after `latest`); None compares every complete run.
      confidence: of every interval, and 1 - the level at which Holm-adjusted p-values are significant.
      resamples, seed: the bootstrap's; the same seed gives the same tables.
      weighting, latest, allow_mixed_protocols: as for the leaderboard.

    Returns:
      Comparison.

    Raises:
      InputError: a bad argument, an unknown run name, fewer than two complete runs, a run without fold
        scores, or runs that did not hold out the same folds; one line naming the run or file and the fix.
    """
    summaries = read_runs(output_dir, phase, latest)
    if runs is not None:
        summaries = select_runs(summaries, runs, Path(output_dir) / phase)
    return compare_runs(summaries, phase, confidence, resamples, seed, weighting, allow_mixed_protocols)


def select_runs(summaries, names, where, flag="--runs"):
    """The summaries named by `names` (run folder names, or method names with one run each); `flag` for errors."""
    by_run = {s["run_dir"].name: s for s in summaries}
    chosen = []
    for name in names:
        if name in by_run:
            chosen.append(by_run[name])
            continue
        matches = [s for s in summaries if method_name(s["run_dir"].name) == name]
        if len(matches) != 1:
            found = ", ".join(s["run_dir"].name for s in matches) or "none"
            raise InputError(f"{where}: {flag} {name!r} names {len(matches)} complete runs ({found}); "
                             f"give a run folder's name, or add --latest to keep the newest run of each method")
        chosen.append(matches[0])
    return list({id(s): s for s in chosen}.values())


def compare_runs(summaries, phase, confidence=0.95, resamples=2000, seed=0, weighting="std",
                 allow_mixed_protocols=False) -> Comparison:
    """The statistics of runs as leaderboard.read_runs returns them (see compare)."""
    check_options(confidence, resamples, seed)
    board = rank_runs(runs_table(summaries, allow_mixed_protocols), weighting)
    if len(board) < 2:
        where = summaries[0]["run_dir"].parent if summaries else phase
        raise InputError(f"{where}: compare needs at least two complete runs (runs with every task's Q), "
                         f"found {len(board)}; evaluate more methods into this phase or name others with --runs")
    ordered = in_board_order(summaries, board)
    tasks = [c[len(Q_PREFIX):] for c in board.columns if c.startswith(Q_PREFIX)]
    scores, ratio = fold_arrays(ordered, tasks)
    q = board[[Q_PREFIX + t for t in tasks]].to_numpy(np.float64)  # (runs, tasks), as ranked
    _check_q(q, stats.q_of(scores), ordered, tasks)

    fold = stats.fold_bootstrap(scores, ratio, resamples, seed, weighting)
    by_task = stats.task_bootstrap(q, resamples, seed, weighting)
    fried = stats.friedman(q, confidence)
    tail = (1 - confidence) / 2
    low, high = tail, 1 - tail

    def interval(draws, method="linear"):
        return np.quantile(draws, [low, high], axis=0, method=method)

    rank_lo, rank_hi = interval(fold.rank, "inverted_cdf")
    task_lo, task_hi = interval(by_task.rank, "inverted_cdf")
    weighted_lo, weighted_hi = interval(fold.weighted)
    names = display_names(list(board["experiment"]))
    ranks = pd.DataFrame({
        "experiment": board["experiment"], "aggregated_rank": board["aggregated_rank"],
        "rank_ci_low": rank_lo.astype(int), "rank_ci_high": rank_hi.astype(int),
        "weighted_score": board["weighted_score"], "weighted_score_ci_low": weighted_lo,
        "weighted_score_ci_high": weighted_hi, "p_first": fold.p_first(),
        "task_rank_ci_low": task_lo.astype(int), "task_rank_ci_high": task_hi.astype(int),
        "task_p_first": by_task.p_first(), "average_rank": fried.average_rank, "method": names})
    if "protocol" in board.columns:
        ranks["protocol"] = board["protocol"]
    pairs = _pairs(board, tasks, scores, ratio, fold, confidence)
    return Comparison(phase, weighting, confidence, resamples, seed, board.reset_index(drop=True), names, tasks,
                      [s["run_dir"] for s in ordered], scores, ratio, ranks, pairs, fried)


def check_options(confidence, resamples, seed):
    """Raises InputError for a confidence outside (0, 1), fewer than one resample or a negative seed."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InputError(f"confidence (--confidence) {confidence!r}: expected a number between 0 and 1, e.g. 0.95")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise InputError(f"resamples (--resamples) {resamples!r}: expected a positive integer, e.g. 2000")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed (--seed) {seed!r}: expected a non-negative integer")


def in_board_order(summaries, board):
    """The summaries of the board's runs, in its order; two runs of one experiment name are an error."""
    by_name = {}
    for run in summaries:
        other = by_name.setdefault(run["experiment"], run)
        if other is not run:
            raise InputError(f"{run['run_dir'] / SUMMARY_FILE}: experiment {run['experiment']!r} is also the name "
                             f"of the run in {other['run_dir']}; delete or re-run one of the two")
    return [by_name[e] for e in board["experiment"]]


def display_names(experiments):
    """Method names (run folder names without their stamp), the full name where two runs share a method."""
    methods = [method_name(e) for e in experiments]
    return [m if methods.count(m) == 1 else e for m, e in zip(methods, experiments)]


def fold_arrays(runs, tasks):
    """Fold scores (runs, tasks, folds) and n_test / n_train (runs, tasks) of runs (read_runs dicts).

    Raises:
      InputError: a run has no fold scores, or two runs differ in a task's number of folds or
        held-out rows (they were not scored on the same folds).
    """
    folds = [read_fold_scores(run["run_dir"], tasks) for run in runs]
    first = folds[0]
    k = len(first.scores[tasks[0]])
    scores = np.empty((len(runs), len(tasks), k))
    ratio = np.empty((len(runs), len(tasks)))
    for t, task in enumerate(tasks):
        n0 = first.n_test[task]
        for r, (run, f) in enumerate(zip(runs, folds)):
            n = f.n_test[task]
            if len(f.scores[task]) != k or (n is not None and n0 is not None and n != n0):
                raise InputError(
                    f"{f.source}: task {task!r} has {len(f.scores[task])} folds holding out {n} rows, but "
                    f"{first.source} has {len(first.scores[task])} holding out {n0}; compare only runs scored on "
                    f"the same folds (same k_folds, seed, labels, exclude list), e.g. with --runs")
            scores[r, t] = f.scores[task]
            ratio[r, t] = f.ratio(task, (run["config"] or {}).get("label_fraction", 1.0))
    return scores, ratio


def _check_q(q, recomputed, runs, tasks):
    """Warns where the fold scores do not give the summary's Q (a file edited or written elsewhere)."""
    off = ~np.isclose(q, recomputed, rtol=1e-6, atol=1e-9)
    for r, t in zip(*np.nonzero(off)):
        warnings.warn(f"{runs[r]['run_dir']}: the fold scores of task {tasks[t]!r} give Q {recomputed[r, t]:.6g}, "
                      f"its {SUMMARY_FILE} says {q[r, t]:.6g}; the intervals use the fold scores", stacklevel=4)


def _pairs(board, tasks, scores, ratio, fold, confidence):
    """The pairs table (module docstring): a before b in leaderboard order, tasks then overall."""
    n_runs, n_tasks, _ = scores.shape
    a, b = (np.array(x, int) for x in zip(*itertools.combinations(range(n_runs), 2)))  # (pairs,)
    # (pairs, tasks) each
    mean, lo, hi, p = stats.nadeau_bengio(scores[a] - scores[b], (ratio[a] + ratio[b]) / 2, confidence)
    tail = (1 - confidence) / 2
    q_draws = fold.q[:, a] - fold.q[:, b]                                 # (resamples, pairs, tasks)
    q_lo, q_hi = np.quantile(q_draws, [tail, 1 - tail], axis=0)
    q_obs = board[[Q_PREFIX + t for t in tasks]].to_numpy(np.float64)
    weighted = board["weighted_score"].to_numpy(np.float64)
    overall = weighted[b] - weighted[a]
    o_lo, o_hi, o_p = stats.normal_test(overall, fold.weighted[:, b] - fold.weighted[:, a], confidence)
    mean_q = fold.q.mean(axis=2)                                          # (resamples, runs)
    mq_lo, mq_hi = np.quantile(mean_q[:, a] - mean_q[:, b], [tail, 1 - tail], axis=0)

    # (pairs, tasks + 1): the overall comparison as one more task column.
    cols = {"mean_diff": np.column_stack([mean, overall]), "ci_low": np.column_stack([lo, o_lo]),
            "ci_high": np.column_stack([hi, o_hi]), "p_value": np.column_stack([p, o_p]),
            "q_diff": np.column_stack([q_obs[a] - q_obs[b], q_obs[a].mean(1) - q_obs[b].mean(1)]),
            "q_ci_low": np.column_stack([q_lo, mq_lo]), "q_ci_high": np.column_stack([q_hi, mq_hi])}
    cols["p_adjusted"] = np.column_stack([stats.holm(column) for column in cols["p_value"].T])
    experiments = board["experiment"].to_numpy()
    table = pd.DataFrame({
        "experiment_a": np.repeat(experiments[a], n_tasks + 1), "experiment_b": np.repeat(experiments[b], n_tasks + 1),
        "task": np.tile([*tasks, OVERALL], len(a)), **{k: v.ravel() for k, v in cols.items()}})
    table["significant"] = table["p_adjusted"] < 1 - confidence
    return table[PAIR_COLUMNS]


def save_comparison(comparison, output_dir, stamp=None) -> dict[str, Path]:
    """Writes ranks_, pairs_ (CSV) and cd_ (PNG, SVG) files of a Comparison beside the phase's leaderboards.

    Returns:
      {"ranks": path, "pairs": path, "cd_png": path, "cd_svg": path}.
    """
    folder = Path(output_dir) / "leaderboards" / check_name("phase", comparison.phase)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = stamp or timestamp()
    paths = {"ranks": folder / f"ranks_{stamp}.csv", "pairs": folder / f"pairs_{stamp}.csv",
             "cd_png": folder / f"cd_{stamp}.png", "cd_svg": folder / f"cd_{stamp}.svg"}
    atomic_write_text(paths["ranks"], comparison.ranks.to_csv(index=False))
    atomic_write_text(paths["pairs"], comparison.pairs.to_csv(index=False))
    from neuco_jax.report_figures import cd_figure, figure_bytes

    figure = cd_figure(comparison)
    atomic_write_bytes(paths["cd_png"], figure_bytes(figure, "png"))
    atomic_write_bytes(paths["cd_svg"], figure_bytes(figure, "svg"))
    return paths


def format_comparison(comparison) -> str:
    """The ranks with their intervals, the Friedman test and the significant overall pairs, for the terminal."""
    c = comparison
    pct = f"{100 * c.confidence:g}%"
    lines = [f"{'rank':>4} {pct + ' CI':>9} {'method':<28} {'weighted':>8} {pct + ' CI':>17} {'P(first)':>8} "
             f"{'tasks CI':>9}"]
    for row, name in zip(c.ranks.itertuples(index=False), c.names):
        weighted_ci = f"{row.weighted_score_ci_low:.3f}-{row.weighted_score_ci_high:.3f}"
        lines.append(f"{row.aggregated_rank:>4} {f'{row.rank_ci_low}-{row.rank_ci_high}':>9} {name[:28]:<28} "
                     f"{row.weighted_score:>8.3f} {weighted_ci:>17} "
                     f"{row.p_first:>8.3f} {f'{row.task_rank_ci_low}-{row.task_rank_ci_high}':>9}")
    f = c.friedman
    test = ("Friedman: needs 3 runs or more" if math.isnan(f.p_value)
            else f"Friedman chi2 = {f.statistic:.2f}, p = {f.p_value:.3g}")
    lines.append(f"{test} over {f.n_tasks} tasks; Nemenyi critical difference {f.critical_difference:.2f} "
                 f"(average ranks) at {pct}")
    overall = c.pairs[(c.pairs["task"] == OVERALL) & c.pairs["significant"]]
    name = dict(zip(c.experiments, c.names))
    lines.append(f"significant overall differences (Holm, {pct}): "
                 + (", ".join(f"{name[r.experiment_a]} > {name[r.experiment_b]}" for r in overall.itertuples())
                    or "none"))
    return "\n".join(lines)
