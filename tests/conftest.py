import numpy as np
import pytest

from neuco_jax.data import Task


@pytest.fixture
def toy_tasks():
    """Embeddings (n=160, d=12) for a regression and a classification task of different sizes."""
    rng = np.random.default_rng(0)
    n, d = 160, 12
    ids = np.array([f"{i:032x}" for i in range(n)], dtype=object)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d)
    reg = Task("biomass_mean", "regression", ids[:150], x[:150] @ w + 0.5 * rng.normal(size=150))
    cls = Task("random_cls", "classification", ids[70:153], (x[70:153] @ w > 0.3).astype(float))
    return [cls, reg], ids, x


@pytest.fixture(autouse=True, scope="session")
def _private_compilation_cache(tmp_path_factory):
    """CLI calls enable JAX's persistent cache: keep the suite's out of the user's cache folder."""
    import os
    os.environ["NEUCO_JAX_CACHE_DIR"] = str(tmp_path_factory.mktemp("xla_cache"))


def evaluate_command(bench, out, config, *global_flags, cache="off"):
    """`python -m neuco_jax ... evaluate` of a synthetic benchmark's method_a, as a subprocess argv."""
    import sys
    return [sys.executable, "-m", "neuco_jax", "--cache_dir", str(cache), *global_flags, "evaluate",
            "--annotation_path", str(bench.labels_dir), "--submission_file", str(bench.submissions["method_a"]),
            "--output_dir", str(out), "--config", str(config)]


def written_q(out):
    """task -> Q of the single run written under <out>/results."""
    import json
    (summary,) = out.glob("results/*/results_summary.json")
    return json.loads(summary.read_text())["task_q_scores"]
