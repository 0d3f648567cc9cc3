"""Probes sharded over several devices, and over several processes, give one device's scores."""

import dataclasses
import os
import socket
import subprocess
import sys

import pytest

from neuco_jax.config import Config
from neuco_jax.pipeline import evaluate
from neuco_jax.synthetic import make_benchmark

from conftest import adamw_steps, evaluate_command, q_tolerance, written_q

# Probes that learn (held-out R^2 0.4-0.7), so rounding differences between programs are not amplified.
CONFIG = "k_folds: 3\nprobe_params: {batch_size: 16, epochs: 5, learning_rate: 0.03}\n"
ONE = Config(k_folds=3, epochs=5, batch_size=16, learning_rate=0.03)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=1000, dim=64, n_methods=1)


def cpu_devices(n):
    """The environment of a subprocess that sees n CPU devices (keeping the caller's other XLA flags)."""
    return {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}",
            "JAX_PLATFORMS": "cpu"}


def assert_one_device_q(got, bench, tmp_path, shuffle="per_fold"):
    """Q per task as one device computes it, to within float32 rounding (conftest.q_tolerance).

    On one device the per-fold step may be the native kernel, on several it is XLA's, and XLA
    may block products over a device's probes differently: the same probes, rounded differently.
    """
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir, dataclasses.replace(ONE, shuffle=shuffle),
                    output_dir=tmp_path / "one")
    assert sorted(got) == sorted(s.name for s in run.scores)
    steps = adamw_steps(bench.labels_dir, ONE)
    for s in run.scores:
        assert abs(got[s.name] - s.q_stat) <= q_tolerance(s.fold_scores, steps), s.name


@pytest.mark.parametrize("shuffle", ["per_fold", "shared"])
def test_four_devices_give_the_one_device_scores(bench, tmp_path, shuffle):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG + f"shuffle: {shuffle}\n")
    # 3 folds over 4 devices: the probe axis is padded, then the padding dropped.
    env = cpu_devices(4)
    probe = "import jax; print(len(jax.devices()))"
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip() == "4"
    subprocess.run(evaluate_command(bench, tmp_path / "four", config), env=env, check=True, capture_output=True, timeout=300)
    assert_one_device_q(written_q(tmp_path / "four"), bench, tmp_path, shuffle)


def test_two_processes_give_the_one_process_scores(bench, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = cpu_devices(2)
    procs = [subprocess.Popen(evaluate_command(bench, tmp_path / "multi", config, "--coordinator_address",
                                               f"127.0.0.1:{port}", "--num_processes", "2", "--process_id", str(i)),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert_one_device_q(written_q(tmp_path / "multi"), bench, tmp_path)  # written once, by process 0


def test_svm_problems_sharded_over_four_devices_give_the_one_device_scores(bench, tmp_path):
    """Every fold x candidate problem runs its own loop on its device (shard_map). A problem's path is
    bit-identical wherever it runs (its updates are elementwise, its choices argmaxes); only the sums
    of the bias and objective may round differently with the batch shape, by ~1e-16 relative, so the
    fold scores agree far inside 1e-9. One device runs the same XLA solver (NEUCO_JAX_NATIVE=0: the
    native kernel contracts FMA differently, so its path may part from XLA's at an exact tie;
    tests/test_native_smo.py compares the two)."""
    import json

    import numpy as np

    from neuco_jax.fold_scores import read_fold_scores

    keys = {"k_folds": 3, "probe_type": "svm", "task_filter": ["biomass_mean", "random_cls"],
            "probe_params": {"C_start_end": [0.1, 10], "kernel_degree_list": [2, 3], "kernel_coef0_start_end": [0, 1],
                             "epsilon_list": [0.1], "opt_params": {"n_iter": 3, "n_points": 3,
                                                                   "optimizer_kwargs": {"n_initial_points": 3}}}}
    config = tmp_path / "svm.yaml"
    config.write_text(json.dumps(keys))  # YAML reads JSON
    for name, env in (("four", cpu_devices(4)), ("one", {**cpu_devices(1), "NEUCO_JAX_NATIVE": "0"})):
        subprocess.run(evaluate_command(bench, tmp_path / name, config), env=env, check=True, capture_output=True,
                       timeout=300)
    (four,), (one,) = ((tmp_path / name / "results").iterdir() for name in ("four", "one"))
    got = read_fold_scores(four, keys["task_filter"]).scores
    want = read_fold_scores(one, keys["task_filter"]).scores
    for task in keys["task_filter"]:
        np.testing.assert_allclose(got[task], want[task], rtol=0, atol=1e-9)
