"""The report's figures (and compare's critical-difference diagram, agreement's slope chart), drawn with matplotlib.

Every function returns a matplotlib Figure built without pyplot (no global state, no display);
figure_bytes renders one as PNG or SVG with no date or software stamp, so the same data give the
same bytes. Runs are labelled with their method names (neuco_jax.compare.display_names); the run
folders' full names are in the report's tables.

Score axes are robust: where a few values lie far outside the rest (one R^2 of -50 beside scores
of 0.2-0.9), the axis stops at the quartiles -/+ 3 x max(IQR, a tenth of the quartiles' size), the
values beyond are drawn as triangles at its edge, and the figure says which they are.
"""

from __future__ import annotations

import io
import math

import numpy as np

# Figure file name -> caption; the report shows them in this order (those it has data for).
FIGURES = {
    "q_by_task.png": "Q per task (error bars: jackknife standard error over folds, when fold scores were saved)",
    "scores_by_task.png": "Mean score per task (error bars: standard deviation over folds)",
    "rank_heatmap.png": "Rank of each run on each task (1 = best Q); task weights in brackets",
    "critical_difference.png": "Critical-difference diagram: average rank over tasks (1 = best); runs joined by "
                               "a thick bar are not shown to differ by the Nemenyi test after Friedman's",
    "baseline_differences.png": "Paired difference in fold score against the baseline run, per task, with its "
                                "Nadeau-Bengio interval (right of 0: better than the baseline)",
}
# Shown in the report's agreement section (phases of one sweep --configs), not among FIGURES.
AGREEMENT_FIGURE = "probe_agreement.png"
AGREEMENT_CAPTION = ("Aggregated rank of each method under each probe kind (the sibling phases of one sweep "
                     "--configs); bars: fold-bootstrap rank intervals; thick lines: ranks that move beyond them")
_TITLE = {"fontsize": 11, "fontweight": "bold"}


def figure_bytes(fig, fmt="png"):
    """A Figure rendered as PNG (110 dpi) or SVG bytes, without date or software metadata."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    with rc_context({"svg.hashsalt": "neuco_jax"}):  # SVG element ids from a fixed salt, not a random one
        fig.savefig(buffer, format=fmt, dpi=110, metadata=metadata)
    return buffer.getvalue()


def report_figures(results):
    """The report's figures as PNG bytes, {file name: png}, in the order of FIGURES, then AGREEMENT_FIGURE."""
    colors = _colors(len(results.names))
    figures = {
        "q_by_task.png": _dot_plot(results.tasks, results.names, colors, results.q, results.q_se,
                                   "Q (higher is better)", "Q per task"),
        "scores_by_task.png": _dot_plot(results.tasks, results.names, colors, results.mean, results.std,
                                        "mean score (R\u00b2 or F1)", "Mean score per task"),
        "rank_heatmap.png": _rank_heatmap(results),
    }
    c = results.comparison
    if c is not None:
        figures["critical_difference.png"] = cd_figure(c)
        others = [r for r in range(len(c.names)) if r != results.baseline]
        diff = c.scores[others] - c.scores[results.baseline]                  # (others, tasks, folds)
        from neuco_jax.stats import nadeau_bengio

        ratio = (c.ratio[others] + c.ratio[results.baseline]) / 2
        mean, low, _, _ = nadeau_bengio(diff, ratio, c.confidence)
        figures["baseline_differences.png"] = _dot_plot(
            results.tasks, [c.names[r] for r in others], [colors[r] for r in others], mean, mean - low,
            f"fold score minus {c.names[results.baseline]}'s (paired)",
            f"Against the baseline, {c.names[results.baseline]}")
    if results.agreement is not None:
        figures[AGREEMENT_FIGURE] = slope_figure(results.agreement)
    return {name: figure_bytes(fig) for name, fig in figures.items()}


def _colors(n):
    """n distinct colours: tab10 up to 10 methods, tab20 beyond (cycled past 20)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def robust_limits(values):
    """Axis limits (low, high) that show every value but far outliers; (None, None) when none is far out.

    Far out: beyond the quartiles -/+ 3 x max(IQR, a tenth of the larger quartile's size).
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 4:
        return None, None
    q1, q3 = np.percentile(v, [25, 75])
    scale = max(q3 - q1, 0.1 * max(abs(q1), abs(q3)))
    low, high = q1 - 3 * scale, q3 + 3 * scale
    if scale == 0 or (v.min() >= low and v.max() <= high):
        return None, None
    inside = v[(v >= low) & (v <= high)]
    pad = 0.08 * max(inside.max() - inside.min(), scale)
    return (min(inside.min(), 0) - pad if v.min() < low else None,
            max(inside.max(), 0) + pad if v.max() > high else None)


def _dot_plot(tasks, names, colors, values, errors, xlabel, title):
    """One row per task, one dot per run with a horizontal error bar: values, errors of shape (runs, tasks)."""
    from matplotlib.figure import Figure

    n_runs, n_tasks = values.shape
    band = 0.8  # share of a task's row the runs' dots spread over
    row_height = max(0.42, 0.1 * n_runs)
    legend_rows = math.ceil(n_runs / 2)
    low, high = robust_limits(values)
    clipped = [(r, t) for r, t in zip(*np.nonzero(np.isfinite(values))) if
               (low is not None and values[r, t] < low) or (high is not None and values[r, t] > high)]
    fig = Figure(figsize=(7.2, 1.0 + n_tasks * row_height + 0.25 * legend_rows + 0.2 * bool(clipped)),
                 layout="constrained")
    ax = fig.add_subplot()
    for t in range(0, n_tasks, 2):
        ax.axhspan(t - 0.5, t + 0.5, color="0.95", zorder=0)
    offsets = (np.arange(n_runs) - (n_runs - 1) / 2) * (band / max(n_runs, 1))
    shown = values.copy()
    for r, t in clipped:
        shown[r, t] = np.nan  # drawn as a triangle at the edge below
    for r in range(n_runs):
        ax.errorbar(shown[r], np.arange(n_tasks) + offsets[r], xerr=np.nan_to_num(errors[r]),
                    fmt="o", ms=4.5, color=colors[r], ecolor=colors[r], elinewidth=1.2, capsize=2.5,
                    label=names[r], zorder=3)
    for r, t in clipped:
        below = low is not None and values[r, t] < low
        ax.plot(low if below else high, t + offsets[r], "<" if below else ">", ms=7, color=colors[r],
                clip_on=False, zorder=4)
    ax.axvline(0, color="0.4", lw=0.8, zorder=1)
    ax.set_xlim(low, high)
    ax.set_yticks(np.arange(n_tasks), tasks)
    ax.set_ylim(n_tasks - 0.5, -0.5)  # first task on top
    ax.grid(axis="x", color="0.85", lw=0.6)
    ax.set_axisbelow(True)
    note = ""
    if clipped:
        listed = "; ".join(f"{names[r][:20]} on {tasks[t][:20]} {values[r, t]:.3g}" for r, t in clipped[:3])
        more = f" and {len(clipped) - 3} more" if len(clipped) > 3 else ""
        note = f"\naxis clipped to the robust range; triangles at its edge: {listed}{more}"
    ax.set_xlabel(xlabel + note, fontsize=9)
    ax.set_title(title, loc="left", **_TITLE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.legend(loc="outside lower center", ncols=min(n_runs, 2), fontsize=8, frameon=False)
    return fig


def _rank_heatmap(results):
    """Task (rows) x run (columns, leaderboard order) heatmap of the per-task rank, annotated."""
    from matplotlib.figure import Figure

    ranks = results.ranks.T  # (tasks, runs)
    n_tasks, n_runs = ranks.shape
    labels = [f"{rank}. {name}" for rank, name in zip(results.board["aggregated_rank"], results.names)]
    longest = max(len(label) for label in labels)
    title = f"Rank per task ({results.weighting} weighting)"
    # The title is placed on the figure, not the axes, and the figure is at least as wide as it.
    width = max(2.6 + 0.6 * n_runs, 0.11 * len(title) + 0.4)
    fig = Figure(figsize=(width, 1.6 + 0.3 * n_tasks + 0.05 * longest), layout="constrained")
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
    fig.suptitle(title, x=0.02, ha="left", **_TITLE)
    fig.colorbar(image, ax=ax, label="rank (1 = best)", shrink=0.8, ticks=np.arange(1, max(n_runs, 2) + 1))
    return fig


def cd_figure(comparison):
    """Demsar's (2006) critical-difference diagram of a neuco_jax.compare.Comparison.

    The axis holds the average ranks over tasks (1 = best, on the left); the better half of the runs
    are named on the left, the others on the right; thick bars join runs whose average ranks lie
    within the Nemenyi critical difference (the bar on top) of each other.
    """
    from matplotlib.figure import Figure

    f = comparison.friedman
    names = [n if len(n) <= 24 else n[:23] + "\u2026" for n in comparison.names]
    rank = np.asarray(f.average_rank)
    n = len(names)
    order = list(np.argsort(rank, kind="stable"))
    groups = comparison.cliques()
    left, right = order[:(n + 1) // 2], order[(n + 1) // 2:][::-1]  # the worst of the right half on top
    row0 = 0.6 + 0.3 * len(groups)
    rows = max(len(left), len(right))
    height_units = row0 + 0.55 * rows + 0.3
    fig = Figure(figsize=(max(8.0, 5.0 + 0.2 * n), 1.1 + 0.28 * height_units))
    ax = fig.add_axes((0, 0, 1, 0.86))
    span = max(n - 1, 1)
    edge = 0.12 * span  # where the name lines end, outside the axis
    ax.set_xlim(1 - 1.1 * span, n + 1.1 * span)
    ax.set_ylim(height_units, -1.6)
    ax.axis("off")
    ax.plot([1, n], [0, 0], color="black", lw=1)
    for tick in range(1, n + 1):
        ax.plot([tick, tick], [0, -0.18], color="black", lw=1)
        if n <= 12 or tick == 1 or tick % 5 == 0:  # beyond 12 runs, every fifth label (they would overlap)
            ax.text(tick, -0.28, str(tick), ha="center", va="bottom", fontsize=8)
    cd = f.critical_difference
    ax.plot([1, 1 + cd], [-1.1, -1.1], color="black", lw=1.5)
    for end in (1, 1 + cd):
        ax.plot([end, end], [-1.2, -1.0], color="black", lw=1)
    ax.text(1 + cd / 2, -1.25, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for g, group in enumerate(groups):
        y = 0.35 + 0.3 * g
        ax.plot([rank[group].min() - 0.04, rank[group].max() + 0.04], [y, y], color="black", lw=4,
                solid_capstyle="butt")
    for side, members in (("left", left), ("right", right)):
        for i, m in enumerate(members):
            y = row0 + 0.55 * i
            x_end = 1 - edge if side == "left" else n + edge
            ax.plot([rank[m], rank[m], x_end], [0, y, y], color="0.25", lw=0.9)
            ax.text(x_end + (-0.02 if side == "left" else 0.02) * span, y, f"{names[m]} ({rank[m]:.2f})",
                    ha="right" if side == "left" else "left", va="center", fontsize=8)
    test = ("Friedman: needs 3 runs" if math.isnan(f.p_value) else f"Friedman p = {f.p_value:.2g}")
    fig.suptitle(f"Critical difference (Nemenyi, {100 * f.confidence:g}%), average rank over {f.n_tasks} tasks; "
                 f"{test}", x=0.02, ha="left", fontsize=10, fontweight="bold")
    return fig


def slope_figure(agreement):
    """Each method's aggregated rank from phase to phase (neuco_jax.agreement.Agreement).

    Phases left to right in the given order, rank 1 on top; a vertical bar is the method's fold-bootstrap
    rank interval in that phase. Methods whose intervals in two phases do not overlap (agreement.moves)
    are drawn thick and named in bold; methods sharing a rank are named one under the other.
    """
    from matplotlib.figure import Figure

    table = agreement.ranks
    phases = agreement.phases
    # (methods, phases) each, NaN where a phase does not rank the method
    rank, low, high = (np.column_stack([table[f"{column}_{p}"].to_numpy(np.float64, na_value=np.nan) for p in phases])
                       for column in ("rank", "rank_ci_low", "rank_ci_high"))
    n_methods, n_phases = rank.shape
    colors = _colors(n_methods)
    top = int(np.nanmax(rank))
    longest = max(len(m) for m in table["method"])
    label_width = 0.45 + 0.065 * min(longest, 24)
    fig = Figure(figsize=(1.6 * n_phases + 2 * label_width + 0.6, 1.3 + 0.38 * top), layout="constrained")
    ax = fig.add_subplot()
    spread = 0.16  # the methods' points spread over this much of a phase's x, so that their bars stay apart
    offsets = (np.arange(n_methods) - (n_methods - 1) / 2) * (spread / max(n_methods - 1, 1))
    stacked = {}  # (phase index, rank, side) -> names already written there
    for r, (method, bold) in enumerate(zip(table["method"], table["moved"])):
        xs = np.flatnonzero(np.isfinite(rank[r]))
        ys = rank[r, xs]
        ax.plot(xs + offsets[r], ys, "-o", color=colors[r], lw=2.6 if bold else 1.3, ms=5, zorder=3)
        ax.vlines(xs + offsets[r], low[r, xs], high[r, xs], color=colors[r], lw=3, alpha=0.35, zorder=2)
        name = method if len(method) <= 24 else method[:23] + "\u2026"
        for x, y, side in ((xs[0], ys[0], "right"), (xs[-1], ys[-1], "left")):
            shift = 0.3 * stacked.setdefault((x, y, side), 0)
            stacked[x, y, side] += 1
            edge = x - spread / 2 - 0.06 if side == "right" else x + spread / 2 + 0.06
            ax.text(edge, y + shift, f"{name} ({int(y)})", ha=side, va="center", fontsize=8, color=colors[r],
                    fontweight="bold" if bold else "normal")
    ax.set_xticks(np.arange(n_phases), phases, fontsize=9)
    margin = spread / 2 + 0.1 + label_width / 1.6  # a phase is 1.6 inches wide: the names' width in x units
    ax.set_xlim(-margin, n_phases - 1 + margin)
    ax.set_ylim(top + 0.7, 0.3)
    ax.set_yticks(np.arange(1, top + 1))
    ax.set_ylabel("aggregated rank (1 = best)", fontsize=9)
    ax.grid(axis="y", color="0.9", lw=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"Ranks by probe; bars: {100 * agreement.confidence:g}% fold-bootstrap rank intervals",
                 loc="left", **_TITLE)
    return fig

