"""neuco_jax.Benchmark: arrays scored in process equal `evaluate` of the same embeddings in a file."""

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from neuco_jax import Benchmark, engine, runtime
from neuco_jax.config import config_from_dict
from neuco_jax.data import CONTENT_KEY, array_sha256, load_submission
from neuco_jax.errors import ConfigError, InputError
from neuco_jax.leaderboard import write_leaderboard
from neuco_jax.pipeline import evaluate
from neuco_jax.probes import folds as probe_folds
from neuco_jax.synthetic import make_benchmark

from conftest import assert_scores_close

TASKS = ["biomass_mean", "crops", "landcover_forest", "random_cls"]
LINEAR = {"k_folds": 3, "epochs": 3, "batch_size": 16, "learning_rate": 0.03, "task_filter": TASKS}
CONFIGS = {
    "linear": LINEAR,
    "ridge": {"k_folds": 3, "probe_type": "ridge", "task_filter": TASKS},
    "knn": {"k_folds": 3, "probe_type": "knn", "task_filter": TASKS, "probe_params": {"k_list": [3, 9]}},
    "mlp": {"k_folds": 3, "probe_type": "mlp", "task_filter": TASKS,
            "probe_params": {"hidden_dims": [16], "epochs": 3, "batch_size": 16, "learning_rate": 0.01}},
    "svm": {"k_folds": 3, "probe_type": "svm", "task_filter": ["biomass_mean", "random_cls"],
            "probe_params": {"C_start_end": [0.1, 10], "kernel_degree_list": [2], "epsilon_list": [0.1],
                             "kernel_gamma_start_end": [0.01, 0.1], "kernel_coef0_start_end": [0, 1],
                             "opt_params": {"n_iter": 2, "n_points": 1, "optimizer_kwargs": {"n_initial_points": 2}}}},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=500, dim=24, n_methods=2)


def steps(config, n_ids=500):
    """Minibatch steps of a trained probe (assert_scores_close's bound); 1 for the closed-form kinds."""
    if config.probe_type in ("linear", "mlp"):
        return config.epochs * math.ceil(n_ids / config.batch_size)
    return 1


@pytest.mark.parametrize("probe", list(CONFIGS))
def test_scores_equal_evaluate_of_the_same_embeddings_in_a_file(data, tmp_path, probe):
    """Numpy and (for the kinds that train on the device) JAX arrays, against the file path; the repeat
    call with the same shapes neither traces nor compiles again."""
    config = config_from_dict(CONFIGS[probe])
    path = data.submissions["method_a"]
    want, = evaluate(path, data.labels_dir, config, output_dir=tmp_path)
    ids, x = load_submission(path)
    bench = Benchmark(data.labels_dir, config)
    arrays = [x] + ([jax.device_put(x)] if probe in ("linear", "knn", "mlp") else [])
    for arr in arrays:
        got = bench.score(list(ids), arr, method_name="method_a")
        assert list(got.tasks) == [s.name for s in want.scores]
        for s in want.scores:
            task = got.tasks[s.name]
            assert_scores_close(task.fold_scores, s.fold_scores, steps(config))
            assert task.q == pytest.approx(s.q_stat, rel=1e-6, abs=1e-6)
            assert task.mean == pytest.approx(s.mean_score, rel=1e-6, abs=1e-6)
    compiles, traces = runtime.COMPILE_COUNT, _traces()
    again = bench.score(ids, x)
    assert (runtime.COMPILE_COUNT, _traces()) == (compiles, traces)
    for s in want.scores:
        assert_scores_close(again.tasks[s.name].fold_scores, s.fold_scores, steps(config))


def _traces():
    from neuco_jax.probes import knn, mlp

    return engine.TRACE_COUNT, knn.TRACE_COUNT, mlp.TRACE_COUNT


def test_a_device_array_is_stacked_on_the_device(data, monkeypatch):
    """The linear probe gets the JAX array itself (standardised and stacked with jax.numpy), not a host copy."""
    seen = []
    stack = probe_folds.stack_embeddings

    def spy(benches, width=None):
        emb = stack(benches, width)
        seen.append((all(isinstance(b.x, jax.Array) for b in benches), isinstance(emb.x, jax.Array)))
        return emb

    monkeypatch.setattr(probe_folds, "stack_embeddings", spy)
    ids, x = load_submission(data.submissions["method_a"])
    host = Benchmark(data.labels_dir, LINEAR).score(ids, x)
    device = Benchmark(data.labels_dir, LINEAR).score(ids, jax.device_put(x))
    assert seen == [(False, False), (True, True)]
    for name, task in host.tasks.items():
        assert_scores_close(device.tasks[name].fold_scores, task.fold_scores, steps(config_from_dict(LINEAR)))


def test_score_many_equals_one_call_per_method_and_joins_the_cli_leaderboard(data, tmp_path):
    bench = Benchmark(data.labels_dir, LINEAR)
    arrays = {name: load_submission(path) for name, path in data.submissions.items()}
    many = bench.score_many(arrays)
    assert [r.method_name for r in many] == list(arrays)
    for r, (name, (ids, x)) in zip(many, arrays.items()):
        one = bench.score(ids, x, method_name=name)
        for task, scores in one.tasks.items():
            assert_scores_close(r.tasks[task].fold_scores, scores.fold_scores, steps(bench.config))
        assert r.content_hash == array_sha256(ids, x)

    # Written, the runs are those evaluate writes: the CLI's leaderboard ranks them as bench.leaderboard does.
    for r in many:
        run = bench.write(r, tmp_path, "val", update_leaderboard=False)
        summary = json.loads((run / "results_summary.json").read_text())
        assert summary[CONTENT_KEY] == r.content_hash
        assert summary["task_q_scores"] == pytest.approx({t: v.q for t, v in r.tasks.items()}, rel=1e-12)
        assert (run / "fold_scores.csv").is_file()
    board = write_leaderboard(tmp_path, "val")
    on_disk = [e.rsplit("_", 2)[0] for e in board_table(board)["experiment"]]
    in_memory = list(bench.leaderboard(many)["experiment"])
    assert on_disk == in_memory
    # Against the phase's written runs: a re-scored method replaces its run, the others stay.
    both = bench.leaderboard(many[:1], output_dir=tmp_path, phase="val")
    assert len(both) == len(many) and list(both["experiment"]).count(many[0].method_name) == 1


def board_table(path):
    import pandas as pd

    return pd.read_csv(path)


@pytest.mark.parametrize("make, match", [
    (lambda ids, x: (ids[:-1], x), "ids for"),
    (lambda ids, x: ([], x[:0]), "no rows"),
    (lambda ids, x: ([ids[0]] + list(ids[1:-1]) + [ids[0]], x), "is on rows 0 and"),
    (lambda ids, x: (ids, x[:, :, None]), r"expected an \(N, D\) array"),
    (lambda ids, x: (ids, np.concatenate([x, x], axis=1)), "dimensions but embedding_dim is 24"),
    (lambda ids, x: (ids, np.where(np.arange(x.shape[1]) == 3, np.nan, x)), "holds nan"),
    (lambda ids, x: (ids, np.where(np.arange(x.shape[1]) == 5, np.inf, x)), "holds inf"),
    (lambda ids, x: ([f"unknown_{i}" for i in range(len(ids))], x), "is an id of the labels"),
    (lambda ids, x: (list(range(len(ids))), x), "ids must be strings"),
    (lambda ids, x: (ids, x.astype(str)), "not a real number type"),
])
def test_bad_arrays_are_one_line_input_errors(data, make, match):
    ids, x = load_submission(data.submissions["method_a"])
    bench = Benchmark(data.labels_dir, {**LINEAR, "embedding_dim": 24})
    for arr in (x, jax.device_put(x)):
        bad_ids, bad_x = make(list(ids), np.asarray(arr))
        with pytest.raises(InputError, match=match) as e:
            bench.score(bad_ids, bad_x if isinstance(arr, np.ndarray) or bad_x.dtype.kind == "U"
                        else jax.device_put(bad_x), method_name="m")
        assert "\n" not in str(e.value) and "'m'" in str(e.value)


def test_bad_calls_are_errors(data):
    ids, x = load_submission(data.submissions["method_a"])
    bench = Benchmark(data.labels_dir, LINEAR)
    with pytest.raises(InputError, match="used twice"):
        bench.score_many([(ids, x), (ids, x)], method_names=["a", "a"])
    with pytest.raises(InputError, match="the dict's keys are the names"):
        bench.score_many({"a": (ids, x)}, method_names=["a"])
    with pytest.raises(InputError, match="no embeddings"):
        bench.score_many([])
    with pytest.raises(ConfigError, match="ablations"):
        Benchmark(data.labels_dir, {**LINEAR, "ablations": {"learning_rates": [0.01, 0.1]}})
    with pytest.raises(InputError, match="labels folder not found"):
        Benchmark(data.labels_dir / "missing", LINEAR)


def test_no_config_is_the_packaged_linear_config(data):
    from neuco_jax.config import load_config

    packaged = load_config(Path(__file__).resolve().parents[1] / "configs" / "linear.yaml")
    assert Benchmark(data.labels_dir).config == packaged == Benchmark(data.labels_dir, None).config
