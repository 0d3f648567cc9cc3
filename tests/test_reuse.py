"""Incremental sweeps: runs of the same embeddings under the same config are reused, not trained again."""

import contextlib
import dataclasses
import json
import shutil

import numpy as np
import pytest

from neuco_jax import engine
from neuco_jax.cli import main
from neuco_jax.config import Ablations, Config
from neuco_jax.data import CONTENT_KEY, file_sha256
from neuco_jax.pipeline import evaluate, sweep
from neuco_jax.stores import read_embeddings, write_embeddings
from neuco_jax.synthetic import make_benchmark

BASE = Config(k_folds=3, epochs=2, batch_size=16, learning_rate=0.03)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=400, dim=16, n_methods=2)


def run_dirs(output_dir, phase="results"):
    return sorted(p.name for p in (output_dir / phase).iterdir() if not p.name.startswith("."))


def test_a_second_sweep_trains_only_the_new_method(bench, tmp_path):
    files = list(bench.submissions.values())
    first = sweep(files[:2], bench.labels_dir, BASE, output_dir=tmp_path, write_leaderboard=True)
    assert not any(r.reused for r in first)
    traces = engine.TRACE_COUNT
    loads = []
    again = sweep(files, bench.labels_dir, BASE, output_dir=tmp_path, write_leaderboard=True,
                  loaded=_Counting(loads))
    assert [r.reused for r in again] == [True, True, False]
    assert [r.run_dir for r in again[:2]] == [r.run_dir for r in first]  # the same folders, not copies
    assert loads == [files[2].resolve()]  # only the new submission was read
    assert len(run_dirs(tmp_path)) == 3
    for old, new in zip(first, again):
        for a, b in zip(old.scores, new.scores):
            assert (a.name, a.task_type, a.q_stat, a.mean_score, a.std_dev) == \
                   (b.name, b.task_type, b.q_stat, b.mean_score, b.std_dev)
            np.testing.assert_array_equal(a.fold_scores, b.fold_scores)
    assert again[0].leaderboard is not None and again[0].leaderboard != first[0].leaderboard
    assert engine.TRACE_COUNT - traces <= 1  # one method (chunk size 1) compiles at most once more


class _Counting(dict):
    """sweep's `loaded` cache that records which submissions were read."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def __setitem__(self, key, value):
        self.log.append(key[0])
        super().__setitem__(key, value)


def test_what_changes_the_run_is_trained_again(bench, tmp_path):
    f = bench.submissions["method_a"]
    first, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path)
    summary = json.loads((first.run_dir / "results_summary.json").read_text())
    assert summary[CONTENT_KEY] == file_sha256(f)
    assert evaluate(f, bench.labels_dir, dataclasses.replace(BASE, update_leaderboard=True),
                    output_dir=tmp_path)[0].reused  # where results go next is not part of a run
    changed = [
        dict(config=dataclasses.replace(BASE, seed=7)),  # a protocol key
        dict(config=dataclasses.replace(BASE, store_probes=True)),  # a file the run would hold
        dict(config=BASE, method_name="renamed"),
        dict(config=BASE, rerun=True),
    ]
    for kw in changed:
        run, = evaluate(f, bench.labels_dir, output_dir=tmp_path, **kw)
        assert not run.reused, kw
    # Same numbers in another file: other bytes, so another content hash.
    ids, x = read_embeddings(f)
    other = tmp_path / "method_a.parquet"
    write_embeddings(other, ids, x)
    assert not evaluate(other, bench.labels_dir, BASE, output_dir=tmp_path, method_name="method_a")[0].reused
    # ... and changed numbers under the same name.
    edited = tmp_path / "method_a.csv"
    write_embeddings(edited, ids, np.round(x + 0.5, 3))
    assert not evaluate(edited, bench.labels_dir, BASE, output_dir=tmp_path)[0].reused
    assert evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path)[0].reused  # the original still is


@pytest.mark.parametrize("damage", ["summary", "fold_scores", "task_result", "missing_task"])
def test_a_run_whose_files_do_not_read_back_is_never_reused(bench, tmp_path, damage):
    f = bench.submissions["method_a"]
    first, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path)
    task = first.scores[0].name
    if damage == "summary":
        (first.run_dir / "results_summary.json").write_text("{ not json")
    elif damage == "fold_scores":
        (first.run_dir / "fold_scores.csv").write_text("task,fold\n")
    elif damage == "task_result":
        (first.run_dir / task / f"{task}_result.json").write_text("[")
    else:
        shutil.rmtree(first.run_dir / task)
    # An unreadable summary is no run of the phase at all; a run whose other files fail is named.
    with pytest.warns(UserWarning, match="not reused") if damage != "summary" else contextlib.nullcontext():
        run, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path)
    assert not run.reused and run.run_dir != first.run_dir


def test_an_incomplete_run_is_not_reused(bench, tmp_path):
    f = bench.submissions["method_a"]
    first, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path)
    (first.run_dir / "results_summary.json").unlink()  # a run that crashed before its summary
    run, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path, method_name="method_a")
    assert not run.reused and (run.run_dir / "results_summary.json").is_file()


def test_ablation_variants_are_reused_together(bench, tmp_path):
    config = dataclasses.replace(BASE, ablations=Ablations(learning_rates=(0.01, 0.03)))
    f = bench.submissions["method_a"]
    first = sweep([f], bench.labels_dir, config, output_dir=tmp_path)
    again = sweep([f], bench.labels_dir, config, output_dir=tmp_path)
    assert [r.reused for r in again] == [True, True]
    assert [r.run_dir for r in again] == [r.run_dir for r in first]
    # Another grid: a variant the phase lacks trains the method (all its variants) again.
    wider = dataclasses.replace(BASE, ablations=Ablations(learning_rates=(0.01, 0.03, 0.1)))
    assert not any(r.reused for r in sweep([f], bench.labels_dir, wider, output_dir=tmp_path))


def test_the_cli_says_what_it_reused_and_rerun_trains(bench, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("k_folds: 3\nprobe_params: {batch_size: 16, epochs: 2, learning_rate: 0.03}\n")
    args = ["sweep", "--submissions", *map(str, bench.submissions.values()), "--annotation_path",
            str(bench.labels_dir), "--config", str(config), "--output_dir", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0
    assert "reused" not in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"reused {len(bench.submissions)} run(s)" in out and "trained 0" in out
    assert len(run_dirs(tmp_path / "out")) == len(bench.submissions)
    assert main(args + ["--rerun"]) == 0
    assert "reused" not in capsys.readouterr().out
    assert len(run_dirs(tmp_path / "out")) == 2 * len(bench.submissions)
    # --rerun with nothing to rerun is not an error.
    assert main(args + ["--rerun", "--output_dir", str(tmp_path / "fresh")]) == 0
