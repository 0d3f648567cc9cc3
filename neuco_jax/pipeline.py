"""The evaluation pipeline: load -> preprocess -> one compiled pass -> scores -> files -> leaderboard."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from pathlib import Path

import jax

from neuco_jax import engine, leaderboard, results
from neuco_jax.config import Config
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.errors import ConfigError
from neuco_jax.plan import make_plan
from neuco_jax.scores import TaskScore, task_score

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one evaluation produced: per-task scores, where they were written, stage wall times (s)."""

    run_dir: Path
    scores: list[TaskScore]
    timings: dict[str, float]
    leaderboard: Path | None = None


def device_scope(name: str):
    """A context placing computation on the device the config asks for ('auto' keeps JAX's default)."""
    if name == "auto":
        return contextlib.nullcontext()
    platform = "gpu" if name == "cuda" else name
    try:
        return jax.default_device(jax.devices(platform)[0])
    except RuntimeError:
        raise ConfigError(f"config key 'probe_params.device': {name!r} requested but JAX sees no {platform} "
                          f"device (available: {sorted({d.platform for d in jax.devices()})}); use 'auto'") from None


def evaluate(submission_file: str | Path, annotation_path: str | Path, config: Config, *,
             output_dir: str | Path = "results", method_name: str | None = None,
             phase: str = "results", exclude_file: str | Path | None = None) -> RunResult:
    """Evaluate one submission on every task of a labels folder and write the reference's files.

    Args:
      submission_file: embedding CSV (`id`, then one column per dimension).
      annotation_path: folder of `<task>__<type>.csv` label files.
      config: the validated evaluation config.
      output_dir, phase: results go to `<output_dir>/<phase>/<method>_<timestamp>/`.
      method_name: defaults to the submission file's stem.
      exclude_file: optional list of ids to drop.

    Returns:
      The run's scores, folder and stage timings (load, compile, train, write).
    """
    submission_file = Path(submission_file)
    for key in ("enable_plots", "store_probes"):
        if getattr(config, key):
            warnings.warn(f"config key '{key}' is not implemented in neuco_jax yet and is ignored", stacklevel=2)
    method = results.check_name("method_name", method_name or submission_file.stem)
    timings = {}
    t0 = time.perf_counter()
    tasks = load_labels(annotation_path)
    ids, x = load_submission(submission_file, valid_ids={i for t in tasks for i in t.ids},
                             embedding_dim=config.embedding_dim, exclude_file=exclude_file)
    bench = prepare(tasks, ids, x, standardize=config.standardize_embeddings,
                    normalize_labels=config.normalize_labels, task_filter=config.task_filter)
    plan = make_plan(bench, k_folds=config.k_folds, epochs=config.epochs, batch_size=config.batch_size,
                     learning_rate=config.learning_rate, seed=config.seed)
    results.phase_dir(output_dir, phase)  # an unwritable output_dir fails before training
    timings["load"] = time.perf_counter() - t0

    with device_scope(config.device):
        t0 = time.perf_counter()
        compiled = engine.compile_plan(plan)
        timings["compile"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        probes = engine.run_plan(plan, compiled)
        timings["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    best = probes.best.reshape(len(bench.tasks), config.k_folds)
    scores = [task_score(t.name, t.task_type, b) for t, b in zip(bench.tasks, best)]
    run_dir = results.write_run(output_dir, phase, method, scores, config)
    board = leaderboard.write_leaderboard(output_dir, phase) if config.update_leaderboard else None
    timings["write"] = time.perf_counter() - t0
    log.info("%s: %s", run_dir.name, ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return RunResult(run_dir=run_dir, scores=scores, timings=timings, leaderboard=board)
