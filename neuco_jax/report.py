"""HTML report of a phase: leaderboard, per-task Q and scores, rank heatmap, configs.

Host side only. Reads what the runs wrote,

    <output_dir>/<phase>/<run>/results_summary.json          Q and score per task, config
    <output_dir>/<phase>/<run>/<task>/<task>_result.json     mean_score, std_dev, q_stat, optional q_t

ranks the runs as the leaderboard does, and writes one self-contained page (no
scripts, no external fonts, styles or images: the figures are embedded as
base64 PNG) with the same figures as PNG files beside it:

    <output_dir>/reports/<phase>/report.html
    <output_dir>/reports/<phase>/{q_by_task,scores_by_task,rank_heatmap}.png

matplotlib is imported inside write_report only, so the command line pays its
import cost for `report` alone.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import warnings
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

from neuco_jax.errors import InputError
from neuco_jax.leaderboard import (ACC_PREFIX, Q_PREFIX, SUMMARY_FILE, aggregate_ranks, rank_runs,
                                   read_runs, runs_table)
from neuco_jax.protocol import group_protocols
from neuco_jax.results import atomic_write_bytes, check_name
from neuco_jax.scores import q_statistic

REPORT_FILE = "report.html"
# File name -> what the figure shows; the page shows them in this order.
FIGURES = {
    "q_by_task.png": "Q per task (error bars: jackknife standard error over folds, when fold scores were saved)",
    "scores_by_task.png": "Mean score per task (error bars: standard deviation over folds)",
    "rank_heatmap.png": "Rank of each run on each task (1 = best Q); task weights in brackets",
}


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

    @property
    def experiments(self) -> list[str]:
        return list(self.board["experiment"])


def write_report(output_dir, phase, weighting="std", out=None, latest=False, allow_mixed_protocols=False) -> Path:
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

    Returns:
      Path of the HTML file.

    Raises:
      InputError: the phase folder is missing, a result file is broken, no
        run of the phase has every task, or (without allow_mixed_protocols) the
        runs differ in protocol.
    """
    results = load_phase(output_dir, phase, weighting, latest, allow_mixed_protocols)
    out = Path(out) if out is not None else Path(output_dir) / "reports" / check_name("phase", phase) / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = render_figures(results)
    for name, png in figures.items():
        atomic_write_bytes(out.parent / name, png)
    atomic_write_bytes(out, page_html(results, figures, out.parent).encode("ascii", "xmlcharrefreplace"))
    return out


def load_phase(output_dir, phase, weighting="std", latest=False, allow_mixed_protocols=False) -> PhaseResults:
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
    folders = _run_folders(summaries)
    run_dirs = [folders[e][0] for e in board["experiment"]]
    configs = [folders[e][1] for e in board["experiment"]]

    q = board[[Q_PREFIX + t for t in tasks]].to_numpy(np.float64)
    ranks, weights, _ = aggregate_ranks(q, weighting)
    task_results = [[_read_task_result(run_dir, task) for task in tasks] for run_dir in run_dirs]
    n_runs, n_tasks = q.shape
    # At least one fold column, all NaN when no run saved its fold scores.
    k = max([1] + [len(r.get("q_t") or ()) for row in task_results for r in row if r])
    folds = np.full((n_runs, n_tasks, k), np.nan)  # (runs, tasks, folds), NaN-padded
    mean = board[[ACC_PREFIX + t for t in tasks]].to_numpy(np.float64, copy=True)
    std = np.full((n_runs, n_tasks), np.nan)
    for r, row in enumerate(task_results):
        for t, result in enumerate(row):
            if result:
                mean[r, t], std[r, t] = result["mean_score"], result["std_dev"]
                fold_scores = result.get("q_t") or ()
                folds[r, t, :len(fold_scores)] = fold_scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no fold scores
        fold_min, fold_max = np.nanmin(folds, axis=-1), np.nanmax(folds, axis=-1)
    unranked = sorted(set(runs["experiment"]) - set(board["experiment"]))
    ranked = set(board["experiment"])
    mixed = group_protocols([run for run in summaries if run["experiment"] in ranked]).differences
    return PhaseResults(phase, weighting, board, tasks, run_dirs, configs, q, jackknife_q_se(folds), mean, std,
                        fold_min, fold_max, np.isfinite(folds).sum(axis=-1), ranks, weights, unranked, mixed)


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


def _run_folders(summaries):
    """{experiment: (run folder, config dict or None)} of the runs `read_runs` returned."""
    folders = {}
    for run in summaries:
        experiment = run["experiment"]
        if experiment in folders:
            raise InputError(f"{run['run_dir'] / SUMMARY_FILE}: experiment {experiment!r} is also the name of the "
                             f"run in {folders[experiment][0]}; delete or re-run one of the two")
        folders[experiment] = (run["run_dir"], run["config"])
    return folders


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


# --- figures ----------------------------------------------------------------------------------

def render_figures(results):
    """The report's figures as PNG bytes, {file name: png}, in the order of FIGURES."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    experiments = results.experiments
    colors = _colors(len(experiments))

    def png(fig):
        FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
        return buffer.getvalue()

    return {
        "q_by_task.png": png(_dot_plot(results.tasks, experiments, colors, results.q, results.q_se,
                                       "Q (higher is better)", "Q per task")),
        "scores_by_task.png": png(_dot_plot(results.tasks, experiments, colors, results.mean,
                                            results.std, "mean score (R\u00b2 or F1)", "Mean score per task")),
        "rank_heatmap.png": png(_rank_heatmap(results)),
    }


def _colors(n):
    """n distinct colours: tab10 up to 10 methods, tab20 beyond (cycled past 20)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _dot_plot(tasks, experiments, colors, values, errors, xlabel, title):
    """One row per task, one dot per run with a horizontal error bar: values, errors of shape (runs, tasks)."""
    from matplotlib.figure import Figure

    n_runs, n_tasks = values.shape
    band = 0.8  # share of a task's row the runs' dots spread over
    row_height = max(0.42, 0.1 * n_runs)
    legend_rows = math.ceil(n_runs / 2)
    fig = Figure(figsize=(7.2, 1.0 + n_tasks * row_height + 0.25 * legend_rows), layout="constrained")
    ax = fig.add_subplot()
    for t in range(0, n_tasks, 2):
        ax.axhspan(t - 0.5, t + 0.5, color="0.95", zorder=0)
    offsets = (np.arange(n_runs) - (n_runs - 1) / 2) * (band / max(n_runs, 1))
    for r in range(n_runs):
        ax.errorbar(values[r], np.arange(n_tasks) + offsets[r], xerr=np.nan_to_num(errors[r]),
                    fmt="o", ms=4.5, color=colors[r], ecolor=colors[r], elinewidth=1.2, capsize=2.5,
                    label=experiments[r], zorder=3)
    ax.axvline(0, color="0.4", lw=0.8, zorder=1)
    ax.set_yticks(np.arange(n_tasks), tasks)
    ax.set_ylim(n_tasks - 0.5, -0.5)  # first task on top
    ax.grid(axis="x", color="0.85", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.legend(loc="outside lower center", ncols=min(n_runs, 2), fontsize=8, frameon=False)
    return fig


def _rank_heatmap(results):
    """Task (rows) x run (columns, leaderboard order) heatmap of the per-task rank, annotated."""
    from matplotlib.figure import Figure

    ranks = results.ranks.T  # (tasks, runs)
    n_tasks, n_runs = ranks.shape
    labels = [f"{rank}. {name}" for rank, name in zip(results.board["aggregated_rank"], results.experiments)]
    longest = max(len(label) for label in labels)
    fig = Figure(figsize=(2.6 + 0.6 * n_runs, 1.4 + 0.3 * n_tasks + 0.05 * longest), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(ranks, cmap="RdYlGn_r", vmin=1, vmax=max(n_runs, 2), aspect="auto")
    for t in range(n_tasks):
        for r in range(n_runs):
            # White on the dark ends of the colour map, black in the light middle.
            shade = (ranks[t, r] - 1) / max(n_runs - 1, 1)
            ax.text(r, t, str(ranks[t, r]), ha="center", va="center", fontsize=9,
                    color="white" if shade < 0.2 or shade > 0.8 else "black")
    ax.set_xticks(np.arange(n_runs), labels, rotation=35, ha="right", rotation_mode="anchor", fontsize=8.5)
    ax.set_yticks(np.arange(n_tasks), [f"{task} [{w:.2f}]" for task, w in zip(results.tasks, results.weights)],
                  fontsize=9)
    ax.set_xticks(np.arange(n_runs + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_tasks + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"Rank per task ({results.weighting} weighting)", loc="left", fontsize=11, fontweight="bold")
    fig.colorbar(image, ax=ax, label="rank (1 = best)", shrink=0.8, ticks=np.arange(1, max(n_runs, 2) + 1))
    return fig


# --- page -------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 24px 32px; color: #1d1d1f; background: #fff; font-size: 14px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta { color: #555; margin: 0 0 4px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
th { background: #f3f4f6; text-align: left; font-weight: 600; vertical-align: bottom; }
td.num, th.num { text-align: right; }
th small { display: block; font-weight: 400; color: #666; }
tbody tr:hover { background: #f8fafc; }
td.best { font-weight: 700; color: #0b6e2b; }
td.task { font-weight: 600; border-right: 1px solid #e4e4e4; vertical-align: top; }
tr.group td { border-top: 2px solid #ccc; }
th.task-head { text-align: center; vertical-align: bottom; padding: 6px 4px; }
th.task-head span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
th.weight { font-weight: 400; color: #666; font-size: 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; flex: 1 1 560px; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12px; max-width: 760px; }
details { margin: 4px 0; }
summary { cursor: pointer; }
pre { background: #f6f8fa; padding: 8px 12px; border-radius: 4px; font-size: 12px; overflow-x: auto; }
a { color: #0645ad; }
.note { color: #8a4b00; }
.warning { color: #8a0000; background: #fff0f0; border: 1px solid #e0a0a0; padding: 8px 12px; }
"""


def page_html(results, figures, folder):
    """The report page as one HTML string; run-folder links are relative to folder (the page's)."""
    e = html.escape
    generated = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    n_runs = len(results.run_dirs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>NeuCo-Bench report: {e(results.phase)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>NeuCo-Bench report: phase {e(results.phase)}</h1>",
        f'<p class="meta">{n_runs} ranked run{"s" if n_runs != 1 else ""}, {len(results.tasks)} tasks, '
        f"{e(results.weighting)} task weighting; generated {e(generated)} by neuco_jax.</p>",
    ]
    if results.mixed_protocols:
        parts.append(f'<p class="warning" id="mixed-protocols"><strong>Warning: these runs were scored under '
                     f"different protocols</strong> ({e(results.mixed_protocols)}), so their ranks are not "
                     "comparable; the protocol column of the leaderboard says which runs share one.</p>")
    if results.unranked:
        parts.append(f'<p class="note">Not ranked (some tasks missing): {e(", ".join(results.unranked))}.</p>')
    parts += _leaderboard_html(results, folder)
    parts.append("<h2>Figures</h2>")
    parts.append('<div class="figures">')
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        # Never wider than drawn (upscaled text looks larger than the rest of the page); narrower
        # where the window is, two to a row from about 1200 pixels.
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # PNG's IHDR
        parts.append(f'<figure style="max-width: {width + 2}px"><img src="data:image/png;base64,{data}" '
                     f'width="{width}" height="{height}" alt="{e(FIGURES[name])}">'
                     f"<figcaption>{e(FIGURES[name])}. Also saved as {e(name)}.</figcaption></figure>")
    parts.append("</div>")
    parts += _task_table_html(results)
    parts += _config_html(results, folder)
    parts.append("</body></html>")
    return "\n".join(parts)


def _fmt(value, digits=3):
    """A number for the tables; an em dash for NaN."""
    return "\u2014" if not np.isfinite(value) else f"{value:.{digits}f}"


def _num_td(value, digits=3, best=False):
    """A right-aligned table cell holding a number, its full value in data-value."""
    cls = "num best" if best else "num"
    return f'<td class="{cls}" data-value="{float(value)!r}">{_fmt(value, digits)}</td>'


def _link(run_dir, folder):
    """Relative, URL-quoted href from the page's folder to a run folder."""
    return html.escape(quote(Path(os.path.relpath(run_dir, folder)).as_posix()) + "/")


def _leaderboard_html(results, folder):
    e = html.escape
    board = results.board
    best = results.q == results.q.max(axis=0)  # (runs, tasks): best Q on each task
    # Task names head their columns sideways, so that eleven tasks fit beside the overall columns;
    # a second header row holds the task weights.
    head = ['<th rowspan="2">rank</th>', '<th rowspan="2">experiment</th>',
            '<th class="num" rowspan="2">weighted score<small>lower is better</small></th>',
            '<th class="num" rowspan="2">mean Q</th>', '<th class="num" rowspan="2">mean score</th>']
    head += [f'<th class="task-head"><span>{e(task)}</span></th>' for task in results.tasks]
    protocols = "protocol" in board.columns
    head += ['<th rowspan="2">protocol</th>'] if protocols else []
    weight_row = "".join(f'<th class="num weight" title="task weight">{w:.2f}</th>' for w in results.weights)
    rows = []
    for r, row in enumerate(board.itertuples(index=False)):
        cells = [f'<td class="num">{int(row.aggregated_rank)}</td>',
                 f'<td><a href="{_link(results.run_dirs[r], folder)}">{e(row.experiment)}</a></td>',
                 _num_td(row.weighted_score), _num_td(row.mean_score, 2), _num_td(row.overall_acc_score)]
        cells += [_num_td(results.q[r, t], 2, best[r, t]) for t in range(len(results.tasks))]
        cells += [f"<td>{e(row.protocol)}</td>"] if protocols else []
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ["<h2>Leaderboard</h2>",
            '<p class="meta">Q per task, best in bold, with the task weights of the ranking below the task '
            "names; mean Q and mean score average over tasks. Experiment names link to their run folders.</p>",
            '<div class="scroll"><table id="leaderboard"><thead><tr>' + "".join(head) + "</tr>"
            f"<tr>{weight_row}</tr></thead><tbody>",
            *rows, "</tbody></table></div>"]


def _task_table_html(results):
    e = html.escape
    with_folds = bool(results.n_folds.any())
    head = ["task", "experiment", "Q", "Q jackknife se", "mean score", "std dev"]
    head += ["min fold", "max fold", "folds"] if with_folds else []
    rows = []
    for t, task in enumerate(results.tasks):
        best = results.q[:, t] == results.q[:, t].max()
        for r, experiment in enumerate(results.experiments):
            cells = [f'<td class="task" rowspan="{len(results.run_dirs)}">{e(task)}</td>'] if r == 0 else []
            cells += [f"<td>{e(experiment)}</td>", _num_td(results.q[r, t], 2, best[r]),
                      _num_td(results.q_se[r, t], 2), _num_td(results.mean[r, t], 4),
                      _num_td(results.std[r, t], 4)]
            if with_folds:
                cells += [_num_td(results.fold_min[r, t], 4), _num_td(results.fold_max[r, t], 4),
                          f'<td class="num">{int(results.n_folds[r, t])}</td>']
            rows.append(('<tr class="group">' if r == 0 else "<tr>") + "".join(cells) + "</tr>")
    note = "" if with_folds else (" Fold scores were not saved (config <code>output_fold_results: false</code>), "
                                  "so Q has no spread and folds no min/max.")
    head_html = "".join((f"<th>{e(h)}</th>" if i < 2 else f'<th class="num">{e(h)}</th>')
                        for i, h in enumerate(head))
    return ["<h2>Per task</h2>",
            f'<p class="meta">Q, and mean score &plusmn; std dev over folds from each run\'s '
            f"&lt;task&gt;_result.json; the best Q of each task in bold.{note}</p>",
            f'<div class="scroll"><table id="per-task"><thead><tr>{head_html}</tr></thead><tbody>',
            *rows, "</tbody></table></div>"]


def _config_html(results, folder):
    e = html.escape
    flat = [_flatten(c) if c is not None else {} for c in results.configs]
    keys = sorted({k for c in flat for k in c})
    # "absent" stands for a key a run's config lacks, so that it differs from any value.
    differing = [k for k in keys if len({json.dumps(c.get(k, "absent")) for c in flat}) > 1]
    parts = ["<h2>Config</h2>"]
    if differing:
        head = "".join(f"<th>{e(k)}</th>" for k in differing)
        rows = "".join(f"<tr><td>{e(experiment)}</td>"
                       + "".join(f"<td>{e(json.dumps(c[k]) if k in c else '')}</td>" for k in differing) + "</tr>"
                       for experiment, c in zip(results.experiments, flat))
        parts += ['<p class="meta">Settings that differ between runs:</p>',
                  f'<div class="scroll"><table id="config-diff"><thead><tr><th>experiment</th>{head}</tr></thead>'
                  f"<tbody>{rows}</tbody></table></div>"]
    elif len(flat) > 1:
        parts.append('<p class="meta">Every run has the same config.</p>')
    parts.append('<p class="meta">Full config of each run:</p>')
    for experiment, run_dir, config in zip(results.experiments, results.run_dirs, results.configs):
        text = json.dumps(config, indent=2, sort_keys=True) if config is not None else "not recorded"
        parts.append(f'<details><summary>{e(experiment)} <small>(<a href="{_link(run_dir, folder)}">'
                     f"{e(run_dir.name)}/</a>)</small></summary><pre>{e(text)}</pre></details>")
    return parts


def _flatten(config, prefix=""):
    """A nested config dict as {"probe_params.learning_rate": value, ...}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
