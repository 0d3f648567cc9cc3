"""scripts/train_compressor.py at a tiny size: the benchmark as a training callback, compiled once."""

import importlib.util
import math
import re
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from neuco_jax import benchmark, engine, runtime
from neuco_jax.pipeline import evaluate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_compressor.py"
TINY = ["--n_ids", "40", "--size", "8", "--dim", "8", "--width", "4", "--steps", "4", "--eval_every", "2",
        "--batch_size", "8", "--folds", "3", "--probe_epochs", "2"]


def load_script():
    """The script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_compressor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's modules are dataclasses, which look their module up by name
    spec.loader.exec_module(module)
    return module


script = load_script()


def write_csv(path, ids, x):
    """A submission CSV written with plain Python: id, then one column per dimension, float32 round-tripped."""
    lines = ["id," + ",".join(str(c) for c in range(x.shape[1]))]
    lines += [f"{i}," + ",".join(f"{v:.9g}" for v in row) for i, row in zip(ids, x)]
    path.write_text("\n".join(lines) + "\n")


def test_each_evaluation_prints_the_mean_q_of_one_compiled_benchmark(tmp_path, monkeypatch, capsys):
    calls = []  # per Benchmark.score call: (ids, embeddings, result, compile count, trace count) after it
    score = benchmark.Benchmark.score

    def spy(self, ids, embeddings, **kwargs):
        result = score(self, ids, embeddings, **kwargs)
        calls.append((list(ids), embeddings, result, runtime.COMPILE_COUNT, engine.TRACE_COUNT))
        return result

    monkeypatch.setattr(benchmark.Benchmark, "score", spy)
    data = tmp_path / "cubes"
    before = runtime.COMPILE_COUNT, engine.TRACE_COUNT
    assert script.main(["--data", str(data), *TINY]) == 0
    out = capsys.readouterr().out

    # One evaluation before training, then every 2 steps; each prints the Result's overall Q.
    printed = re.findall(r"^step +(\d+) +reconstruction +(\S+) +mean Q +(\S+)", out, re.M)
    assert [int(step) for step, _, _ in printed] == [0, 2, 4]
    results = [result for _, _, result, _, _ in calls]
    assert [float(q) for _, _, q in printed] == pytest.approx([r.overall_q for r in results], abs=5e-4)
    for r in results:
        assert math.isfinite(r.overall_q) and len(r.tasks) == 11
        assert r.overall_q == pytest.approx(np.mean([t.q for t in r.tasks.values()]), rel=1e-12)

    # The embeddings stay on the device, change as the encoder trains, and the Benchmark compiles on
    # its first call only.
    assert all(isinstance(x, jax.Array) and x.shape == (40, 8) for _, x, _, _, _ in calls)
    assert not np.allclose(np.asarray(calls[0][1]), np.asarray(calls[-1][1]))
    assert calls[0][3] - before[0] <= 1 and calls[0][4] - before[1] <= 1  # 0 when an earlier test left it
    assert {(c, t) for _, _, _, c, t in calls[1:]} == {calls[0][3:]}

    # The last evaluation's Q is what `evaluate` gives for the same embeddings read from a file.
    ids, x, result, _, _ = calls[-1]
    path = tmp_path / "last.csv"
    write_csv(path, ids, np.asarray(x))
    want, = evaluate(path, data / "labels", result.config, output_dir=tmp_path / "results")
    assert sorted(result.tasks) == sorted(s.name for s in want.scores)
    for s in want.scores:
        assert result.tasks[s.name].q == pytest.approx(s.q_stat, rel=1e-6, abs=1e-6)


def test_a_data_folder_of_other_cubes_is_refused_not_mixed(tmp_path):
    from neuco_jax.synthetic_cubes import make_cubes

    make_cubes(tmp_path, n_ids=6, size=8, modalities=["s2l2a"])
    with pytest.raises(SystemExit, match="holds 6 cubes of 8x8 pixels, not 40 of 8x8"):
        script.main(["--data", str(tmp_path), *TINY])
