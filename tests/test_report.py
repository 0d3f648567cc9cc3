"""Tests of neuco_jax.report: the page is parsed with the stdlib's html.parser and checked
against the JSON files the runs wrote, and rendered in headless Chromium where it is installed."""

import base64
import io
import json
import math
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from neuco_jax.cli import main
from neuco_jax.config import Config
from neuco_jax.errors import InputError
from neuco_jax.fold_scores import FOLD_SCORES_FILE
from neuco_jax.report import jackknife_q_se, write_report
from neuco_jax.report_figures import FIGURES
from neuco_jax.results import write_run
from neuco_jax.scores import task_score

PHASE = "dev"
TASKS = ["biomass_mean", "crops", "random_cls"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fold_scores(level, seed):
    """Three fold scores around level in an order that differs between (run, task), with the same
    spread everywhere, so that Q orders the runs as their levels do."""
    return level + np.random.default_rng(seed).permutation([-0.02, 0.01, 0.03])


def make_phase(output_dir, methods, output_fold_results=True):
    """Writes one run per {method: quality} with hand-made fold scores; returns their folders."""
    folders = []
    for m, (method, quality) in enumerate(methods.items()):
        scores = [task_score(task, "classification" if task.endswith("cls") else "regression",
                             fold_scores(quality * (1 + t) / 3, seed=10 * m + t))
                  for t, task in enumerate(TASKS)]
        # enable_plots differs (listed as a config difference) but is not part of the scoring protocol.
        config = Config(k_folds=3, output_fold_results=output_fold_results, enable_plots=m % 2 == 1)
        folders.append(write_run(output_dir, PHASE, method, scores, config, stamp="20250101_120000"))
    return folders


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A phase of three runs (one with a name that needs escaping) and its report."""
    output_dir = tmp_path_factory.mktemp("results")
    folders = make_phase(output_dir, {"good": 0.8, "fair<b>&": 0.5, "poor": 0.1})
    return output_dir, folders, write_report(output_dir, PHASE)


class PageParser(HTMLParser):
    """Collects the text of every cell (with its data-value) per table id, the img srcs and the hrefs."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.links, self.tags = {}, [], [], []
        self._table = self._section = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), {"head": [], "body": []})
        elif tag in ("thead", "tbody"):
            self._section = "head" if tag == "thead" else "body"
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table[self._section].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = {"text": "", "value": attrs.get("data-value"), "class": attrs.get("class") or "",
                          "title": attrs.get("title")}
            self._row.append(self._cell)
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = self._row = None
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def parse(text):
    parser = PageParser()
    parser.feed(text)
    parser.close()
    return parser


def read_json(path):
    return json.loads(Path(path).read_text())


def numeric_cells(row):
    return [cell for cell in row if "num" in cell["class"]]


def check_number(cell, expected, digits):
    """A cell shows expected rounded to digits, and holds it in full in data-value."""
    assert cell["text"] == f"{expected:.{digits}f}"
    assert float(cell["value"]) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_report_files_are_written_beside_each_other(report):
    output_dir, _, page = report
    assert page == output_dir / "reports" / PHASE / "report.html"
    for name in FIGURES:
        assert (page.parent / name).read_bytes().startswith(PNG_SIGNATURE)
    assert not [p for p in page.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_leaderboard_has_one_row_per_run_with_the_numbers_of_the_json_files(report):
    output_dir, folders, page = report
    rows = parse(page.read_text()).tables["leaderboard"]["body"]
    assert len(rows) == len(folders)
    summaries = {read_json(f / "results_summary.json")["experiment"]: read_json(f / "results_summary.json")
                 for f in folders}
    # Method names shown, the run folder's full name in the tooltip.
    assert sorted(row[1]["title"] for row in rows) == sorted(summaries)
    # Quality decides: good > fair > poor on every task, so ranks are 1, 2, 3 in that order.
    assert [row[1]["text"] for row in rows] == ["good", "fair<b>&", "poor"]
    assert [row[0]["text"] for row in rows] == ["1", "2", "3"]
    for row in rows:
        summary = summaries[row[1]["title"]]
        weighted, mean_q, mean_score, *task_q = numeric_cells(row)[4:]
        check_number(mean_q, np.mean(list(summary["task_q_scores"].values())), 2)
        check_number(mean_score, summary["overall_acc_score"], 3)
        for cell, task in zip(task_q, TASKS, strict=True):
            check_number(cell, summary["task_q_scores"][task], 2)
    # Each run has the same rank on every task, so its weighted score is that rank.
    assert [float(numeric_cells(row)[4]["value"]) for row in rows] == [1.0, 2.0, 3.0]


def test_per_task_table_shows_the_result_files(report):
    _, folders, page = report
    rows = parse(page.read_text()).tables["per-task"]["body"]
    assert len(rows) == len(folders) * len(TASKS)
    by_run = {f.name: f for f in folders}
    for i, row in enumerate(rows):
        task = TASKS[i // len(folders)]  # one row per run under each task, tasks in sorted order
        experiment, = [c["text"] for c in row if c["class"] == ""]
        result = read_json(by_run[experiment] / task / f"{task}_result.json")
        q, q_se, mean, std, low, high, n = numeric_cells(row)
        check_number(q, result["q_stat"], 2)
        check_number(mean, result["mean_score"], 4)
        check_number(std, result["std_dev"], 4)
        check_number(low, min(result["q_t"]), 4)
        check_number(high, max(result["q_t"]), 4)
        assert n["text"] == "3"
        check_number(q_se, plain_jackknife(result["q_t"]), 2)


def plain_jackknife(scores):
    """Jackknife standard error of Q, written out with Python loops over the folds."""
    scores = [s for s in scores if not math.isnan(s)]
    n = len(scores)
    q = []
    for i in range(n):
        rest = scores[:i] + scores[i + 1:]
        mean = sum(rest) / len(rest)
        std = math.sqrt(sum((v - mean) ** 2 for v in rest) / len(rest))
        q.append(2 * mean / (0.02 + std))
    q_bar = sum(q) / n
    return math.sqrt((n - 1) / n * sum((v - q_bar) ** 2 for v in q))


def test_jackknife_matches_a_plain_loop_and_skips_failed_folds():
    folds = np.array([[0.5, 0.6, 0.55, 0.7], [0.2, np.nan, 0.3, 0.25], [0.1, np.nan, np.nan, np.nan]])
    se = jackknife_q_se(folds)
    assert se[0] == pytest.approx(plain_jackknife(list(folds[0])), rel=1e-12)
    assert se[1] == pytest.approx(plain_jackknife(list(folds[1])), rel=1e-12)
    assert math.isnan(se[2])  # one finite fold: no spread


def test_page_is_self_contained_and_its_images_are_pngs(report):
    _, _, page = report
    text = page.read_text()
    for reference in ("<script", "<link", "http://", "https://", "@import", "url("):
        assert reference not in text
    parser = parse(text)
    assert len(parser.images) == len(FIGURES)
    from matplotlib.image import imread

    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE)
        height, width, _ = imread(io.BytesIO(png), format="png").shape
        assert height > 200 and width > 200


def test_text_is_escaped_and_links_lead_to_the_run_folders(report):
    _, folders, page = report
    parser = parse(page.read_text())
    assert "b" not in parser.tags  # the method name "fair<b>&" stays text
    targets = {(page.parent / unquote(href)).resolve() for href in parser.links}
    assert {f.resolve() for f in folders} <= targets
    assert all(t.is_dir() for t in targets)


def test_config_differences_are_listed(report):
    _, folders, page = report
    table = parse(page.read_text()).tables["config-diff"]
    assert [c["text"] for c in table["head"][0]] == ["experiment", "enable_plots"]
    plots = {row[0]["text"]: json.loads(row[1]["text"]) for row in table["body"]}
    assert plots == {f.name: read_json(f / "results_summary.json")["config"]["enable_plots"] for f in folders}


def test_fold_scores_come_from_fold_scores_csv_whatever_output_fold_results_says(tmp_path):
    folders = make_phase(tmp_path, {"a": 0.7, "b": 0.3}, output_fold_results=False)
    # fold_scores.csv as every neuco_jax run writes it (no q_t in the task JSONs)
    want = {}
    for m, folder in enumerate(folders):
        lines = ["task,fold,n_train,n_test,score"]
        for t, task in enumerate(TASKS):
            want[m, task] = fold_scores((0.7, 0.3)[m] * (1 + t) / 3, seed=100 + 10 * m + t)
            lines += [f"{task},{k},90,10,{float(v)!r}" for k, v in enumerate(want[m, task])]
        (folder / FOLD_SCORES_FILE).write_text("\n".join(lines) + "\n")
    out = write_report(tmp_path, PHASE, weighting="uniform")
    table = parse(out.read_text()).tables["per-task"]
    assert [c["text"] for c in table["head"][0]][-3:] == ["min fold", "max fold", "folds"]
    task = TASKS[0]
    row = next(r for r in table["body"] if r[0]["text"] == task)
    v = want[0, task]
    assert [c["text"] for c in row[-3:]] == [f"{v.min():.4f}", f"{v.max():.4f}", str(len(v))]


def test_without_fold_scores_there_is_no_fold_spread(tmp_path):
    # Runs as the reference writes them without output_fold_results: no fold_scores.csv, no q_t.
    make_phase(tmp_path, {"a": 0.7, "b": 0.3}, output_fold_results=False)
    out = write_report(tmp_path, PHASE, weighting="uniform", out=tmp_path / "elsewhere" / "page.html")
    table = parse(out.read_text()).tables["per-task"]
    assert [c["text"] for c in table["head"][0]] == ["task", "experiment", "Q", "Q jackknife se",
                                                     "mean score", "std dev"]
    assert {numeric_cells(row)[1]["text"] for row in table["body"]} == {"\u2014"}
    figures = ["q_by_task.png", "scores_by_task.png", "rank_heatmap.png"]  # no paired statistics without folds
    assert all((out.parent / name).is_file() for name in figures)
    parser = parse(out.read_text())
    assert len(parser.images) == len(figures) and "significance" not in parser.tables
    assert 'id="no-statistics"' in out.read_text() and "re-run this method" in out.read_text()


def test_a_missing_result_file_leaves_a_gap_and_a_broken_one_is_an_input_error(tmp_path):
    folders = make_phase(tmp_path, {"a": 0.7, "b": 0.3})
    (folders[1] / "crops" / "crops_result.json").unlink()
    with pytest.warns(UserWarning, match="crops_result.json is missing"):
        out = write_report(tmp_path, PHASE)
    rows = parse(out.read_text()).tables["per-task"]["body"]
    crops_rows = rows[2 * TASKS.index("crops"):2 * TASKS.index("crops") + 2]  # two runs per task
    gap, = [row for row in crops_rows if any(c["text"] == folders[1].name for c in row)]
    q, q_se, mean, std, low, high, n = numeric_cells(gap)
    summary = read_json(folders[1] / "results_summary.json")
    check_number(q, summary["task_q_scores"]["crops"], 2)  # still known from the summary
    check_number(mean, summary["task_acc_scores"]["crops"], 4)
    assert [c["text"] for c in (q_se, std, low, high, n)] == ["\u2014"] * 4 + ["0"]

    (folders[0] / "crops" / "crops_result.json").write_text("{not json")
    with pytest.raises(InputError, match="crops_result.json: is not valid JSON"):
        write_report(tmp_path, PHASE)


def test_unranked_runs_are_named(tmp_path):
    make_phase(tmp_path, {"a": 0.7, "b": 0.3})
    scores = [task_score("crops", "regression", [0.1, 0.2, 0.3])]  # lacks two tasks
    partial = write_run(tmp_path, PHASE, "partial", scores, Config(k_folds=3), stamp="20250101_120000")
    text = write_report(tmp_path, PHASE).read_text()
    assert len(parse(text).tables["leaderboard"]["body"]) == 2
    assert f"Not ranked (some tasks missing): {partial.name}" in text


def test_a_phase_without_complete_runs_is_an_input_error(tmp_path):
    (tmp_path / PHASE / "crashed_20250101_120000").mkdir(parents=True)  # no results_summary.json
    with pytest.warns(UserWarning, match="incomplete run"), \
            pytest.raises(InputError, match=f"{tmp_path / PHASE}: no complete run"):
        write_report(tmp_path, PHASE)
    with pytest.raises(InputError, match="phase folder not found"):
        write_report(tmp_path, "missing")


def test_cli_prints_the_path_and_reports_bad_input_in_one_line(report, tmp_path, capsys):
    output_dir, folders, _ = report
    out = tmp_path / "r.html"
    assert main(["report", "--output_dir", str(output_dir), "--phase", PHASE, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert len(parse(out.read_text()).tables["leaderboard"]["body"]) == len(folders)
    assert main(["report", "--output_dir", str(tmp_path), "--phase", PHASE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_matplotlib_is_imported_only_when_a_report_is_written():
    code = "import sys, neuco_jax.cli, neuco_jax.report; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(browser, page, profile, *mode):
    """Runs headless Chromium on a file:// page; returns (stdout, stderr)."""
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1400,2000",
         *mode, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    for problem in ("Uncaught", "ERR_FILE_NOT_FOUND", "Failed to load resource"):
        assert problem not in result.stderr
    return result.stdout, result.stderr


def test_page_renders_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    _, folders, page = report
    dom, _ = run_chromium(browser, page, tmp_path / "profile_dom", "--dump-dom")
    rendered = parse(dom)
    assert len(rendered.tables["leaderboard"]["body"]) == len(folders)
    assert len(rendered.images) == len(FIGURES)

    shot = tmp_path / "shot.png"
    run_chromium(browser, page, tmp_path / "profile_shot", f"--screenshot={shot}")
    from matplotlib.image import imread

    rgb = imread(shot)[..., :3]
    assert rgb.shape[:2] == (2000, 1400)
    # Not a blank page: text, tables and figures give many distinct grey levels.
    assert len(np.unique(np.round(rgb.mean(axis=-1), 2))) > 20
    # The figures were decoded and drawn: the first two runs' dots and bars are in
    # matplotlib's tab:blue and tab:orange, colours nothing else on the page uses.
    for colour in ((0.122, 0.467, 0.706), (1.0, 0.498, 0.055)):
        assert (np.abs(rgb - colour).max(axis=-1) < 0.03).sum() > 100


def test_mixed_protocols_are_an_error_unless_allowed_and_then_a_visible_warning(tmp_path):
    folders = make_phase(tmp_path, {"a": 0.7, "b": 0.3})
    scores = [task_score(task, "classification" if task.endswith("cls") else "regression", fold_scores(0.5, seed=t))
              for t, task in enumerate(TASKS)]
    other = write_run(tmp_path, PHASE, "c", scores, Config(k_folds=5), stamp="20250101_120000")
    with pytest.raises(InputError, match=r"k_folds = 3 \(a_20250101_120000, b_20250101_120000\) / 5"):
        write_report(tmp_path, PHASE)
    parser = parse(write_report(tmp_path, PHASE, allow_mixed_protocols=True).read_text())
    table = parser.tables["leaderboard"]
    assert table["head"][0][-1]["text"] == "protocol"
    protocol = {row[1]["title"]: row[-1]["text"] for row in table["body"]}
    assert protocol[folders[0].name] == protocol[folders[1].name] != protocol[other.name]
    text = write_report(tmp_path, PHASE, allow_mixed_protocols=True).read_text()
    assert 'id="mixed-protocols"' in text and "k_folds = 3" in text

    # --latest: the newest run of each method; here c's rerun at k_folds 3 makes the phase one protocol again.
    write_run(tmp_path, PHASE, "c", scores, Config(k_folds=3), stamp="20250102_120000")
    assert main(["report", "--output_dir", str(tmp_path), "--phase", PHASE, "--latest"]) == 0
    page = parse((tmp_path / "reports" / PHASE / "report.html").read_text())
    assert sorted(row[1]["title"] for row in page.tables["leaderboard"]["body"]) == [
        folders[0].name, folders[1].name, "c_20250102_120000"]
    assert "mixed-protocols" not in (tmp_path / "reports" / PHASE / "report.html").read_text()


# --- paired statistics (issue 13 part 4) --------------------------------------------------------

def fold_diffs(folders, run, baseline):
    """{task: mean over folds of run's fold score minus baseline's}, from the q_t of the result files."""
    return {task: np.mean(np.subtract(read_json(folders[run] / task / f"{task}_result.json")["q_t"],
                                      read_json(folders[baseline] / task / f"{task}_result.json")["q_t"]))
            for task in TASKS}


def test_rank_intervals_sit_beside_the_leaderboard(report):
    from neuco_jax.compare import compare

    output_dir, _, page = report
    ranks = compare(output_dir, PHASE).ranks.set_index("experiment")  # the report's defaults
    for row in parse(page.read_text()).tables["leaderboard"]["body"]:
        want = ranks.loc[row[1]["title"]]
        fold_ci, p_first, task_ci = numeric_cells(row)[1:4]
        assert fold_ci["text"] == f"{want.rank_ci_low}\u2013{want.rank_ci_high}"
        check_number(p_first, want.p_first, 2)
        assert task_ci["text"] == f"{want.task_rank_ci_low}\u2013{want.task_rank_ci_high}"


def test_significance_matrix_follows_the_pairs_table(report):
    from neuco_jax.compare import OVERALL, compare

    output_dir, folders, page = report
    pairs = compare(output_dir, PHASE).pairs
    pairs = pairs[pairs["task"] == OVERALL].set_index(["experiment_a", "experiment_b"])
    table = parse(page.read_text()).tables["significance"]
    names = [cell["title"] for cell in table["head"][0][1:]]
    assert sorted(names) == sorted(f.name for f in folders) and len(table["body"]) == len(names)
    for i, row in enumerate(table["body"]):
        for j, cell in enumerate(row[1:]):
            if i == j:
                assert cell["class"] == "self"
                continue
            a, b = sorted((i, j))
            significant = pairs.loc[(names[a], names[b]), "significant"]
            # The row run is better when it ranks above (a < b) and the difference is significant.
            want = ("\u25b2" if i < j else "\u25bc") if significant else "\u00b7"
            assert cell["text"] == want


def test_differences_against_the_baseline_default_to_the_top_run_and_follow_the_flag(report, tmp_path):
    output_dir, folders, page = report
    by_method = {f.name.split("_2025")[0]: f for f in folders}
    rows = parse(page.read_text()).tables["baseline"]["body"]
    assert [row[0]["text"] for row in rows] == ["fair<b>&", "poor"]  # good ranks first: the baseline
    for row in rows:
        want = fold_diffs(by_method, row[0]["text"], "good")
        for cell, task in zip(row[1:], TASKS, strict=True):
            assert float(cell["value"]) == pytest.approx(want[task], rel=1e-12, abs=1e-15)
            assert cell["text"] == f"{want[task]:+.4f}"
    out = tmp_path / "r.html"
    assert main(["report", "--output_dir", str(output_dir), "--phase", PHASE, "--out", str(out),
                 "--baseline", "poor"]) == 0
    rows = parse(out.read_text()).tables["baseline"]["body"]
    assert [row[0]["text"] for row in rows] == ["good", "fair<b>&"]
    assert float(rows[0][1]["value"]) == pytest.approx(fold_diffs(by_method, "good", "poor")[TASKS[0]], rel=1e-12)
    with pytest.raises(InputError, match="--baseline 'nobody' names 0 complete runs"):
        write_report(output_dir, PHASE, out=out, baseline="nobody")


def test_selection_optimism_is_shown_where_a_run_has_it(tmp_path):
    folders = make_phase(tmp_path, {"a": 0.7, "b": 0.3})
    assert "optimism" not in parse(write_report(tmp_path, PHASE).read_text()).tables
    summary = read_json(folders[1] / "results_summary.json")
    optimism = {task: 0.01 * (t + 1) for t, task in enumerate(TASKS)}
    (folders[1] / "results_summary.json").write_text(json.dumps({**summary, "selection_optimism": optimism}))
    table = parse(write_report(tmp_path, PHASE).read_text()).tables["optimism"]
    row, = table["body"]
    assert row[0]["text"] == "b" and row[0]["title"] == folders[1].name
    for cell, task in zip(row[1:], TASKS):
        check_number(cell, optimism[task], 4)
    check_number(row[-1], np.mean(list(optimism.values())), 4)
    (folders[1] / "results_summary.json").write_text(json.dumps({**summary, "selection_optimism": {"crops": "x"}}))
    with pytest.raises(InputError, match="'selection_optimism.crops' = 'x', expected a number"):
        write_report(tmp_path, PHASE)


def texts_inside(fig):
    """Every non-empty text of a drawn figure lies inside the figure (nothing clipped at its edges)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    for text in fig.findobj(Text):
        if text.get_text() and text.get_visible():
            box = text.get_window_extent(renderer)
            assert box.x0 >= -0.5 and box.x1 <= width + 0.5 and box.y0 >= -0.5 and box.y1 <= height + 0.5, \
                text.get_text()
    return True


def test_heatmap_and_cd_diagram_keep_their_text_inside(tmp_path):
    from neuco_jax.compare import compare
    from neuco_jax.report import load_phase
    from neuco_jax.report_figures import _rank_heatmap, cd_figure

    make_phase(tmp_path, {"a": 0.7, "b": 0.3})  # two runs: the narrowest heatmap, whose title was clipped
    assert texts_inside(_rank_heatmap(load_phase(tmp_path, PHASE)))
    many = tmp_path / "many"
    make_phase(many, {f"method_with_a_long_name_{m:02d}": 0.9 - 0.02 * m for m in range(30)})
    comparison = compare(many, PHASE, resamples=20)
    assert texts_inside(cd_figure(comparison))


def test_a_far_outlier_is_clipped_from_the_score_axis_and_named():
    from neuco_jax.report_figures import _colors, _dot_plot, robust_limits

    values = np.array([[0.8, 0.7, 0.6], [0.5, 0.4, -50.0], [0.3, 0.2, 0.1]])  # (runs, tasks)
    low, high = robust_limits(values)
    assert -50 < low < min(0.0, values[values > -50].min()) and high is None
    fig = _dot_plot(TASKS, ["x", "y", "z"], _colors(3), values, np.full_like(values, 0.01), "score", "t")
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == low
    assert "clipped" in ax.get_xlabel() and "y on random_cls -50" in ax.get_xlabel()
    assert robust_limits(values[:, :2]) == (None, None)  # nothing far out: matplotlib's own limits
    fig = _dot_plot(TASKS[:2], ["x", "y", "z"], _colors(3), values[:, :2], values[:, :2] * 0, "score", "t")
    assert "clipped" not in fig.axes[0].get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["x", "y", "z"]


def test_display_names_are_method_names_unless_two_runs_share_one():
    from neuco_jax.compare import display_names

    assert display_names(["a_20250101_120000", "b_20250101_120000_2", "odd"]) == ["a", "b", "odd"]
    assert display_names(["a_20250101_120000", "a_20250102_120000", "b_20250101_120000"]) == [
        "a_20250101_120000", "a_20250102_120000", "b"]
