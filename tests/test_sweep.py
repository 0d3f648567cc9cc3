"""Sweeps: many methods and ablation variants in one compiled pass, each written as its own run."""

import dataclasses
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from neuco_jax import engine
from neuco_jax.config import Ablations, Config
from neuco_jax.pipeline import evaluate, sweep
from neuco_jax.synthetic import make_benchmark

from conftest import adamw_steps, assert_scores_close

# Probes that learn (method_a: mean held-out R^2 0.4-0.7 on every real task), so float32 rounding
# differences between programs stay at rounding size instead of being amplified (conftest.score_tolerance).
BASE = Config(k_folds=3, epochs=5, batch_size=16, learning_rate=0.03)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=1000, dim=64, n_methods=2)


def fold_scores(run):
    return np.stack([s.fold_scores for s in run.scores])


def test_scores_are_identical_alone_and_in_a_chunked_sweep(bench, tmp_path):
    files = list(bench.submissions.values())  # 3 methods, in chunks of 2: the last chunk is padded
    before = engine.TRACE_COUNT
    runs = sweep(files, bench.labels_dir, BASE, output_dir=tmp_path, chunk_size=2)
    assert engine.TRACE_COUNT - before == 1  # one compilation for both chunks
    assert [r.name for r in runs] == list(bench.submissions)
    for run, f in zip(runs, files):
        alone, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path / "alone")
        np.testing.assert_array_equal(fold_scores(run), fold_scores(alone))
    assert len(list((tmp_path / "results").iterdir())) == 3


@pytest.mark.parametrize("shuffle", ["per_fold", "shared"])
def test_learning_rate_and_label_fraction_variants_equal_separate_runs(bench, tmp_path, shuffle):
    f = bench.submissions["method_a"]
    config = dataclasses.replace(BASE, shuffle=shuffle,
                                 ablations=Ablations(learning_rates=(0.01, 0.03), label_fractions=(1.0, 0.5)))
    runs = sweep([f], bench.labels_dir, config, output_dir=tmp_path)
    names = [r.name for r in runs]
    assert names == ["method_a@lr=0.01@frac=1", "method_a@lr=0.01@frac=0.5",
                     "method_a@lr=0.03@frac=1", "method_a@lr=0.03@frac=0.5"]
    by_name = dict(zip(names, runs))
    for lr in (0.01, 0.03):
        for frac in (1.0, 0.5):
            single = dataclasses.replace(BASE, learning_rate=lr, label_fraction=frac, shuffle=shuffle)
            alone, = evaluate(f, bench.labels_dir, single, output_dir=tmp_path / "alone")
            got = by_name[f"method_a@lr={lr:g}@frac={frac:g}"]
            # The shared shuffle's window products over 6 probes or 3 may round differently.
            assert_scores_close(fold_scores(got), fold_scores(alone), adamw_steps(bench.labels_dir, single))
            assert got.config.learning_rate == lr and got.config.label_fraction == frac
    run_dir = by_name["method_a@lr=0.03@frac=0.5"].run_dir
    assert run_dir.parent == tmp_path / "results_ablations"  # variants have their own phase
    summary = json.loads((run_dir / "results_summary.json").read_text())
    assert summary["config"]["probe_params"]["learning_rate"] == 0.03
    assert summary["config"]["label_fraction"] == 0.5
    assert summary["ablation_axes"] == ["probe_params.learning_rate", "label_fraction"]


def test_embedding_dim_variant_equals_the_truncated_submission(bench, tmp_path):
    f = bench.submissions["method_b"]
    config = dataclasses.replace(BASE, ablations=Ablations(embedding_dims=(16, 64)))
    runs = sweep([f], bench.labels_dir, config, output_dir=tmp_path)
    assert [r.name for r in runs] == ["method_b@dim=16", "method_b@dim=64"]
    df = pd.read_csv(f)
    truncated = tmp_path / "method_b_first16.csv"
    df[["id"] + [str(j) for j in range(16)]].to_csv(truncated, index=False)
    steps = adamw_steps(bench.labels_dir, BASE)
    alone, = evaluate(truncated, bench.labels_dir, BASE, output_dir=tmp_path / "alone")
    # pandas writes the float32 values exactly, so the truncated file holds the same numbers.
    assert_scores_close(fold_scores(runs[0]), fold_scores(alone), steps)
    full, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path / "alone")
    assert_scores_close(fold_scores(runs[1]), fold_scores(full), steps)


def test_epochs_curve_reads_every_epoch_count_off_one_run(bench, tmp_path):
    f = bench.submissions["method_a"]
    config = dataclasses.replace(BASE, ablations=Ablations(epochs=(1, 2, 5)))
    before = engine.TRACE_COUNT
    runs = sweep([f], bench.labels_dir, config, output_dir=tmp_path)
    assert engine.TRACE_COUNT - before <= 1
    assert [r.name for r in runs] == ["method_a@epochs=1", "method_a@epochs=2", "method_a@epochs=5"]
    for run, epochs in zip(runs, (1, 2, 5)):
        alone, = evaluate(f, bench.labels_dir, dataclasses.replace(BASE, epochs=epochs),
                          output_dir=tmp_path / "alone")
        assert_scores_close(fold_scores(run), fold_scores(alone), adamw_steps(bench.labels_dir, BASE))
    curve = np.array([[s.mean_score for s in r.scores] for r in runs])
    assert np.all(np.diff(curve, axis=0) >= -1e-12)  # best-so-far never decreases


def test_sweep_leaderboard_has_a_row_per_variant(bench, tmp_path):
    config = Config(k_folds=3, epochs=2, batch_size=16, update_leaderboard=True,
                    ablations=Ablations(learning_rates=(0.001, 0.01)))
    runs = sweep(list(bench.submissions.values()), bench.labels_dir, config, output_dir=tmp_path, phase="abl")
    assert runs[0].leaderboard.parent == tmp_path / "leaderboards" / "abl_ablations"
    board = pd.read_csv(runs[0].leaderboard)
    assert sorted(board["experiment"]) == sorted(r.run_dir.name for r in runs)
    assert len(board) == 2 * len(bench.submissions)
    assert "protocol" not in board.columns  # the learning rates differ by design


def test_ablation_variants_leave_the_main_leaderboard_and_its_task_weights_alone(bench, tmp_path):
    from neuco_jax.leaderboard import aggregate_ranks, collect_runs, rank_runs
    files = list(bench.submissions.values())[:2]
    sweep(files, bench.labels_dir, BASE, output_dir=tmp_path, phase="dev")
    main = rank_runs(collect_runs(tmp_path, "dev"))
    config = dataclasses.replace(BASE, ablations=Ablations(learning_rates=(0.001, 0.1), embedding_dims=(4, 20)))
    variants = sweep(files, bench.labels_dir, config, output_dir=tmp_path, phase="dev")
    assert {r.run_dir.parent.name for r in variants} == {"dev_ablations"}
    after = rank_runs(collect_runs(tmp_path, "dev"))
    pd.testing.assert_frame_equal(after, main)
    q = after[[c for c in after.columns if c.startswith("q::")]].to_numpy()
    np.testing.assert_allclose(aggregate_ranks(q)[1], aggregate_ranks(main[q_columns(main)].to_numpy())[1])
    assert len(rank_runs(collect_runs(tmp_path, "dev_ablations"))) == 2 * 4


def q_columns(board):
    return [c for c in board.columns if c.startswith("q::")]


def test_update_leaderboard_on_a_mixed_phase_keeps_the_run_and_warns(bench, tmp_path):
    f = bench.submissions["method_a"]
    first, = evaluate(f, bench.labels_dir, dataclasses.replace(BASE, update_leaderboard=True), output_dir=tmp_path)
    assert first.leaderboard is not None
    with pytest.warns(UserWarning, match=r"leaderboard not updated: .*k_folds = 3 .* / 4 ") as caught:
        second, = evaluate(f, bench.labels_dir, dataclasses.replace(BASE, k_folds=4, update_leaderboard=True),
                           output_dir=tmp_path)
    message, = [str(w.message) for w in caught if "leaderboard not updated" in str(w.message)]
    assert "\n" not in message
    assert second.leaderboard is None and (second.run_dir / "results_summary.json").is_file()
    assert len(list((tmp_path / "leaderboards" / "results").iterdir())) == 1


def test_summaries_record_the_label_files_and_the_exclude_list(bench, tmp_path):
    from neuco_jax.leaderboard import collect_runs
    from neuco_jax.protocol import MixedProtocolsError
    f = bench.submissions["method_a"]
    labels = sorted(bench.labels_dir.glob("*.csv"))
    expected = hashlib.sha256()
    for path in labels:
        expected.update(path.name.encode() + b"\0" + str(path.stat().st_size).encode() + b"\0" + path.read_bytes())
    run, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path)
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    assert summary["labels_fingerprint"] == "sha256:" + expected.hexdigest()
    assert summary["exclude_fingerprint"] is None and "ablation_axes" not in summary

    # Same data, one label changed: the same k_folds and config, but other labels.
    edited = tmp_path / "edited_labels"
    shutil.copytree(bench.labels_dir, edited)
    lines = labels[0].read_text().splitlines()
    first_id, label = lines[1].split(",")
    lines[1] = f"{first_id},{1 - float(label) if labels[0].stem.endswith('cls') else float(label) + 1}"
    (edited / labels[0].name).write_text("\n".join(lines) + "\n")
    evaluate(f, edited, BASE, output_dir=tmp_path, method_name="method_a_edited")
    with pytest.raises(MixedProtocolsError, match="labels_fingerprint = sha256:"):
        collect_runs(tmp_path, "results")

    exclude = tmp_path / "exclude.txt"
    exclude.write_text(f"\n{first_id}\n\n")
    run, = evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path, phase="excluded", exclude_file=exclude)
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    assert summary["exclude_fingerprint"] == "sha256:" + hashlib.sha256(first_id.encode()).hexdigest()
    evaluate(f, bench.labels_dir, BASE, output_dir=tmp_path, phase="excluded", method_name="all_ids")
    with pytest.raises(MixedProtocolsError, match=r"exclude_fingerprint = none \(all_ids_\d+_\d+\) / sha256:\w{12} \(method_a_\d+_\d+\)"):
        collect_runs(tmp_path, "excluded")


def test_sweep_command_over_a_folder_writes_runs_and_one_leaderboard(bench, tmp_path, capsys):
    from neuco_jax.cli import main
    config = tmp_path / "c.yaml"
    config.write_text("k_folds: 3\nprobe_params: {batch_size: 16, epochs: 2}\n")
    sub_dir = bench.submissions["method_a"].parent
    code = main(["sweep", "--annotation_path", str(bench.labels_dir), "--submissions_dir", str(sub_dir),
                 "--output_dir", str(tmp_path / "out"), "--config", str(config), "--phase", "p", "--chunk_size", "2"])
    assert code == 0, capsys.readouterr().err
    runs = sorted(p.name.rsplit("_", 2)[0] for p in (tmp_path / "out" / "p").iterdir())
    assert runs == sorted(bench.submissions)
    (board,) = (tmp_path / "out" / "leaderboards" / "p").glob("leaderboard_*.csv")
    assert len(pd.read_csv(board)) == len(bench.submissions)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method_names=["a", "a", "b"]), "method name 'a' is used twice"),
    (dict(method_names=["a"]), "1 method names for 3 submission files"),
    (dict(method_names=["a", "../b", "c"]), "plain folder name"),
])
def test_sweep_rejects_bad_method_names(bench, tmp_path, kwargs, message):
    from neuco_jax.errors import InputError
    with pytest.raises(InputError, match=message):
        sweep(list(bench.submissions.values()), bench.labels_dir, BASE, output_dir=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_embedding_dims_wider_than_the_submission_are_rejected(bench, tmp_path):
    from neuco_jax.errors import InputError
    config = Config(k_folds=3, ablations=Ablations(embedding_dims=(8, 128)))
    with pytest.raises(InputError, match="asks for 128 dimensions but the submission has 64"):
        sweep([bench.submissions["method_a"]], bench.labels_dir, config, output_dir=tmp_path)
