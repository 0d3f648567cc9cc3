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


# float32 machine epsilon, 1.2e-7: the relative rounding of one float32 operation.
EPS32 = float(np.finfo(np.float32).eps)


def adamw_steps(labels_dir, config) -> int:
    """AdamW steps of the longest-trained probe: epochs x minibatches of the largest task's training rows."""
    import math
    import warnings
    from neuco_jax.data import load_labels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the labels' empty cells
        n = max(len(t.ids) for t in load_labels(labels_dir))
    return config.epochs * math.ceil((n - math.ceil(0.1 * n)) / config.batch_size)


def score_tolerance(scores, steps):
    """How far a fold score (R^2 or F1) of the same probe may move between two float32 programs.

    Two programs that train the same probes can round differently: XLA may block a product over
    the probes of an entry differently when their number changes (a variant alone or beside
    others, one device or several), and the native step sums in other orders than XLA's. Each
    AdamW step can then leave the parameters a few ulps (EPS32 relative) apart, and over the
    `steps` steps of a probe that learns (the fixtures' do: they do not amplify such errors) the
    predictions about steps x EPS32 apart, relatively. R^2 = 1 - SS_res / SS_tot moves by about
    2 |1 - R^2| times the residuals' relative change, and the score's own float32 sums add a few
    EPS32 (the floor of 1); F1 moves only if a logit crosses 0. Hence, per fold,
        |delta| <= 2 x steps x EPS32 x max(1, |1 - score|).
    """
    return 2 * steps * EPS32 * np.maximum(1.0, np.abs(1.0 - np.asarray(scores, np.float64)))


def assert_scores_close(got, want, steps):
    """Fold scores equal up to `score_tolerance` (exact equality passes; NaN must match NaN)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_array_less(np.abs(got - want)[ok], score_tolerance(want, steps)[ok] * (1 + 1e-12))


def q_tolerance(fold_scores, steps):
    """How far Q = 2 mean / (0.02 + std) may move when each fold score moves by `score_tolerance`.

    With every score moved by at most delta, the mean and the (population) std move by at most
    delta each, so to first order |dQ| <= 2 delta / (0.02 + std) x (1 + |Q| / 2): an absolute
    bound scaled to Q's own size (a relative difference of a Q near 0 means nothing).
    """
    s = np.asarray(fold_scores, np.float64)
    delta = score_tolerance(s, steps).max()
    denominator = 0.02 + s.std()
    return 2 * delta / denominator * (1 + abs(s.mean() / denominator))
