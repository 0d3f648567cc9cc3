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
from neuco_jax.report import FIGURES, jackknife_q_se, write_report
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
            self._cell = {"text": "", "value": attrs.get("data-value"), "class": attrs.get("class") or ""}
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
    assert sorted(row[1]["text"] for row in rows) == sorted(summaries)
    # Quality decides: good > fair > poor on every task, so ranks are 1, 2, 3 in that order.
    assert [row[1]["text"].split("_2025")[0] for row in rows] == ["good", "fair<b>&", "poor"]
    assert [row[0]["text"] for row in rows] == ["1", "2", "3"]
    for row in rows:
        summary = summaries[row[1]["text"]]
        weighted, mean_q, mean_score, *task_q = numeric_cells(row)[1:]
        check_number(mean_q, np.mean(list(summary["task_q_scores"].values())), 2)
        check_number(mean_score, summary["overall_acc_score"], 3)
        for cell, task in zip(task_q, TASKS, strict=True):
            check_number(cell, summary["task_q_scores"][task], 2)
    # Each run has the same rank on every task, so its weighted score is that rank.
    assert [float(numeric_cells(row)[1]["value"]) for row in rows] == [1.0, 2.0, 3.0]


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


def test_without_fold_scores_there_is_no_fold_spread(tmp_path):
    make_phase(tmp_path, {"a": 0.7, "b": 0.3}, output_fold_results=False)
    out = write_report(tmp_path, PHASE, weighting="uniform", out=tmp_path / "elsewhere" / "page.html")
    table = parse(out.read_text()).tables["per-task"]
    assert [c["text"] for c in table["head"][0]] == ["task", "experiment", "Q", "Q jackknife se",
                                                     "mean score", "std dev"]
    assert {numeric_cells(row)[1]["text"] for row in table["body"]} == {"\u2014"}
    assert all((out.parent / name).is_file() for name in FIGURES)


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
    protocol = {row[1]["text"]: row[-1]["text"] for row in table["body"]}
    assert protocol[folders[0].name] == protocol[folders[1].name] != protocol[other.name]
    text = write_report(tmp_path, PHASE, allow_mixed_protocols=True).read_text()
    assert 'id="mixed-protocols"' in text and "k_folds = 3" in text

    # --latest: the newest run of each method; here c's rerun at k_folds 3 makes the phase one protocol again.
    write_run(tmp_path, PHASE, "c", scores, Config(k_folds=3), stamp="20250102_120000")
    assert main(["report", "--output_dir", str(tmp_path), "--phase", PHASE, "--latest"]) == 0
    page = parse((tmp_path / "reports" / PHASE / "report.html").read_text())
    assert sorted(row[1]["text"] for row in page.tables["leaderboard"]["body"]) == [
        folders[0].name, folders[1].name, "c_20250102_120000"]
    assert "mixed-protocols" not in (tmp_path / "reports" / PHASE / "report.html").read_text()
