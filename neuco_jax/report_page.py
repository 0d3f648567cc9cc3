"""The report's page: one self-contained HTML string from a report.PhaseResults and its figures.

No scripts, no external fonts, styles or images: the figures come embedded as base64 PNG. Every
number in a table cell also holds its full value in `data-value`; runs are shown by method name,
their run folder's full name in a tooltip (and in the per-task and config tables).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

from neuco_jax.compare import OVERALL
from neuco_jax.report_figures import AGREEMENT_CAPTION, AGREEMENT_FIGURE, FIGURES

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
td.better { background: #dff3e3; } td.worse { background: #fbe3e3; } td.self { background: #f3f4f6; }
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
    parts += _statistics_html(results)
    parts += _agreement_html(results, figures)
    parts.append("<h2>Figures</h2>")
    parts.append('<div class="figures">')
    parts += [_figure_html(name, figures[name], FIGURES[name]) for name in FIGURES if name in figures]
    parts.append("</div>")
    parts += _task_table_html(results)
    parts += _config_html(results, folder)
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure_html(name, png, caption):
    """One embedded PNG with its caption, never wider than drawn (upscaled text looks larger than the
    rest of the page); narrower where the window is, two to a row from about 1200 pixels."""
    e = html.escape
    data = base64.b64encode(png).decode("ascii")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # PNG's IHDR
    return (f'<figure style="max-width: {width + 2}px"><img src="data:image/png;base64,{data}" '
            f'width="{width}" height="{height}" alt="{e(caption)}">'
            f"<figcaption>{e(caption)}. Also saved as {e(name)}.</figcaption></figure>")


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
    c = results.comparison
    level = f"{100 * c.confidence:g}%" if c is not None else ""
    head = ['<th rowspan="2">rank</th>', '<th rowspan="2">method</th>']
    head += [f'<th class="num" rowspan="2">rank {level} CI<small>folds resampled</small></th>',
             '<th class="num" rowspan="2">P(first)</th>',
             f'<th class="num" rowspan="2">rank {level} CI<small>tasks resampled</small></th>'] if c else []
    head += ['<th class="num" rowspan="2">weighted score<small>lower is better</small></th>',
            '<th class="num" rowspan="2">mean Q</th>', '<th class="num" rowspan="2">mean score</th>']
    head += [f'<th class="task-head"><span>{e(task)}</span></th>' for task in results.tasks]
    protocols = "protocol" in board.columns
    head += ['<th rowspan="2">protocol</th>'] if protocols else []
    weight_row = "".join(f'<th class="num weight" title="task weight">{w:.2f}</th>' for w in results.weights)
    rows = []
    for r, row in enumerate(board.itertuples(index=False)):
        cells = [f'<td class="num">{int(row.aggregated_rank)}</td>',
                 f'<td title="{e(row.experiment)}"><a href="{_link(results.run_dirs[r], folder)}">'
                 f"{e(results.names[r])}</a></td>"]
        if c:
            ranks = c.ranks.iloc[r]
            cells += [f'<td class="num ci">{ranks.rank_ci_low}\u2013{ranks.rank_ci_high}</td>',
                      _num_td(ranks.p_first, 2),
                      f'<td class="num ci">{ranks.task_rank_ci_low}\u2013{ranks.task_rank_ci_high}</td>']
        cells += [_num_td(row.weighted_score), _num_td(row.mean_score, 2), _num_td(row.overall_acc_score)]
        cells += [_num_td(results.q[r, t], 2, best[r, t]) for t in range(len(results.tasks))]
        cells += [f"<td>{e(row.protocol)}</td>"] if protocols else []
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ["<h2>Leaderboard</h2>",
            '<p class="meta">Q per task, best in bold, with the task weights of the ranking below the task '
            "names; mean Q and mean score average over tasks. Method names link to their run folders (hover for "
            f"the run's full name).{_interval_note(c)}</p>",
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
    note = "" if with_folds else (" No run kept its fold scores (runs written by the reference without "
                                  "<code>output_fold_results</code>), so Q has no spread and folds no min/max.")
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


def _interval_note(c):
    if c is None:
        return ""
    return (f" Rank intervals: {100 * c.confidence:g}% of {c.resamples} bootstrap resamples (seed {c.seed}) rank the "
            "run within them; the first resamples every task's folds (the same folds for every run), the second "
            "the tasks (would the order hold on other tasks like these?). P(first): the share of fold resamples "
            "that rank the run first.")


def _statistics_html(results):
    """Friedman and Nemenyi, the overall significance matrix, differences against the baseline, optimism."""
    e = html.escape
    c = results.comparison
    parts = ['<h2 id="statistics">Paired statistics</h2>']
    if c is None:
        parts.append(f'<p class="note" id="no-statistics">No paired statistics: {e(results.stats_note)}.</p>')
        return parts + _optimism_html(results)
    f = c.friedman
    level = f"{100 * c.confidence:g}%"
    test = ("Friedman's test needs three runs or more" if math.isnan(f.p_value) else
            f"Friedman's test over the {f.n_tasks} tasks: chi\u00b2 = {f.statistic:.2f}, p = {f.p_value:.3g}")
    parts.append(f'<p class="meta">{test}; Nemenyi critical difference {f.critical_difference:.2f} average ranks '
                 f"at {level} (the critical-difference figure below). Every run was scored on the same folds, so "
                 "fold scores are paired: the tests below use the differences fold by fold (Nadeau-Bengio "
                 "corrected t-test per task, which allows for the overlap of shuffle-split training sets), and "
                 f"their p-values are Holm-adjusted over the {len(c.names) * (len(c.names) - 1) // 2} pairs of each "
                 "task. All of it is in neuco-jax compare's pairs CSV.</p>")
    pairs = c.pairs.set_index(["experiment_a", "experiment_b", "task"])

    def pair(i, j, task):
        """(difference of run i over run j, positive = i better; low; high; p_adjusted; significant)."""
        a, b, sign = (i, j, 1) if i < j else (j, i, -1)
        row = pairs.loc[(c.experiments[a], c.experiments[b], task)]
        low, high = sorted((sign * row.ci_low, sign * row.ci_high))
        return sign * row.mean_diff, low, high, row.p_adjusted, bool(row.significant)

    n = len(c.names)
    head = "".join(f'<th title="{e(x)}">{e(name)}</th>' for x, name in zip(c.experiments, c.names))
    rows = []
    for i in range(n):
        cells = [f'<th title="{e(c.experiments[i])}">{e(c.names[i])}</th>']
        for j in range(n):
            if i == j:
                cells.append('<td class="self"></td>')
                continue
            diff, low, high, p, sig = pair(i, j, OVERALL)
            cls, mark = ("better", "\u25b2") if sig and diff > 0 else ("worse", "\u25bc") if sig else ("", "\u00b7")
            cells.append(f'<td class="num {cls}" title="weighted-score difference {diff:+.3f} [{low:+.3f}, '
                         f'{high:+.3f}], Holm p = {p:.3g}">{mark}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    parts += [f"<h3>Which runs differ overall ({level}, Holm)</h3>",
              '<p class="meta">\u25b2: the row run ranks better than the column run (its weighted score is lower) '
              "beyond the fold bootstrap's noise; \u25bc: worse; \u00b7: not shown to differ. Hover a cell for the "
              "difference, its interval and the adjusted p-value.</p>",
              f'<div class="scroll"><table id="significance"><thead><tr><th></th>{head}</tr></thead><tbody>',
              *rows, "</tbody></table></div>"]

    base = results.baseline
    rows = []
    for r in range(n):
        if r == base:
            continue
        cells = [f'<td title="{e(c.experiments[r])}">{e(c.names[r])}</td>']
        for task in c.tasks:
            diff, low, high, p, sig = pair(r, base, task)
            cls = ("better" if diff > 0 else "worse") if sig else ""
            cells.append(f'<td class="num {cls}" data-value="{float(diff)!r}" '
                         f'title="{level} CI [{low:+.4f}, {high:+.4f}], Holm p = {p:.3g}">{diff:+.4f}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f'<th class="num">{e(task)}</th>' for task in c.tasks)
    parts += [f"<h3>Against the baseline, {e(c.names[base])}</h3>",
              f'<p class="meta">Mean over folds of each run\'s fold score minus {e(c.names[base])}\'s on the same '
              f"fold; green or red where the difference is significant at {level} after Holm's adjustment "
              "(hover for the interval and p-value). Choose the baseline with --baseline.</p>",
              f'<div class="scroll"><table id="baseline"><thead><tr><th>method</th>{head}</tr></thead><tbody>',
              *rows, "</tbody></table></div>"]
    return parts + _optimism_html(results)


def _optimism_html(results):
    """The selection optimism of `selection: nested` runs, where any run has it."""
    if not results.optimism:
        return []
    e = html.escape
    names = dict(zip(results.experiments, results.names))
    rows = "".join(f'<tr><td title="{e(x)}">{e(names[x])}</td>'
                   + "".join(_num_td(values.get(task, math.nan), 4) for task in results.tasks)
                   + _num_td(np.mean(list(values.values())), 4) + "</tr>"
                   for x, values in results.optimism.items())
    head = "".join(f'<th class="num">{e(task)}</th>' for task in results.tasks)
    return ["<h3>Optimism of the reference's selection</h3>",
            '<p class="meta">For runs made with <code>selection: nested</code>: the mean over folds of the score '
            "the reference's rule reports (the best epoch chosen on the held-out fold itself) minus the nested "
            "score (chosen without looking at it). Positive values are how much the reference's numbers flatter "
            "the probe.</p>",
            f'<div class="scroll"><table id="optimism"><thead><tr><th>method</th>{head}'
            f'<th class="num">mean</th></tr></thead><tbody>{rows}</tbody></table></div>']


def _agreement_html(results, figures):
    """The agreement between the probes of the phase's sibling phases (sweep --configs), where it has any."""
    if not results.siblings:
        return []
    e = html.escape
    parts = ['<h2 id="agreement-section">Agreement between probes</h2>',
             f'<p class="meta">This phase is one of {len(results.siblings)} phases that scored the same submissions '
             f"with different probes ({e(', '.join(results.siblings))}; recorded by sweep --configs).</p>"]
    a = results.agreement
    if a is None:
        return parts + [f'<p class="note" id="no-agreement">No agreement: {e(results.agreement_note)}.</p>']
    level = f"{100 * a.confidence:g}%"

    def interval(low, high):
        return f'<td class="num ci">{_fmt(low, 2)}\u2013{_fmt(high, 2)}</td>'

    rows = "".join(f'<tr><td>{e(r.phase_a)}</td><td>{e(r.phase_b)}</td><td class="num">{r.n_methods}</td>'
                   f"{_num_td(r.kendall_tau)}{interval(r.kendall_tau_ci_low, r.kendall_tau_ci_high)}"
                   f"{_num_td(r.spearman_rho)}{interval(r.spearman_ci_low, r.spearman_ci_high)}"
                   f"<td>{'yes' if r.top1_same else 'no'}</td></tr>" for r in a.pairs.itertuples(index=False))
    parts += [f'<p class="meta">Methods matched by name (the newest run of each); Kendall\'s tau-b and Spearman\'s '
              f"rho between the aggregated ranks of the methods both phases rank, with {level} intervals from "
              f"{a.resamples} fold-bootstrap resamples (seed {a.seed}) drawing the same folds in both phases; top 1: "
              "whether the best of the shared methods is the same.</p>",
              '<div class="scroll"><table id="agreement"><thead><tr><th>phase</th><th>phase</th>'
              f'<th class="num">methods</th><th class="num">Kendall tau</th><th class="num">{level} CI</th>'
              f'<th class="num">Spearman rho</th><th class="num">{level} CI</th><th>same top 1</th></tr></thead>'
              f"<tbody>{rows}</tbody></table></div>"]
    moved = sorted(set(a.moves["method"]))
    detail = "; ".join(f"{m.method}: {m.rank_a} [{m.rank_ci_low_a}\u2013{m.rank_ci_high_a}] in {m.phase_a}, "
                       f"{m.rank_b} [{m.rank_ci_low_b}\u2013{m.rank_ci_high_b}] in {m.phase_b}"
                       for m in a.moves.itertuples(index=False))
    parts.append(f'<p class="{"warning" if moved else "meta"}" id="rank-moves">'
                 + (f"<strong>Ranks that move beyond their {level} rank intervals</strong> (the intervals in two "
                    f"phases do not overlap): {e(', '.join(moved))} ({e(detail)}). The probes disagree about "
                    "these methods beyond the noise of the folds." if moved else
                    f"No method's rank moves beyond its {level} rank intervals between these phases.") + "</p>")
    if AGREEMENT_FIGURE in figures:
        parts.append(_figure_html(AGREEMENT_FIGURE, figures[AGREEMENT_FIGURE], AGREEMENT_CAPTION))
    return parts
