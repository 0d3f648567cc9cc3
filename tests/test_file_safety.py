"""Files that colleagues can read, and Ctrl-C: one line, exit code 130, nothing half-written.

The interrupt tests run the real command in a subprocess and send it SIGINT. To hit
the moment that matters (a run folder, data folder or store half-staged) every time,
the command runs under a small wrapper that pauses right after a named function
returns and touches a marker file; SIGINT arrives during that pause. One test sends
it while the compiled training program runs, with no pause at all.
"""

import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from neuco_jax.config import Config
from neuco_jax.results import atomic_write_text, write_run
from neuco_jax.scores import task_score
from neuco_jax.stores import write_embeddings
from neuco_jax.synthetic import make_benchmark
from neuco_jax.synthetic_cubes import make_cubes

INTERRUPTED = "interrupted; nothing half-written was left"

# `neuco-jax ARGS` with `module:function` (or `module:DICT.key`) wrapped so that, once it returns,
# it touches MARKER and sleeps PAUSE seconds.
HOOK = """
import importlib, os, sys, time
spec, marker, pause = os.environ["NEUCO_TEST_HOOK"].split("|")
module, name = spec.split(":")
owner, key = importlib.import_module(module), None
if "." in name:
    name, key = name.split(".")
    owner = getattr(owner, name)
original = owner[key] if key else getattr(owner, name)
def hooked(*args, **kwargs):
    result = original(*args, **kwargs)
    open(marker, "a").close()
    time.sleep(float(pause))
    return result
if key:
    owner[key] = hooked
else:
    setattr(owner, name, hooked)
sys.argv[0] = "neuco-jax"
from neuco_jax.cli import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("bench"), n_ids=400, dim=16, n_methods=1)


def interrupt(tmp_path, args, hook, pause=60.0, after=0.0):
    """Run `neuco-jax ARGS` with HOOK, send SIGINT `after` seconds after the marker appears; its stderr lines."""
    marker = tmp_path / "marker"
    env = {**os.environ, "NEUCO_TEST_HOOK": f"{hook}|{marker}|{pause}",
           "PYTHONWARNINGS": "ignore"}  # the synthetic labels' skipped empty rows are not the subject here
    proc = subprocess.Popen([sys.executable, "-c", HOOK, "--cache_dir", "off", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"ended (code {proc.returncode}) before reaching {hook}:\n{proc.communicate()[1]}")
            if time.monotonic() > deadline:
                pytest.fail(f"did not reach {hook} within 240 s")
            time.sleep(0.005)
        time.sleep(after)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        seconds = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines == [INTERRUPTED], err
    return seconds


def hidden(folder):
    """Every hidden file or folder (staging leftovers) under folder."""
    return sorted(str(p) for p in folder.rglob(".*"))


def test_interrupted_demo_leaves_no_data_folder(tmp_path):
    out = tmp_path / "demo"
    interrupt(tmp_path, ["demo", "--output_dir", out, "--n_ids", 400, "--dim", 16, "--k_folds", 3, "--epochs", 2],
              "neuco_jax.synthetic:write_csv")  # after its first file, a label file
    assert not (out / "data").exists()
    assert hidden(tmp_path) == []


def test_interrupted_sweep_leaves_no_half_run_folder(bench, tmp_path):
    out = tmp_path / "results"
    config = tmp_path / "config.yaml"
    config.write_text("k_folds: 3\nprobe_params:\n  epochs: 2\n")
    interrupt(tmp_path, ["sweep", "--annotation_path", bench.labels_dir, "--submissions",
                         *bench.submissions.values(), "--output_dir", out, "--config", config, "--phase", "dev"],
              "neuco_jax.results:overall")  # inside write_run: task files staged, summary not yet
    assert list((out / "dev").iterdir()) == []
    assert not (out / "leaderboards").exists()


@pytest.mark.parametrize("suffix", [".zarr", ".csv"])
def test_interrupted_embed_leaves_no_output(tmp_path, suffix):
    cubes = make_cubes(tmp_path / "cubes", n_ids=6, size=8, parts=1)
    output = tmp_path / "out" / f"mean{suffix}"
    output.parent.mkdir()
    interrupt(tmp_path, ["embed", "--data_root", cubes.root, "--output", output, "--embedding_dim", 8],
              f"neuco_jax.stores:_WRITERS.{suffix[1:]}")  # the store complete under its temporary name
    assert list(output.parent.iterdir()) == []


def test_interrupted_zarr_write_leaves_nothing_behind(tmp_path):
    """tensorstore writes on its own threads, which Ctrl-C does not stop: none of its files may outlive the cleanup."""
    source = tmp_path / "big.npy"
    np.save(source, np.ones((20000, 800), np.float32))  # five chunks, about a second to write as zarr
    (tmp_path / "big.ids.txt").write_text("".join(f"id{i}\n" for i in range(20000)))
    target = tmp_path / "out" / "big.zarr"
    target.parent.mkdir()
    # SIGINT 50 ms after the store was opened: its chunks are being written
    interrupt(tmp_path, ["convert", source, target], "neuco_jax.stores:_zarr_spec", pause=0, after=0.05)
    time.sleep(1.0)  # what tensorstore still had in flight
    assert list(target.parent.iterdir()) == []


def test_interrupt_during_the_compiled_pass_ends_at_once(tmp_path):
    """JAX runs the training program on its own threads: SIGINT still ends the command, without waiting for it."""
    wide = make_benchmark(tmp_path / "wide", n_ids=400, dim=2048, n_methods=1)
    config = tmp_path / "config.yaml"
    config.write_text("k_folds: 40\nprobe_params:\n  epochs: 800\n")  # about 15 s of training on 2 cores
    out = tmp_path / "results"
    seconds = interrupt(tmp_path, ["evaluate", "--annotation_path", wide.labels_dir, "--submission_file",
                                   wide.submissions["method_a"], "--output_dir", out, "--config", config],
                        "neuco_jax.engine:compile_plan", pause=0, after=1.0)  # training starts right after
    assert seconds < 6
    assert not out.exists()


# File modes -----------------------------------------------------------------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def modes(root):
    """(path, permission bits) of root and everything under it."""
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def write_everything(root):
    """A run folder, a leaderboard-style atomic file, a benchmark and a zarr store under root."""
    root.mkdir()
    score = task_score("crops", "regression", np.array([0.5, 0.6, 0.7]))
    write_run(root / "results", "dev", "method", [score], Config(k_folds=3), stamp="20250101_000000")
    atomic_write_text(root / "board.csv", "a,b\n")
    make_benchmark(root / "data", n_ids=100, dim=4, n_methods=1)
    write_embeddings(root / "emb.zarr", np.array(["a", "b"]), np.zeros((2, 3)))


@pytest.mark.parametrize("mask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask, mask, folder_mode, file_mode):
    umask(mask)
    write_everything(tmp_path / "out")
    found = modes(tmp_path / "out")
    assert {p: m for p, m in found.items() if p.is_dir() and m != folder_mode} == {}
    assert {p: m for p, m in found.items() if p.is_file() and m != file_mode} == {}
    assert any(p.name == "results_summary.json" for p in found)



def test_the_native_library_is_readable_by_colleagues_sharing_the_cache(tmp_path, umask):
    from neuco_jax import native
    compiler = native.find_compiler()
    if compiler is None:
        pytest.skip("no C++ compiler")
    lib = native._build(compiler, tmp_path)
    assert lib is not None and stat.S_IMODE(lib.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == [lib.name]
