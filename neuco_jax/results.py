"""Result files, laid out exactly as the reference writes them.

<output_dir>/<phase>/<method>_<YYYYmmdd_HHMMSS>/
    <task>/<task>_result.json
    results_summary.json          written last: a run is complete exactly when it exists
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from neuco_jax.config import Config
from neuco_jax.errors import InputError
from neuco_jax.scores import TaskScore, overall


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see either nothing or all of it (temporary file + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def check_name(kind: str, name: str) -> str:
    """Reject names that would place files outside output_dir (`..`, separators, absolute paths)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name):
        raise InputError(f"{kind} {name!r} must be a plain folder name (no '/', '\\\\' or '..'); choose another --{kind}")
    return name


def timestamp() -> str:
    """The reference's run-folder timestamp, YYYYmmdd_HHMMSS."""
    return datetime.now().strftime("%Y%m%d_%H%M%S")


def make_run_dir(output_dir: Path, phase: str, method: str, stamp: str) -> Path:
    """Create `<output_dir>/<phase>/<method>_<stamp>`; never reuse an existing run folder."""
    phase_dir = Path(output_dir) / check_name("phase", phase)
    phase_dir.mkdir(parents=True, exist_ok=True)
    name = f"{check_name('method_name', method)}_{stamp}"
    for attempt in range(1, 1000):
        run_dir = phase_dir / (name if attempt == 1 else f"{name}_{attempt}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise InputError(f"{phase_dir}: too many runs named {name}; choose another --method_name")


def write_run(run_dir: Path, scores: list[TaskScore], config: Config) -> Path:
    """Write every task's result JSON, then results_summary.json; returns the summary's path."""
    hyper = {"epochs": config.epochs, "learning_rate": config.learning_rate, "batch_size": config.batch_size}
    for s in scores:
        result = {"q_stat": s.q_stat, "mean_score": s.mean_score, "std_dev": s.std_dev,
                  "hyperparamaters": hyper}  # (sic): the reference's key
        if config.output_fold_results:
            result["q_t"] = [float(v) for v in s.fold_scores]
        task_dir = run_dir / check_name("task", s.name)
        task_dir.mkdir(exist_ok=True)
        atomic_write_text(task_dir / f"{s.name}_result.json", json.dumps(result, indent=2))
    q, acc = overall(scores)
    summary = {
        "experiment": run_dir.name,
        "overall_q_score": q,
        "overall_acc_score": acc,
        "task_q_scores": {s.name: s.q_stat for s in scores},
        "task_acc_scores": {s.name: s.mean_score for s in scores},
        "config": config.to_dict(),
    }
    path = run_dir / "results_summary.json"
    atomic_write_text(path, json.dumps(summary, indent=2))
    return path
