"""Agreement between probes: do leaderboards of the same methods under other probe kinds rank them alike?

Host side (numpy, pandas). Each phase is one probe kind's leaderboard of the same submissions, scored
on the same folds (`sweep --configs` writes one phase `<phase>_<config stem>` per config). Methods are
matched by method name, the newest complete run of each (as `leaderboard --latest`). For two phases A
and B and the n methods ranked in both, with aggregated ranks a, b of shape (n,) read off each phase's
own leaderboard (every method of the phase ranked, then the shared ones kept):

    kendall_tau   tau-b = sum_{i<j} sgn(a_i - a_j) sgn(b_i - b_j) / sqrt(n_a n_b),
                  n_a = #{i<j : a_i != a_j} (pairs not tied in A), n_b likewise (scipy.stats.kendalltau's)
    spearman_rho  Pearson's correlation of the average ranks (ties averaged) of a and b
    top1_same     the shared methods ranked best in A are those ranked best in B

Intervals come from the fold bootstrap (neuco_jax.stats.fold_bootstrap): with one seed, every phase
draws the same fold multiplicities c[r, t, j] (resamples, tasks, folds), since the draw depends only
on the seed, the number of resamples, tasks and folds, and the phases rank the same tasks on the same
folds. Resample r of A and resample r of B thus look at the same folds (the pairing holds); each
recomputes its phase's Q, task weights and aggregated ranks, and tau*[r], rho*[r] are taken between
the two resampled rankings of the shared methods. Intervals are percentiles of these (a resample in
which every shared method ties in one phase has no tau and is left out). A method's rank interval in a
phase is the percentile (inverted cdf) interval of its resampled aggregated rank, as neuco_jax.compare's
rank_ci; a method **moves beyond its intervals** between A and B when its two intervals do not overlap.

Same folds: the phases' runs must share k_folds, seed, labels_fingerprint and exclude_fingerprint
(neuco_jax.protocol), every task's fold count and held-out rows (fold_scores.csv), and the tasks.

Files, beside the leaderboards, in <output_dir>/leaderboards/agreement/:

    agreement_<ts>.csv         one row per pair of phases (PAIR_COLUMNS)
    ranks_by_probe_<ts>.csv    one row per method: rank and rank interval per phase, max_rank_change, moved
    slope_<ts>.png, .svg       methods' ranks from phase to phase
    siblings_<base>.json       {"base": ..., "phases": [...]}, written by sweep --configs: the report of
                               any of these phases shows their agreement (sibling_phases)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neuco_jax import stats
from neuco_jax.compare import check_options, fold_arrays, in_board_order
from neuco_jax.errors import InputError
from neuco_jax.fold_scores import read_fold_scores
from neuco_jax.leaderboard import Q_PREFIX, rank_runs, read_runs, runs_table
from neuco_jax.results import SUMMARY_FILE, method_name
from neuco_jax.results import atomic_write_bytes, atomic_write_text, check_name, timestamp

AGREEMENT_DIR = "agreement"  # <output_dir>/leaderboards/agreement/
SIBLINGS_PREFIX = "siblings_"
PAIR_COLUMNS = ["phase_a", "phase_b", "n_methods", "kendall_tau", "kendall_tau_ci_low", "kendall_tau_ci_high",
                "spearman_rho", "spearman_ci_low", "spearman_ci_high", "top1_same"]
# The protocol keys that decide which rows each fold holds out (neuco_jax.protocol).
FOLD_KEYS = ("k_folds", "seed", "labels_fingerprint", "exclude_fingerprint")


@dataclasses.dataclass(frozen=True)
class PhaseRanks:
    """One phase's leaderboard and its fold bootstrap, in leaderboard order (best first).

    methods: (methods,) method names; rank: (methods,) int aggregated ranks, as on the leaderboard
    draws: (resamples, methods) int resampled aggregated ranks; ci_low, ci_high: (methods,) rank interval
    tasks: the ranked tasks; summary: the results_summary.json of its best run (named in messages)
    protocol: that run's protocol (neuco_jax.protocol.protocol_of), which every ranked run of the phase shares
    """

    phase: str
    methods: list[str]
    rank: np.ndarray
    draws: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tasks: list[str]
    summary: Path
    protocol: dict


@dataclasses.dataclass(frozen=True)
class Agreement:
    """The agreement of several phases' leaderboards (module docstring).

    pairs: one row per pair of phases (PAIR_COLUMNS)
    ranks: ranks_by_probe, one row per method (method, rank_<phase>, rank_ci_low_<phase>,
      rank_ci_high_<phase> per phase, empty where a phase lacks the method; max_rank_change, moved)
    moves: one row per (method, pair of phases) whose rank intervals do not overlap: method, phase_a,
      rank_a, rank_ci_low_a, rank_ci_high_a, phase_b, rank_b, rank_ci_low_b, rank_ci_high_b
    """

    phases: list[str]
    weighting: str
    confidence: float
    resamples: int
    seed: int
    by_phase: list[PhaseRanks]
    pairs: pd.DataFrame
    ranks: pd.DataFrame
    moves: pd.DataFrame


def agreement(output_dir, phases, resamples=2000, seed=0, confidence=0.95, weighting="std") -> Agreement:
    """How alike two or more phases (probe kinds) rank the same methods.

    Args:
      output_dir: the benchmark's output folder; phases: names of two or more phase folders in it.
      resamples, seed: the fold bootstrap's; the same seed gives the same tables.
      confidence: of every interval; weighting: the leaderboards', "std" or "uniform".

    Returns:
      Agreement.

    Raises:
      InputError: fewer than two phases, a phase given twice or not found, a phase without complete runs
        or mixing protocols, two phases sharing fewer than two methods, ranking other tasks or not
        holding out the same folds; one line naming the phase or files and the fix.
    """
    phases = list(phases)
    check_options(confidence, resamples, seed)
    if len(phases) < 2:
        raise InputError(f"agreement needs at least two phases (--phases A B ...), got {len(phases)}: "
                         f"{', '.join(phases) or 'none'}; name the phases of the other probe kinds too")
    twice = next((p for p in phases if phases.count(p) > 1), None)
    if twice is not None:
        raise InputError(f"phase {twice!r} is given twice in --phases; name each phase once")
    by_phase = [_phase_ranks(output_dir, check_name("phase", p), resamples, seed, confidence, weighting)
                for p in phases]
    first = by_phase[0]
    for other in by_phase[1:]:
        _check_same_folds(first, other)
    for a, b in itertools.combinations(by_phase, 2):
        if len(set(a.methods) & set(b.methods)) < 2:
            raise InputError(f"phases {a.phase!r} ({', '.join(a.methods)}) and {b.phase!r} ({', '.join(b.methods)}) "
                             f"share {len(set(a.methods) & set(b.methods))} method(s) by name, an agreement needs "
                             "at least two; evaluate the same submissions under both configs (sweep --configs)")
    tail = (1 - confidence) / 2
    pairs = pd.DataFrame([_pair_row(a, b, tail) for a, b in itertools.combinations(by_phase, 2)],
                         columns=PAIR_COLUMNS)
    moves = _moves(by_phase)
    return Agreement(phases, weighting, confidence, resamples, seed, by_phase, pairs,
                     _ranks_table(by_phase, set(moves["method"])), moves)


def _phase_ranks(output_dir, phase, resamples, seed, confidence, weighting) -> PhaseRanks:
    """Reads a phase's newest run of each method, ranks them and bootstraps the ranking."""
    summaries = read_runs(output_dir, phase, latest=True)
    board = rank_runs(runs_table(summaries), weighting)
    if board.empty:
        raise InputError(f"{Path(output_dir) / phase}: no complete run to rank (a complete run has a "
                         f"{SUMMARY_FILE} with the Q of every task); evaluate the methods into this phase first")
    ordered = in_board_order(summaries, board)
    tasks = [c[len(Q_PREFIX):] for c in board.columns if c.startswith(Q_PREFIX)]
    scores, ratio = fold_arrays(ordered, tasks)                        # (methods, tasks, folds), (methods, tasks)
    draws = stats.fold_bootstrap(scores, ratio, resamples, seed, weighting).rank  # (resamples, methods)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail], axis=0, method="inverted_cdf").astype(int)
    return PhaseRanks(phase, [method_name(s["run_dir"].name) for s in ordered],
                      board["aggregated_rank"].to_numpy(np.int64), draws, low, high, tasks,
                      ordered[0]["run_dir"] / SUMMARY_FILE, ordered[0]["protocol"])


def _check_same_folds(a: PhaseRanks, b: PhaseRanks) -> None:
    """Raises InputError unless phases a and b rank the same tasks on the same held-out folds."""
    if a.tasks != b.tasks:
        only = sorted(set(a.tasks) ^ set(b.tasks))
        raise InputError(f"{a.summary} and {b.summary}: phases {a.phase!r} and {b.phase!r} rank different tasks "
                         f"(only in one: {', '.join(only)}); evaluate both with the same labels and task_filter")
    for key in FOLD_KEYS:
        va, vb = a.protocol.get(key), b.protocol.get(key)
        if va != vb:
            raise InputError(f"{a.summary} and {b.summary}: {key} {va} / {vb}, so phases {a.phase!r} and "
                             f"{b.phase!r} did not hold out the same folds; compare phases evaluated with the "
                             "same k_folds, seed, labels and exclude list")
    fa, fb = (read_fold_scores(p.summary.parent, p.tasks) for p in (a, b))
    for task in a.tasks:
        ka, kb = len(fa.scores[task]), len(fb.scores[task])
        na, nb = fa.n_test[task], fb.n_test[task]
        if ka != kb or (na is not None and nb is not None and na != nb):
            raise InputError(f"{fa.source}: task {task!r} has {ka} folds holding out {na} rows, but {fb.source} "
                             f"has {kb} holding out {nb}, so phases {a.phase!r} and {b.phase!r} did not hold out "
                             "the same folds; compare phases evaluated with the same k_folds, seed, labels and "
                             "exclude list")


def kendall_tau_b(a, b):
    """Kendall's tau-b between a and b along their last axis (..., n); NaN where either is all ties."""
    sa, sb = (np.sign(v[..., :, None] - v[..., None, :]).astype(np.int8)   # (..., n, n)
              for v in (np.asarray(a, np.float64), np.asarray(b, np.float64)))
    # Every pair counted twice (i, j and j, i) in all three sums: the ratio is unchanged.
    concordance = (sa * sb).sum(axis=(-2, -1), dtype=np.int64)
    untied = np.abs(sa).sum(axis=(-2, -1), dtype=np.int64) * np.abs(sb).sum(axis=(-2, -1), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(untied > 0, concordance / np.sqrt(untied), np.nan)


def spearman_rho(a, b):
    """Spearman's rho (ties averaged) between a and b along their last axis (..., n); NaN where either is constant."""
    ra, rb = (_centred_average_ranks(np.asarray(v, np.float64)) for v in (a, b))
    scale = np.sqrt((ra ** 2).sum(axis=-1) * (rb ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (ra * rb).sum(axis=-1) / scale, np.nan)


def _centred_average_ranks(x):
    """Ranks 1..n of x (..., n) along the last axis, ties averaged, minus their mean (n + 1) / 2."""
    less = (x[..., None, :] < x[..., :, None]).sum(axis=-1)
    equal = (x[..., None, :] == x[..., :, None]).sum(axis=-1)
    return less + (equal + 1) / 2 - (x.shape[-1] + 1) / 2


def _shared(a: PhaseRanks, b: PhaseRanks):
    """Indices into a's and b's methods of the methods both rank, in a's order."""
    where_b = {m: i for i, m in enumerate(b.methods)}
    ia = [i for i, m in enumerate(a.methods) if m in where_b]
    return np.array(ia), np.array([where_b[a.methods[i]] for i in ia])


def _pair_row(a: PhaseRanks, b: PhaseRanks, tail: float) -> dict:
    """One row of the pairs table (PAIR_COLUMNS)."""
    ia, ib = _shared(a, b)
    ra, rb = a.rank[ia], b.rank[ib]                                       # (shared,)
    tau_draws = kendall_tau_b(a.draws[:, ia], b.draws[:, ib])             # (resamples,)
    rho_draws = spearman_rho(a.draws[:, ia], b.draws[:, ib])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                   # every resample tied: NaN interval
        tau_lo, tau_hi = np.nanquantile(tau_draws, [tail, 1 - tail])
        rho_lo, rho_hi = np.nanquantile(rho_draws, [tail, 1 - tail])
    top_a = {a.methods[i] for i, r in zip(ia, ra) if r == ra.min()}
    top_b = {b.methods[i] for i, r in zip(ib, rb) if r == rb.min()}
    return {"phase_a": a.phase, "phase_b": b.phase, "n_methods": len(ia),
            "kendall_tau": float(kendall_tau_b(ra, rb)), "kendall_tau_ci_low": tau_lo, "kendall_tau_ci_high": tau_hi,
            "spearman_rho": float(spearman_rho(ra, rb)), "spearman_ci_low": rho_lo, "spearman_ci_high": rho_hi,
            "top1_same": top_a == top_b}


def _moves(by_phase) -> pd.DataFrame:
    """The (method, pair of phases) whose rank intervals do not overlap."""
    rows = []
    for a, b in itertools.combinations(by_phase, 2):
        for i, j in zip(*_shared(a, b)):
            if a.ci_high[i] < b.ci_low[j] or b.ci_high[j] < a.ci_low[i]:
                rows.append({"method": a.methods[i], "phase_a": a.phase, "rank_a": int(a.rank[i]),
                             "rank_ci_low_a": int(a.ci_low[i]), "rank_ci_high_a": int(a.ci_high[i]),
                             "phase_b": b.phase, "rank_b": int(b.rank[j]), "rank_ci_low_b": int(b.ci_low[j]),
                             "rank_ci_high_b": int(b.ci_high[j])})
    return pd.DataFrame(rows, columns=["method", "phase_a", "rank_a", "rank_ci_low_a", "rank_ci_high_a",
                                       "phase_b", "rank_b", "rank_ci_low_b", "rank_ci_high_b"])


def _ranks_table(by_phase, moved) -> pd.DataFrame:
    """ranks_by_probe: one row per method of any phase, ordered by its ranks phase by phase, then name."""
    where = [{m: i for i, m in enumerate(p.methods)} for p in by_phase]
    methods = sorted({m for p in by_phase for m in p.methods},
                     key=lambda m: (*(p.rank[w[m]] if m in w else np.inf for p, w in zip(by_phase, where)), m))
    table = pd.DataFrame({"method": methods})
    for p, w in zip(by_phase, where):
        for column, values in ((f"rank_{p.phase}", p.rank), (f"rank_ci_low_{p.phase}", p.ci_low),
                               (f"rank_ci_high_{p.phase}", p.ci_high)):
            table[column] = pd.array([values[w[m]] if m in w else None for m in methods], dtype="Int64")
    ranks = table[[f"rank_{p.phase}" for p in by_phase]]
    table["max_rank_change"] = (ranks.max(axis=1) - ranks.min(axis=1)).astype("Int64")
    table["moved"] = table["method"].isin(moved)
    return table


def save_agreement(result: Agreement, output_dir, stamp=None) -> dict[str, Path]:
    """Writes agreement_, ranks_by_probe_ (CSV) and slope_ (PNG, SVG) files to <output_dir>/leaderboards/agreement/.

    Returns:
      {"agreement": path, "ranks_by_probe": path, "slope_png": path, "slope_svg": path}.
    """
    from neuco_jax.report_figures import figure_bytes, slope_figure

    folder = Path(output_dir) / "leaderboards" / AGREEMENT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = stamp or timestamp()
    paths = {"agreement": folder / f"agreement_{stamp}.csv", "ranks_by_probe": folder / f"ranks_by_probe_{stamp}.csv",
             "slope_png": folder / f"slope_{stamp}.png", "slope_svg": folder / f"slope_{stamp}.svg"}
    figure = slope_figure(result)
    files = {paths["agreement"]: result.pairs.to_csv(index=False).encode("utf-8"),
             paths["ranks_by_probe"]: result.ranks.to_csv(index=False).encode("utf-8"),
             paths["slope_png"]: figure_bytes(figure, "png"), paths["slope_svg"]: figure_bytes(figure, "svg")}
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return paths


def format_agreement(result: Agreement) -> str:
    """The pairs of phases and the methods that moved beyond their rank intervals, for the terminal."""
    pct = f"{100 * result.confidence:g}%"
    lines = [f"{'phase_a':<24} {'phase_b':<24} {'methods':>7} {'tau':>6} {pct + ' CI':>13} {'rho':>6} "
             f"{pct + ' CI':>13} {'top1':>5}"]
    for r in result.pairs.itertuples(index=False):
        lines.append(f"{r.phase_a[:24]:<24} {r.phase_b[:24]:<24} {r.n_methods:>7} {r.kendall_tau:>6.3f} "
                     f"{f'{r.kendall_tau_ci_low:.2f}..{r.kendall_tau_ci_high:.2f}':>13} {r.spearman_rho:>6.3f} "
                     f"{f'{r.spearman_ci_low:.2f}..{r.spearman_ci_high:.2f}':>13} "
                     f"{'same' if r.top1_same else 'diff':>5}")
    moved = [f"{m.method} ({m.phase_a} {m.rank_a} [{m.rank_ci_low_a}-{m.rank_ci_high_a}], "
             f"{m.phase_b} {m.rank_b} [{m.rank_ci_low_b}-{m.rank_ci_high_b}])" for m in result.moves.itertuples()]
    lines.append(f"moved beyond their {pct} rank intervals: " + ("; ".join(moved) or "none"))
    return "\n".join(lines)


def write_siblings(output_dir, base, phases) -> Path:
    """Records that `phases` are one benchmark under several probes (sweep --configs of phase `base`)."""
    folder = Path(output_dir) / "leaderboards" / AGREEMENT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{SIBLINGS_PREFIX}{check_name('phase', base)}.json"
    atomic_write_text(path, json.dumps({"base": base, "phases": list(phases)}, indent=2) + "\n")
    return path


def sibling_phases(output_dir, phase) -> list[str]:
    """The phases of the newest siblings_<base>.json that lists `phase` (itself included); [] if none does.

    A sibling file that cannot be read is skipped with a warning naming it.
    """
    folder = Path(output_dir) / "leaderboards" / AGREEMENT_DIR
    found = []
    for path in sorted(folder.glob(f"{SIBLINGS_PREFIX}*.json")) if folder.is_dir() else ():
        try:
            phases = json.loads(path.read_text(encoding="utf-8"))["phases"]
            if not isinstance(phases, list) or not all(isinstance(p, str) for p in phases):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            warnings.warn(f"{path}: not a list of sibling phases ({{\"base\": ..., \"phases\": [...]}}); ignored, "
                          "delete it or run sweep --configs again", stacklevel=2)
            continue
        if phase in phases:
            found.append((path.stat().st_mtime_ns, path.name, phases))
    return max(found)[2] if found else []
