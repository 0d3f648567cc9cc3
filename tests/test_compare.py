"""neuco-jax compare end to end, on a real small phase (synthetic benchmark, linear probes): the tables
against independent computations from the runs' own files (csv module, numpy, scipy), the pairing
checks, identical submissions, determinism, the CLI and its one-line errors."""

import csv
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from neuco_jax.cli import main
from neuco_jax.compare import OVERALL, PAIR_COLUMNS, RANK_COLUMNS, compare, save_comparison
from neuco_jax.config import Config
from neuco_jax.errors import InputError
from neuco_jax.leaderboard import collect_runs, rank_runs
from neuco_jax.pipeline import sweep
from neuco_jax.synthetic import make_benchmark

PHASE = "dev"
K = 6


@pytest.fixture(scope="module")
def phase(tmp_path_factory):
    """method_a > method_b > random_baseline, scored on the same 6 folds, plus an exact copy of method_a."""
    root = tmp_path_factory.mktemp("compare")
    bench = make_benchmark(root / "data", n_ids=600, dim=32, n_methods=2)
    config = Config(k_folds=K, epochs=4, batch_size=16, learning_rate=0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic labels' empty cells
        runs = sweep(list(bench.submissions.values()), bench.labels_dir, config, output_dir=root / "results",
                     phase=PHASE, method_names=list(bench.submissions), write_leaderboard=False)
    copy_run(runs[0].run_dir, "method_a_copy_20250101_000000")
    return root / "results", {run.name: run.run_dir for run in runs}


def copy_run(run_dir, name):
    """A copy of a run folder under another name (its summary's experiment renamed to match)."""
    target = run_dir.parent / name
    shutil.copytree(run_dir, target)
    summary = json.loads((target / "results_summary.json").read_text())
    (target / "results_summary.json").write_text(json.dumps({**summary, "experiment": name}))
    return target


def fold_table(run_dir):
    """{task: (fold scores, n_test, n_train)} read with the csv module."""
    out = {}
    with open(run_dir / "fold_scores.csv", newline="") as f:
        for row in csv.DictReader(f):
            scores, n_test, n_train = out.setdefault(row["task"], ([], int(row["n_test"]), int(row["n_train"])))
            scores.append(float(row["score"]) if row["score"] else math.nan)
    return {task: (np.array(s), n_test, n_train) for task, (s, n_test, n_train) in out.items()}


@pytest.fixture(scope="module")
def result(phase):
    output_dir, _ = phase
    return compare(output_dir, PHASE, resamples=400, seed=1)


def test_ranks_table_is_the_leaderboard_with_intervals(phase, result):
    output_dir, _ = phase
    board = rank_runs(collect_runs(output_dir, PHASE))
    ranks = result.ranks
    assert list(ranks.columns[:8]) == RANK_COLUMNS[:8]
    assert list(ranks["experiment"]) == list(board["experiment"])
    np.testing.assert_array_equal(ranks["aggregated_rank"], board["aggregated_rank"])
    np.testing.assert_array_equal(ranks["weighted_score"], board["weighted_score"])
    assert (ranks["rank_ci_low"] <= ranks["rank_ci_high"]).all()
    assert ((ranks["weighted_score_ci_low"] <= ranks["weighted_score_ci_high"])).all()
    # Every resample ranks someone first (ties share first place): the shares add up to 1 or more.
    assert ranks["p_first"].sum() >= 1 and ranks["task_p_first"].sum() >= 1
    # The synthetic truth: random_baseline is last, and the copy of method_a ties with it.
    methods = list(ranks["method"])
    assert methods[-1] == "random_baseline" and ranks["rank_ci_high"].iloc[-1] == len(ranks)
    a, copy = (ranks.set_index("method").loc[m] for m in ("method_a", "method_a_copy"))
    assert a["weighted_score"] == copy["weighted_score"] and a["p_first"] == copy["p_first"]


def test_pairs_table_against_the_fold_scores_files(phase, result):
    _, run_dirs = phase
    pairs = result.pairs
    assert list(pairs.columns) == PAIR_COLUMNS
    n_runs, n_tasks = len(result.experiments), len(result.tasks)
    assert len(pairs) == n_runs * (n_runs - 1) // 2 * (n_tasks + 1)
    folder = {e: d for d in [*run_dirs.values(), next(iter(run_dirs.values())).parent / "method_a_copy_20250101_000000"]
              for e in [d.name]}
    for row in pairs[pairs["task"] != OVERALL].itertuples():
        a, b = fold_table(folder[row.experiment_a])[row.task], fold_table(folder[row.experiment_b])[row.task]
        d = a[0] - b[0]
        assert row.mean_diff == pytest.approx(np.nanmean(d), rel=1e-12, abs=1e-15)
        if np.nanstd(d) == 0:
            continue
        # Nadeau-Bengio: scipy's one-sample t statistic shrunk by sqrt((1/k) / (1/k + n_test/n_train)).
        t = sps.ttest_1samp(d, 0, nan_policy="omit").statistic * math.sqrt((1 / K) / (1 / K + a[1] / a[2]))
        assert row.p_value == pytest.approx(2 * sps.t.sf(abs(t), K - 1), rel=1e-9)
        assert row.ci_low < row.mean_diff < row.ci_high
    for task, family in pairs.groupby("task"):
        p = family["p_value"].to_numpy()
        order = np.argsort(p, kind="stable")
        holm = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
        np.testing.assert_allclose(family["p_adjusted"].to_numpy()[order], holm, rtol=1e-15)
        np.testing.assert_array_equal(family["significant"], family["p_adjusted"] < 0.05)
    # a is the better-ranked run: overall differences (weighted score of b minus a's) are >= 0.
    overall = pairs[pairs["task"] == OVERALL]
    assert (overall["mean_diff"] >= 0).all()
    weighted = dict(zip(result.ranks["experiment"], result.ranks["weighted_score"]))
    np.testing.assert_allclose(overall["mean_diff"], [weighted[b] - weighted[a] for a, b in
                                                      zip(overall["experiment_a"], overall["experiment_b"])])


def test_a_clearly_better_method_is_called_better_and_a_copy_is_exactly_equal(result):
    pairs = result.pairs.assign(a=lambda t: t["experiment_a"].str.rsplit("_", n=2).str[0],
                                b=lambda t: t["experiment_b"].str.rsplit("_", n=2).str[0])
    vs_random = pairs[(pairs["a"] == "method_a") & (pairs["b"] == "random_baseline") & (pairs["task"] == OVERALL)]
    assert vs_random["significant"].all() and (vs_random["ci_low"] > 0).all()
    same = pairs[pairs["a"].isin(["method_a", "method_a_copy"]) & pairs["b"].isin(["method_a", "method_a_copy"])]
    assert len(same) == len(result.tasks) + 1
    for column in ("mean_diff", "ci_low", "ci_high", "q_diff", "q_ci_low", "q_ci_high"):
        assert (same[column] == 0).all(), column
    assert (same["p_value"] == 1).all() and not same["significant"].any()


def test_files_are_deterministic_for_a_seed(phase, result, tmp_path):
    output_dir, _ = phase
    paths = save_comparison(result, output_dir, stamp="20250101_000000")
    assert {p.parent for p in paths.values()} == {output_dir / "leaderboards" / PHASE}
    again = save_comparison(compare(output_dir, PHASE, resamples=400, seed=1), tmp_path, stamp="x")
    other = save_comparison(compare(output_dir, PHASE, resamples=400, seed=2), tmp_path, stamp="y")
    for kind in paths:
        assert paths[kind].read_bytes() == again[kind].read_bytes(), kind
    assert paths["ranks"].read_bytes() != other["ranks"].read_bytes()
    table = pd.read_csv(paths["pairs"])
    assert list(table.columns) == PAIR_COLUMNS and table["significant"].dtype == bool
    assert paths["cd_png"].read_bytes().startswith(b"\x89PNG") and b"<svg" in paths["cd_svg"].read_bytes()


def test_a_subset_of_runs_by_folder_or_method_name(phase, result):
    output_dir, run_dirs = phase
    sub = compare(output_dir, PHASE, runs=["method_b", run_dirs["random_baseline"].name], resamples=50)
    assert sub.names == ["method_b", "random_baseline"]
    assert len(sub.pairs) == len(sub.tasks) + 1
    assert math.isnan(sub.friedman.p_value)  # two runs: the pairs say it all
    with pytest.raises(InputError, match="--runs 'nothing' names 0 complete runs"):
        compare(output_dir, PHASE, runs=["method_b", "nothing"])
    with pytest.raises(InputError, match="at least two complete runs"):
        compare(output_dir, PHASE, runs=["method_b"])


def test_runs_that_held_out_other_folds_are_refused(phase, tmp_path):
    _, run_dirs = phase
    for name, run_dir in run_dirs.items():
        shutil.copytree(run_dir, tmp_path / PHASE / run_dir.name)
    odd = tmp_path / PHASE / run_dirs["method_b"].name / "fold_scores.csv"
    lines = odd.read_text().splitlines()
    header = lines[0].split(",")
    first = lines[1].split(",")
    task = first[0]
    n_test = header.index("n_test")
    lines[1:] = [",".join(f[:n_test] + [str(int(f[n_test]) + 1)] + f[n_test + 1:]) if f[0] == task else line
                 for line, f in ((line, line.split(",")) for line in lines[1:])]
    odd.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"fold_scores.csv: task '{task}' has {K} folds holding out \d+ rows, "
                                         rf"but .*fold_scores.csv has {K} holding out \d+; compare only runs scored "
                                         "on the same folds") as err:
        compare(tmp_path, PHASE)
    assert str(odd) in str(err.value)
    odd.unlink()  # and without fold scores or q_t: re-run
    with pytest.raises(InputError, match="no fold_scores.csv and no per-fold scores"):
        compare(tmp_path, PHASE)


@pytest.mark.parametrize("flag, value", [("--confidence", "1.5"), ("--resamples", "0"), ("--seed", "-1")])
def test_cli_bad_options_are_one_line_errors(phase, capsys, flag, value):
    output_dir, _ = phase
    assert main(["compare", "--output_dir", str(output_dir), "--phase", PHASE, flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag[2:]} ({flag}) ") and err.count("\n") == 1


def test_cli_prints_the_table_and_writes_the_files(phase, capsys):
    output_dir, _ = phase
    assert main(["compare", "--output_dir", str(output_dir), "--phase", PHASE, "--resamples", "200",
                 "--runs", "method_a", "method_b", "random_baseline", "--confidence", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "90% CI" in out and "method_a > random_baseline" in out
    written = {line.split(": ", 1)[0]: Path(line.split(": ", 1)[1]) for line in out.splitlines()
               if line.split(":")[0] in ("ranks", "pairs", "cd_png", "cd_svg")}
    assert set(written) == {"ranks", "pairs", "cd_png", "cd_svg"} and all(p.is_file() for p in written.values())
    methods = list(pd.read_csv(written["ranks"])["method"])
    assert sorted(methods) == ["method_a", "method_b", "random_baseline"] and methods[-1] == "random_baseline"
