"""The persistent compilation cache, shared by concurrent processes."""

import json
import os
import subprocess

import pytest

from neuco_jax.synthetic import make_benchmark

from conftest import evaluate_command, written_q

CONFIG = "k_folds: 3\nprobe_params: {batch_size: 16, epochs: 2, learning_rate: 0.01}\n"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=300, dim=12, n_methods=1)


def test_two_concurrent_runs_share_a_cache_and_a_third_reuses_it(bench, tmp_path):
    cache = tmp_path / "cache"
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    env = {**os.environ, "JAX_DEBUG_LOG_MODULES": "jax._src.compiler"}  # logs cache hits and misses
    procs = [subprocess.Popen(evaluate_command(bench, tmp_path / f"out{i}", config, cache=cache), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert len(entries) == 1  # one program, written once
    third = subprocess.run(evaluate_command(bench, tmp_path / "out2", config, cache=cache), env=env,
                           capture_output=True, text=True, timeout=300, check=True)
    assert "persistent compilation cache hit for 'jit__train_and_score'" in third.stderr.lower()
    assert written_q(tmp_path / "out0") == written_q(tmp_path / "out1") == written_q(tmp_path / "out2")
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries


def test_cache_can_be_turned_off(bench, tmp_path):
    """`--cache_dir off` writes no cache entry: neither in the default folder nor in a folder named 'off'."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    default = tmp_path / "default_cache"  # where the cache would go without the flag
    env = {**os.environ, "NEUCO_JAX_CACHE_DIR": str(default), "NEUCO_JAX_NATIVE": "0"}  # no native build either
    cmd = evaluate_command(bench, tmp_path / "out", config, cache="off")
    subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True, cwd=tmp_path, env=env)
    assert written_q(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "out"]
    assert not default.exists()


def test_two_runs_writing_the_same_phase_at_once_lose_nothing(bench, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "shared"
    cmds = [evaluate_command(bench, out, config, cache="off") + ["--method_name", "same"] for _ in range(2)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cmd in cmds]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    runs = sorted((out / "results").iterdir())
    assert len(runs) == 2 and all((r / "results_summary.json").is_file() for r in runs)
    names = {json.loads((r / "results_summary.json").read_text())["experiment"] for r in runs}
    assert names == {r.name for r in runs}  # each summary names its own folder
