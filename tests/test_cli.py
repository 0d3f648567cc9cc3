"""End to end through the command line, on a small synthetic benchmark in the real file formats."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuco_jax import engine
from neuco_jax.cli import main
from neuco_jax.results import method_name
from neuco_jax.synthetic import make_benchmark

CONFIG = """\
k_folds: 4
probe_type: linear
probe_params:
  batch_size: 32
  epochs: 4
  learning_rate: 0.01
update_leaderboard: {update}
output_fold_results: true
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=500, dim=24, n_methods=2)


def write_config(tmp_path, update="false"):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(update=update))
    return path


def test_evaluate_with_the_reference_flags_writes_the_reference_files(bench, tmp_path, capsys):
    sub = bench.submissions["method_a"]
    out = tmp_path / "results"
    code = main(["evaluate", "--annotation_path", str(bench.labels_dir), "--submission_file", str(sub),
                 "--output_dir", str(out), "--config", str(write_config(tmp_path)), "--phase", "dev"])
    assert code == 0
    (run,) = (out / "dev").iterdir()
    assert run.name.startswith("method_a_")  # method_name defaults to the file's stem
    summary = json.loads((run / "results_summary.json").read_text())
    tasks = sorted(p.stem.split("__")[0] for p in bench.labels_dir.glob("*.csv"))
    assert sorted(summary["task_q_scores"]) == tasks
    for task in tasks:
        result = json.loads((run / task / f"{task}_result.json").read_text())
        folds = np.array(result["q_t"])
        assert len(folds) == 4
        assert result["mean_score"] == pytest.approx(np.nanmean(folds))
        assert result["q_stat"] == pytest.approx(np.nanmean(folds) / (0.02 + np.nanstd(folds)) * 2)
    assert summary["overall_q_score"] == pytest.approx(np.mean(list(summary["task_q_scores"].values())))
    assert "results:" in capsys.readouterr().out
    assert not (out / "leaderboards").exists()


def test_one_compilation_for_all_eleven_tasks_and_same_scores_when_filtered(bench, tmp_path):
    from neuco_jax.config import Config
    from neuco_jax.pipeline import evaluate
    sub = bench.submissions["method_b"]
    before = engine.TRACE_COUNT
    full, = evaluate(sub, bench.labels_dir, Config(k_folds=3, epochs=2, batch_size=16), output_dir=tmp_path)
    assert len(full.scores) == 11 and engine.TRACE_COUNT == before + 1
    # Standardisation is global, so a task's scores do not depend on the other tasks evaluated.
    one, = evaluate(sub, bench.labels_dir, Config(k_folds=3, epochs=2, batch_size=16, task_filter=("crops",)),
                   output_dir=tmp_path)
    crops = next(s for s in full.scores if s.name == "crops")
    np.testing.assert_allclose(one.scores[0].fold_scores, crops.fold_scores, atol=1e-6)


def test_update_leaderboard_then_leaderboard_command(bench, tmp_path, capsys):
    out = tmp_path / "results"
    config = write_config(tmp_path, update="true")
    for method, sub in bench.submissions.items():
        assert main(["evaluate", "--annotation_path", str(bench.labels_dir), "--submission_file", str(sub),
                     "--output_dir", str(out), "--config", str(config), "--method_name", method]) == 0
    boards = sorted((out / "leaderboards" / "results").glob("leaderboard_*.csv"))
    assert boards
    board = pd.read_csv(boards[-1])
    assert len(board) == len(bench.submissions)
    assert list(board.columns[:4]) == ["experiment", "mean_score", "weighted_score", "aggregated_rank"]
    assert board["experiment"].iloc[-1].startswith("random_baseline")
    capsys.readouterr()
    assert main(["leaderboard", "--output_dir", str(out), "--phase", "results", "--weighting", "uniform"]) == 0
    assert "random_baseline" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_code_2(bench, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("key,0\na,1\n")
    code = main(["evaluate", "--annotation_path", str(bench.labels_dir), "--submission_file", str(bad),
                 "--output_dir", str(tmp_path / "out"), "--config", str(write_config(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "bad.csv" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_demo_recovers_the_known_order(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "demo"), "--n_ids", "1500", "--dim", "48",
                 "--k_folds", "5", "--epochs", "5"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "known order recovered: method_a > method_b > method_c > random_baseline" in out


# The first hour: flags, the default config, a quiet demo ---------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_demo_takes_output_dir_and_prints_no_warnings_about_its_own_data(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "demo"
    (out / "results" / "demo" / "junk_run").mkdir(parents=True)  # an incomplete run: its warning must stay
    proc = subprocess.run([sys.executable, "-m", "neuco_jax", "demo", "--output_dir", str(out), "--n_ids", "400",
                           "--dim", "16", "--k_folds", "3", "--epochs", "2"], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr  # whether 400 ids recover the order is not the subject here
    assert (out / "data" / "ground_truth.json").exists() and list((out / "results" / "demo").glob("method_a_*"))
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "junk_run" in warned[0], proc.stderr


@pytest.mark.parametrize("command", ["evaluate", "sweep", "leaderboard", "report", "convert", "embed", "validate",
                                     "demo", "config"])
def test_quiet_before_or_after_the_subcommand(command):
    from neuco_jax.cli import build_parser
    required = {"evaluate": ["--annotation_path", "l", "--submission_file", "s.csv"],
                "sweep": ["--annotation_path", "l", "--submissions", "s.csv"], "convert": ["a.csv", "b.npz"],
                "embed": ["--data_root", "d", "--output", "o.csv"], "validate": ["s.csv", "--annotation_path", "l"]}
    argv = [command, *required.get(command, [])]
    parser = build_parser()
    assert parser.parse_args(argv).quiet is False
    assert parser.parse_args(["--quiet", *argv]).quiet is True
    assert parser.parse_args([*argv, "--quiet"]).quiet is True


def test_version(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"neuco-jax {version('neuco-jax')}\n"


def test_config_prints_the_packaged_default_and_configs_linear_yaml_is_a_copy(tmp_path, capsys):
    import tomllib
    from fnmatch import fnmatch
    from neuco_jax.config import Config, load_config

    assert main(["config"]) == 0
    printed = capsys.readouterr().out
    assert main(["config", "linear"]) == 0
    assert capsys.readouterr().out == printed
    packaged = ROOT / "neuco_jax" / "configs" / "linear.yaml"
    assert printed == packaged.read_text()
    # One source of truth: the repository's copy must stay identical (copy the packaged file over it).
    assert (ROOT / "configs" / "linear.yaml").read_text() == printed
    (tmp_path / "config.yaml").write_text(printed)
    assert load_config(tmp_path / "config.yaml") == Config(k_folds=40)
    # ... and it ships in the wheel, for a pip user without a clone.
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch("configs/linear.yaml", pattern) for pattern in package_data["neuco_jax"])


def test_config_svm_and_a_missing_config_say_what_to_do(tmp_path, capsys, monkeypatch):
    assert main(["config", "svm"]) == 0
    out = capsys.readouterr().out
    assert "probe_type: \"svm\"" in out and "C_start_end: [0.001, 1000]" in out
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--annotation_path", "labels", "--submission_file", "s.csv"]) == 2
    err = capsys.readouterr().err
    assert "cannot read config file" in err and "neuco-jax config > config.yaml" in err and err.count("\n") == 1


def test_a_second_demo_ranks_only_its_own_runs(tmp_path, capsys):
    import pandas as pd
    demo = ["demo", "--out", str(tmp_path / "demo"), "--n_ids", "400", "--dim", "16", "--epochs", "2"]
    main(demo + ["--k_folds", "3"])
    capsys.readouterr()
    main(demo + ["--k_folds", "4"])  # other settings, same phase: never ranked beside the first demo's runs
    out = capsys.readouterr().out
    assert len(list((tmp_path / "demo" / "results" / "demo").iterdir())) == 8
    saved = out.split("leaderboard: ")[-1].split()[0]
    board = pd.read_csv(saved)
    assert sorted(method_name(r) for r in board["experiment"]) == [
        "method_a", "method_b", "method_c", "random_baseline"]
    runs = sorted((tmp_path / "demo" / "results" / "demo").iterdir())
    newest = {r.name for r in runs[1::2]}  # each method's second run sorts after its first
    assert set(board["experiment"]) == newest
