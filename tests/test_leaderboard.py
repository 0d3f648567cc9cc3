"""Tests of neuco_jax.leaderboard against hand arithmetic and plain numpy."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from neuco_jax.errors import InputError
from neuco_jax.leaderboard import (aggregate_ranks, collect_runs, format_leaderboard,
                                   rank_runs, read_runs, write_leaderboard)
from neuco_jax.protocol import MixedProtocolsError

PHASE = "dev"
TASKS = ["a", "b", "c"]
LEADERBOARD_COLUMNS = [
    "experiment", "mean_score", "weighted_score", "aggregated_rank",
    "q::a", "q::b", "q::c", "acc::a", "acc::b", "acc::c",
    "overall_q_score", "overall_acc_score"]


def write_summary(output_dir, folder, summary):
    """Writes summary (a dict, or raw text) as <output_dir>/<PHASE>/<folder>/results_summary.json."""
    run_dir = output_dir / PHASE / folder
    run_dir.mkdir(parents=True)
    path = run_dir / "results_summary.json"
    path.write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return path


def current_summary(experiment, q, acc):
    """results_summary.json content in the reference's current format."""
    return {"experiment": experiment,
            "overall_q_score": float(np.mean(list(q.values()))),
            "overall_acc_score": float(np.mean(list(acc.values()))),
            "task_q_scores": q, "task_acc_scores": acc, "config": {"k_folds": 3}}


def older_summary(experiment, q, config=None):
    """results_summary.json content in the reference's older, Q-only format (config when it was given one)."""
    summary = {"experiment": experiment, "overall_score": float(np.mean(list(q.values()))),
               "task_results": q}
    return {**summary, "config": config} if config is not None else summary


# Q scores of the hand-computed example. Offsets per task (50, 20, 30) change
# neither ranks nor standard deviations; they make the numbers look like Q's.
EXAMPLE_Q = {
    "alpha": {"a": 50.0, "b": 24.0, "c": 34.0},
    "beta": {"a": 52.0, "b": 20.0, "c": 30.0},
    "gamma": {"a": 52.0, "b": 24.0, "c": 30.0},   # written in the older format
    "delta": {"a": 52.0, "b": 24.0, "c": 36.0},
    "epsilon": {"a": 90.0, "b": 90.0},             # misses task c: not ranked
}


@pytest.fixture
def example_dir(tmp_path):
    """Output folder with the example runs, one of them incomplete (no summary)."""
    for name, q in EXAMPLE_Q.items():
        folder = f"{name}_20250101_000000"
        if name == "gamma":
            write_summary(tmp_path, folder, older_summary(name, q, config={"k_folds": 3}))
        else:
            write_summary(tmp_path, folder,
                          current_summary(name, q, {t: v / 100 for t, v in q.items()}))
    (tmp_path / PHASE / "zeta_20250101_000000" / "a").mkdir(parents=True)
    return tmp_path


def test_collect_runs_reads_both_formats_and_skips_incomplete(example_dir):
    with pytest.warns(UserWarning, match="zeta_20250101_000000"):
        runs = collect_runs(example_dir, PHASE)
    assert list(runs.columns) == ["experiment", "q::a", "q::b", "q::c",
                                  "acc::a", "acc::b", "acc::c",
                                  "overall_q_score", "overall_acc_score"]
    # Folder name order.
    assert list(runs["experiment"]) == ["alpha", "beta", "delta", "epsilon", "gamma"]
    runs = runs.set_index("experiment")
    assert runs.loc["alpha", "acc::c"] == 0.34
    assert runs.loc["gamma", "q::b"] == 24.0
    assert runs.loc["gamma", "overall_q_score"] == pytest.approx(106 / 3)
    assert runs.loc["gamma", ["acc::a", "acc::b", "acc::c", "overall_acc_score"]].isna().all()
    assert np.isnan(runs.loc["epsilon", "q::c"]) and np.isnan(runs.loc["epsilon", "acc::c"])


def test_hand_computed_example(example_dir):
    # Complete runs, in the order alpha, beta, gamma, delta:
    #   task a: 50 52 52 52 -> ranks 4 1 1 1; mean 51.5, sd = sqrt((2.25+3*0.25)/3) = 1
    #   task b: 24 20 24 24 -> ranks 1 4 1 1; mean 23, sd = sqrt((1+9+1+1)/3) = 2
    #   task c: 34 30 30 36 -> ranks 2 3 3 1; mean 32.5, sd = sqrt((2.25+6.25+6.25+12.25)/3) = 3
    #   weights = (1, 2, 3) / 6
    #   weighted: alpha (4*1 + 1*2 + 2*3)/6 = 2, beta (1 + 4*2 + 3*3)/6 = 3,
    #             gamma (1 + 2 + 3*3)/6 = 2, delta (1 + 2 + 3)/6 = 1
    #   aggregated: delta 1, alpha 2, gamma 2 (tie, name order), beta 4
    # epsilon misses task c and is dropped before ranking.
    q = np.array([[EXAMPLE_Q[n][t] for t in TASKS] for n in ["alpha", "beta", "gamma", "delta"]])
    ranks, weights, weighted = aggregate_ranks(q)
    np.testing.assert_array_equal(ranks, [[4, 1, 2], [1, 4, 3], [1, 1, 3], [1, 1, 1]])
    np.testing.assert_allclose(weights, [1 / 6, 2 / 6, 3 / 6], rtol=1e-15)
    np.testing.assert_allclose(weighted, [2, 3, 2, 1], rtol=1e-15)

    with pytest.warns(UserWarning):
        board = rank_runs(collect_runs(example_dir, PHASE))
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert list(board["experiment"]) == ["delta", "alpha", "gamma", "beta"]
    assert list(board["aggregated_rank"]) == [1, 2, 2, 4]
    np.testing.assert_allclose(board["weighted_score"], [1, 2, 2, 3], rtol=1e-15)
    # mean_score: delta (52+24+36)/3, alpha (50+24+34)/3, gamma (52+24+30)/3, beta (52+20+30)/3
    np.testing.assert_allclose(board["mean_score"], [112 / 3, 108 / 3, 106 / 3, 102 / 3])
    assert np.isnan(board.loc[board["experiment"] == "gamma", "overall_acc_score"]).all()

    # The same with plain numpy: rank = 1 + number of runs with a strictly higher Q.
    plain_ranks = 1 + (q[None, :, :] > q[:, None, :]).sum(axis=1)
    sd = q.std(axis=0, ddof=1)
    plain_weighted = plain_ranks @ (sd / sd.sum())
    np.testing.assert_array_equal(ranks, plain_ranks)
    np.testing.assert_allclose(weighted, plain_weighted, rtol=1e-12)


def test_uniform_weighting_is_mean_rank(example_dir):
    # Mean ranks from the hand example: alpha 7/3, beta 8/3, gamma 5/3, delta 1,
    # which orders gamma before alpha, unlike the std weighting.
    with pytest.warns(UserWarning):
        board = rank_runs(collect_runs(example_dir, PHASE), weighting="uniform")
    assert list(board["experiment"]) == ["delta", "gamma", "alpha", "beta"]
    assert list(board["aggregated_rank"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(board["weighted_score"], [1, 5 / 3, 7 / 3, 8 / 3], rtol=1e-15)


def test_equal_weights_when_no_spread_or_one_run():
    # All runs equal on every task: the std weights would be 0/0.
    ranks, weights, weighted = aggregate_ranks(np.full((3, 2), 7.0))
    np.testing.assert_array_equal(ranks, np.ones((3, 2)))
    np.testing.assert_array_equal(weights, [0.5, 0.5])
    np.testing.assert_array_equal(weighted, [1.0, 1.0, 1.0])
    _, weights, weighted = aggregate_ranks([[3.0, 1.0, 2.0]])
    np.testing.assert_allclose(weights, [1 / 3] * 3)
    np.testing.assert_allclose(weighted, [1.0])


def test_no_complete_runs(tmp_path):
    write_summary(tmp_path, "only_a", current_summary("only_a", {"a": 1.0}, {"a": 0.1}))
    write_summary(tmp_path, "only_b", older_summary("only_b", {"b": 2.0}))
    board = rank_runs(collect_runs(tmp_path, PHASE))
    assert board.empty
    assert list(board.columns) == ["experiment", "mean_score", "weighted_score",
                                   "aggregated_rank", "q::a", "q::b", "acc::a", "acc::b",
                                   "overall_q_score", "overall_acc_score"]
    assert write_leaderboard(tmp_path, PHASE) is None
    assert not (tmp_path / "leaderboards").exists()
    assert format_leaderboard(board) == "No complete runs to rank."


def test_unknown_weighting():
    with pytest.raises(ValueError, match="'std', 'uniform'"):
        rank_runs(pd.DataFrame(columns=["experiment", "overall_q_score", "overall_acc_score"]),
                  weighting="median")


def test_write_leaderboard_csv_round_trip(example_dir):
    with pytest.warns(UserWarning):
        path = write_leaderboard(example_dir, PHASE, stamp="20250102_030405")
    assert path == example_dir / "leaderboards" / PHASE / "leaderboard_20250102_030405.csv"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    written = pd.read_csv(path)
    assert list(written.columns) == LEADERBOARD_COLUMNS
    with pytest.warns(UserWarning):
        expected = rank_runs(collect_runs(example_dir, PHASE))
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    text = format_leaderboard(written)
    assert text.splitlines()[1].split()[:2] == ["1", "delta"]

    with pytest.warns(UserWarning):
        named = write_leaderboard(example_dir, PHASE, weighting="uniform",
                                  stamp="20250102_030406")
    assert named.name == "leaderboard_20250102_030406.csv"


@pytest.mark.parametrize("text, problem", [
    ('{"experiment": "m", "overall_q_score": 1.0,', "not valid JSON"),
    ('{"experiment": "m", "overall_q_score": 1.0}', "task_q_scores"),
    ('{"experiment": "m", "task_results": {"a": 1.0}}', "overall_score"),
    ('{"experiment": "m", "overall_score": 1.0, "task_results": {"a": "high"}}', "task_results.a"),
    ('[1, 2]', "expected an object"),
])
def test_malformed_summary_names_the_file(tmp_path, text, problem):
    path = write_summary(tmp_path, "broken_20250101_000000", text)
    with pytest.raises(InputError, match=problem) as info:
        collect_runs(tmp_path, PHASE)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_phase_folder(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path / "nope")):
        collect_runs(tmp_path, "nope")


def runs_frame(q, names, tasks):
    """collect_runs-shaped table from q (runs, tasks) with the given run and task names."""
    table = pd.DataFrame(q, columns=[f"q::{t}" for t in tasks])
    for t in tasks:
        table[f"acc::{t}"] = np.nan
    table.insert(0, "experiment", names)
    table["overall_q_score"] = table[[f"q::{t}" for t in tasks]].mean(axis=1)
    table["overall_acc_score"] = np.nan
    return table


# Q scores from a few fixed values (so that ties are common) and arbitrary floats.
q_values = st.one_of(st.sampled_from([-10.0, 0.0, 5.0, 50.0]),
                     st.floats(-100, 100, allow_nan=False, allow_infinity=False))


@st.composite
def q_matrices(draw, max_runs=6, max_tasks=4):
    """q: (runs, tasks) Q scores."""
    n_runs = draw(st.integers(1, max_runs))
    n_tasks = draw(st.integers(1, max_tasks))
    rows = st.lists(q_values, min_size=n_tasks, max_size=n_tasks)
    return np.array(draw(st.lists(rows, min_size=n_runs, max_size=n_runs)))


@settings(max_examples=50, deadline=None)
@given(q=q_matrices(), data=st.data(), weighting=st.sampled_from(["std", "uniform"]))
def test_order_of_runs_and_tasks_does_not_matter(q, data, weighting):
    n_runs, n_tasks = q.shape
    names = [f"run{i}" for i in range(n_runs)]
    tasks = [f"task{t}" for t in range(n_tasks)]
    board = rank_runs(runs_frame(q, names, tasks), weighting)

    run_order = data.draw(st.permutations(range(n_runs)))
    # Renaming the tasks moves their columns, since rank_runs sorts them by name.
    renamed = data.draw(st.permutations(tasks))
    permuted = rank_runs(runs_frame(q[run_order], [names[i] for i in run_order], renamed),
                         weighting)
    assert list(permuted["experiment"]) == list(board["experiment"])
    np.testing.assert_array_equal(permuted["aggregated_rank"], board["aggregated_rank"])
    np.testing.assert_array_equal(permuted["weighted_score"], board["weighted_score"])


@settings(max_examples=50, deadline=None)
@given(q=q_matrices())
def test_strictly_worst_run_keeps_order_under_uniform_weights(q):
    names = [f"run{i}" for i in range(q.shape[0])]
    tasks = [f"task{t}" for t in range(q.shape[1])]
    board = rank_runs(runs_frame(q, names, tasks), "uniform")
    worst = q.min(axis=0) - 1.0
    grown = rank_runs(runs_frame(np.vstack([q, worst]), names + ["worst"], tasks), "uniform")
    assert list(grown["experiment"]) == list(board["experiment"]) + ["worst"]
    np.testing.assert_array_equal(grown["aggregated_rank"].iloc[:-1], board["aggregated_rank"])
    assert grown["aggregated_rank"].iloc[-1] == q.shape[0] + 1


@settings(max_examples=50, deadline=None)
@given(q=q_matrices())
def test_aggregate_ranks_matches_plain_numpy(q):
    ranks, weights, weighted = aggregate_ranks(q)
    np.testing.assert_array_equal(ranks, 1 + (q[None, :, :] > q[:, None, :]).sum(axis=1))
    sd = q.std(axis=0, ddof=1) if q.shape[0] > 1 else np.ones(q.shape[1])
    plain_weights = sd / sd.sum() if sd.sum() > 0 else np.full(q.shape[1], 1 / q.shape[1])
    np.testing.assert_allclose(weights, plain_weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted, ranks @ plain_weights, rtol=1e-9)


def reference_leaderboard(q_table):
    """The reference's procedure restated step by step with pandas and scipy (REFERENCE.md)."""
    from scipy.stats import rankdata
    df = q_table.dropna().reset_index(drop=True)
    scores = df.drop(columns="experiment").to_numpy()
    ranks = rankdata(-scores, axis=0, method="min")
    stds = np.std(scores, axis=0, ddof=1)
    weights = stds / stds.sum()
    df["weighted_score"] = (ranks * weights).sum(axis=1)
    df["aggregated_rank"] = rankdata(df["weighted_score"], method="min")
    return df.sort_values("weighted_score")


def test_reproduces_the_reference_leaderboard_from_reference_summaries(tmp_path):
    rng = np.random.default_rng(7)
    tasks = ["biomass_mean", "clouds_reg", "crops", "random_cls", "random_reg"]
    rows = []
    for m in range(12):
        q = {t: float(rng.normal(20 - m, 6)) for t in tasks}
        if m == 5:
            q.pop("crops")  # this run misses a task and must be dropped
        acc = {t: float(rng.uniform()) for t in q}
        write_summary(tmp_path, f"m{m}_20250101_000000", current_summary(f"m{m}_20250101_000000", q, acc))
        rows.append({"experiment": f"m{m}_20250101_000000", **q})
    expected = reference_leaderboard(pd.DataFrame(rows, columns=["experiment", *tasks]))
    board = rank_runs(collect_runs(tmp_path, PHASE))
    assert list(board["experiment"]) == list(expected["experiment"])
    np.testing.assert_allclose(board["weighted_score"], expected["weighted_score"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(board["aggregated_rank"], expected["aggregated_rank"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.sampled_from([-1.5, 0.0, 2.0, 3.25, 7.0]), min_size=3, max_size=3),
                min_size=1, max_size=12))
def test_min_rank_matches_scipy(values):
    from scipy.stats import rankdata
    from neuco_jax.leaderboard import min_rank
    a = np.array(values)
    np.testing.assert_array_equal(min_rank(a, axis=0), rankdata(a, axis=0, method="min"))
    np.testing.assert_array_equal(min_rank(a[:, 0]), rankdata(a[:, 0], method="min"))


# Protocols: runs scored differently are never ranked together silently.

def protocol_phase(output_dir, configs, **extra):
    """Writes one run per {folder: config} (None: no config) with made-up Q's; returns the folder names."""
    for r, (folder, config) in enumerate(configs.items()):
        q = {t: 10.0 * (r + 1) + i for i, t in enumerate(TASKS)}
        summary = current_summary(folder, q, {t: v / 100 for t, v in q.items()})
        summary.pop("config")
        if config is not None:
            summary["config"] = config
        write_summary(output_dir, folder, {**summary, **extra.get(folder, {})})
    return list(configs)


def test_runs_with_different_k_folds_are_an_error_naming_the_key_and_runs(tmp_path, capsys):
    from neuco_jax.cli import main
    protocol_phase(tmp_path, {"a_20250101_000000": {"k_folds": 3}, "b_20250101_000000": {"k_folds": 3},
                              "c_20250101_000000": {"k_folds": 5}})
    with pytest.raises(MixedProtocolsError) as info:
        collect_runs(tmp_path, PHASE)
    message = str(info.value)
    assert "\n" not in message
    assert "k_folds = 3 (a_20250101_000000, b_20250101_000000) / 5 (c_20250101_000000)" in message
    assert "--allow_mixed_protocols" in message and "--latest" in message
    assert "probe_params" not in message and "labels_fingerprint" not in message  # only what differs
    with pytest.raises(MixedProtocolsError):
        write_leaderboard(tmp_path, PHASE)
    assert not (tmp_path / "leaderboards").exists()

    assert main(["leaderboard", "--output_dir", str(tmp_path), "--phase", PHASE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "k_folds = 3" in err


def test_allow_mixed_protocols_ranks_them_and_marks_the_csv(tmp_path, capsys):
    from neuco_jax.cli import main
    protocol_phase(tmp_path, {"a_20250101_000000": {"k_folds": 3}, "b_20250101_000000": {"k_folds": 3},
                              "c_20250101_000000": {"k_folds": 5}})
    path = write_leaderboard(tmp_path, PHASE, allow_mixed_protocols=True)
    board = pd.read_csv(path)
    assert list(board.columns) == LEADERBOARD_COLUMNS + ["protocol"]
    protocol = dict(zip(board["experiment"], board["protocol"]))
    assert protocol["a_20250101_000000"] == protocol["b_20250101_000000"] != protocol["c_20250101_000000"]
    # The ranking itself is the usual one.
    plain = rank_runs(collect_runs(tmp_path, PHASE, allow_mixed_protocols=True).drop(columns="protocol"))
    pd.testing.assert_frame_equal(board.drop(columns="protocol"), plain, check_dtype=False)

    with pytest.warns(UserWarning, match="ranked runs of 2 different protocols together"):
        assert main(["leaderboard", "--output_dir", str(tmp_path), "--phase", PHASE,
                     "--allow_mixed_protocols"]) == 0
    assert "protocol" in capsys.readouterr().out.splitlines()[0]


def test_different_label_files_are_an_error_naming_the_fingerprint(tmp_path):
    configs = {"a_20250101_000000": {"k_folds": 3}, "b_20250101_000000": {"k_folds": 3}}
    protocol_phase(tmp_path, configs, **{
        "a_20250101_000000": {"labels_fingerprint": "sha256:" + "1" * 64, "exclude_fingerprint": None},
        "b_20250101_000000": {"labels_fingerprint": "sha256:" + "2" * 64, "exclude_fingerprint": None}})
    with pytest.raises(MixedProtocolsError, match=r"labels_fingerprint = sha256:111111111111 \(a_20250101_000000\) "
                                                  r"/ sha256:222222222222 \(b_20250101_000000\)"):
        collect_runs(tmp_path, PHASE)


def test_only_scoring_keys_and_what_an_absent_key_means_decide_the_protocol(tmp_path):
    from neuco_jax.config import Config
    neuco = Config(k_folds=40, device="cpu", enable_plots=True, store_probes=True, task_filter=("a", "b", "c"),
                   update_leaderboard=True, output_fold_results=True).to_dict()
    reference = {"k_folds": 40, "probe_type": "linear", "store_models": False,
                 "probe_params": {"batch_size": 64, "epochs": 10, "learning_rate": 0.001, "device": "cuda"}}
    flat = {"k_folds": 40.0, "batch_size": 64, "epochs": 10, "learning_rate": 1e-3}  # the older flat layout
    protocol_phase(tmp_path, {"neuco_20250101_000000": neuco, "reference_20250101_000000": reference,
                              "flat_20250101_000000": flat})
    runs = collect_runs(tmp_path, PHASE)
    assert "protocol" not in runs.columns and len(rank_runs(runs)) == 3

    for key, value in [("seed", 7), ("shuffle", "shared"), ("label_fraction", 0.5), ("metric_rule", "logit"),
                       ("standardize_embeddings", False), ("normalize_labels", False), ("embedding_dim", 64)]:
        changed = tmp_path / key
        protocol_phase(changed, {"ref_20250101_000000": reference,
                                 "other_20250101_000000": {**reference, key: value}})
        with pytest.raises(MixedProtocolsError, match=f"{key} = "):
            collect_runs(changed, PHASE)
    for key, value in [("batch_size", 32), ("epochs", 20), ("learning_rate", 0.01)]:
        changed = tmp_path / key
        protocol_phase(changed, {"ref_20250101_000000": reference, "other_20250101_000000": {
            **reference, "probe_params": {**reference["probe_params"], key: value}}})
        with pytest.raises(MixedProtocolsError, match=f"probe_params.{key} = "):
            collect_runs(changed, PHASE)


def test_reference_summaries_rank_together_but_not_silently_beside_recorded_protocols(tmp_path):
    reference = {"k_folds": 40, "probe_type": "linear",
                 "probe_params": {"batch_size": 64, "epochs": 10, "learning_rate": 0.001}}
    for q, name in [(10.0, "x_20250101_000000"), (20.0, "y_20250101_000000")]:
        write_summary(tmp_path, name, older_summary(name, {t: q + i for i, t in enumerate(TASKS)}))
    protocol_phase(tmp_path, {"z_20250101_000000": reference})  # the reference's current format
    with pytest.raises(MixedProtocolsError,
                       match=r"config = not recorded \(x_20250101_000000, y_20250101_000000\) / "
                             r"recorded \(z_20250101_000000\)"):
        collect_runs(tmp_path, PHASE)
    (tmp_path / PHASE / "z_20250101_000000" / "results_summary.json").unlink()
    with pytest.warns(UserWarning, match="incomplete run"):
        assert list(rank_runs(collect_runs(tmp_path, PHASE))["experiment"]) == [
            "y_20250101_000000", "x_20250101_000000"]

    # A run that recorded its label files beside one (the reference's) that did not.
    mixed = tmp_path / "mixed"
    protocol_phase(mixed, {"ref_20250101_000000": reference, "jax_20250101_000000": reference},
                   jax_20250101_000000={"labels_fingerprint": "sha256:" + "3" * 64, "exclude_fingerprint": None})
    with pytest.raises(MixedProtocolsError, match=r"labels_fingerprint = sha256:333333333333 \(jax_20250101_000000\) "
                                                  r"/ not recorded \(ref_20250101_000000\); "
                                                  r"exclude_fingerprint = none \(jax_20250101_000000\) / not recorded"):
        collect_runs(mixed, PHASE)


def test_incomplete_runs_do_not_count_and_ablation_axes_are_not_compared(tmp_path):
    protocol_phase(tmp_path, {"a_20250101_000000": {"k_folds": 3}, "b_20250101_000000": {"k_folds": 3}})
    write_summary(tmp_path, "partial_20250101_000000",
                  {**current_summary("partial_20250101_000000", {"a": 1.0}, {"a": 0.1}), "config": {"k_folds": 9}})
    assert len(rank_runs(collect_runs(tmp_path, PHASE))) == 2  # the k_folds 9 run lacks tasks: not ranked

    variants = tmp_path / "variants"
    axes = {"ablation_axes": ["probe_params.learning_rate"]}
    protocol_phase(variants, {
        "m@lr=0.001_20250101_000000": {"k_folds": 3, "probe_params": {"learning_rate": 0.001}},
        "m@lr=0.01_20250101_000000": {"k_folds": 3, "probe_params": {"learning_rate": 0.01}}},
        **{"m@lr=0.001_20250101_000000": axes, "m@lr=0.01_20250101_000000": axes})
    assert len(rank_runs(collect_runs(variants, PHASE))) == 2
    write_summary(variants, "n@lr=0.1_20250101_000000",
                  {**current_summary("n", {t: 1.0 for t in TASKS}, {t: 0.1 for t in TASKS}),
                   "config": {"k_folds": 5, "probe_params": {"learning_rate": 0.1}}, **axes})
    with pytest.raises(MixedProtocolsError, match=r"k_folds = 3 .* / 5 \(n\)") as info:
        collect_runs(variants, PHASE)
    assert "learning_rate" not in str(info.value)


def test_latest_keeps_the_newest_complete_run_of_each_method(tmp_path, capsys):
    from neuco_jax.cli import main
    protocol_phase(tmp_path, {"m_20250101_000000": {"k_folds": 3}, "m_20250102_000000": {"k_folds": 5},
                              "m_20250102_000000_2": {"k_folds": 7}, "m_x_20250101_000000": {"k_folds": 7},
                              "other_20241231_235959": {"k_folds": 7}})
    (tmp_path / PHASE / "m_20250103_000000").mkdir()  # newer but incomplete: skipped
    with pytest.warns(UserWarning, match="incomplete run"):
        latest = [r["run_dir"].name for r in read_runs(tmp_path, PHASE, latest=True)]
    assert latest == ["m_20250102_000000_2", "m_x_20250101_000000", "other_20241231_235959"]
    with pytest.warns(UserWarning), pytest.raises(MixedProtocolsError):
        collect_runs(tmp_path, PHASE)  # default: every run, as the reference
    with pytest.warns(UserWarning, match="incomplete run"):
        assert main(["leaderboard", "--output_dir", str(tmp_path), "--phase", PHASE, "--latest"]) == 0
    (path,) = (tmp_path / "leaderboards" / PHASE).glob("*.csv")
    assert sorted(pd.read_csv(path)["experiment"]) == latest
