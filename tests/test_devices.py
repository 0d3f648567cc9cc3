"""Probes sharded over several devices, and over several processes, give one device's scores."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from neuco_jax.config import Config
from neuco_jax.pipeline import evaluate
from neuco_jax.synthetic import make_benchmark

from conftest import evaluate_command, written_q

CONFIG = "k_folds: 3\nprobe_params: {batch_size: 16, epochs: 2, learning_rate: 0.01}\n"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=300, dim=12, n_methods=1)


def one_device_q(bench, tmp_path, shuffle="per_fold"):
    run, = evaluate(bench.submissions["method_a"], bench.labels_dir,
                    Config(k_folds=3, epochs=2, batch_size=16, learning_rate=0.01, shuffle=shuffle),
                    output_dir=tmp_path / "one")
    return {s.name: s.q_stat for s in run.scores}


@pytest.mark.parametrize("shuffle", ["per_fold", "shared"])
def test_four_devices_give_the_one_device_scores(bench, tmp_path, shuffle):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG + f"shuffle: {shuffle}\n")
    # 3 folds over 4 devices: the probe axis is padded, then the padding dropped.
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    probe = "import jax; print(len(jax.devices()))"
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip() == "4"
    subprocess.run(evaluate_command(bench, tmp_path / "four", config), env=env, check=True, capture_output=True, timeout=300)
    got = written_q(tmp_path / "four")
    expected = one_device_q(bench, tmp_path, shuffle)
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in sorted(got)], [expected[k] for k in sorted(got)], rtol=1e-6)


def test_two_processes_give_the_one_process_scores(bench, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen(evaluate_command(bench, tmp_path / "multi", config, "--coordinator_address",
                                               f"127.0.0.1:{port}", "--num_processes", "2", "--process_id", str(i)),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    got = written_q(tmp_path / "multi")  # written once, by process 0
    expected = one_device_q(bench, tmp_path)
    np.testing.assert_allclose([got[k] for k in sorted(got)], [expected[k] for k in sorted(got)], rtol=1e-6)
