"""Result files, laid out exactly as the reference writes them.

<output_dir>/<phase>/<method>_<YYYYmmdd_HHMMSS>/
    <task>/<task>_result.json
    results_summary.json          written last: a run is complete exactly when it exists
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from neuco_jax.config import Config
from neuco_jax.errors import InputError
from neuco_jax.files import shared_mode
from neuco_jax.scores import TaskScore, overall

SUMMARY_FILE = "results_summary.json"
# A run folder's name: <method>_<YYYYmmdd_HHMMSS>, and _2, _3, ... after a name clash.
RUN_NAME = re.compile(r"(?P<method>.+)_(?P<stamp>\d{8}_\d{6})(?:_(?P<clash>\d+))?")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see either nothing or all of it (temporary file + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, shared_mode())  # mkstemp's files are owner-only whatever the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """atomic_write_bytes of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_name(kind: str, name: str) -> str:
    """Reject names that would place files outside output_dir (`..`, separators, absolute paths)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name):
        raise InputError(f"{kind} {name!r} must be a plain folder name (no slash, backslash or '..'); choose another --{kind}")
    return name


def method_name(run_name: str) -> str:
    """A run folder's method: its name without the `_YYYYmmdd_HHMMSS` stamp and `_N` clash suffix
    (a folder not named that way is a method of its own)."""
    match = RUN_NAME.fullmatch(run_name)
    return match["method"] if match else run_name


def timestamp() -> str:
    """The reference's run-folder timestamp, YYYYmmdd_HHMMSS."""
    return datetime.now().strftime("%Y%m%d_%H%M%S")


def check_writable(output_dir: str | Path, phase: str) -> None:
    """Fail early, before any training, if results could not be written; creates nothing."""
    folder = Path(output_dir) / check_name("phase", phase)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{folder}: cannot write results under {existing}; choose another --output_dir")


def phase_dir(output_dir: str | Path, phase: str) -> Path:
    """Create `<output_dir>/<phase>` and prove it writable, so a bad output_dir fails before training."""
    folder = Path(output_dir) / check_name("phase", phase)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise InputError(f"{folder}: cannot write results here ({e.strerror}); choose another --output_dir") from None
    return folder


def write_run(output_dir: str | Path, phase: str, method: str, scores: list[TaskScore], config: Config,
              stamp: str | None = None, fill=None, extensions: dict | None = None,
              hyperparameters: dict[str, dict] | None = None) -> Path:
    """Write a run folder `<output_dir>/<phase>/<method>_<stamp>/`; returns its path.

    `fill(folder)`, when given, adds files (plots, stored probes) to the run
    folder before its summary is written. The folder is filled under a hidden
    temporary name and renamed into place,
    so a run folder either is complete or does not exist; results_summary.json
    is also written last, the reference's sign of a complete run. An existing
    run folder is never overwritten: a clash gets the suffix _2, _3, ...
    `extensions` are neuco_jax's extra summary keys (the protocol record that
    neuco_jax.leaderboard compares: labels and exclude fingerprints, ablation axes).
    `hyperparameters`: per task, the result JSON's `hyperparamaters` (e.g. a ridge probe's
    alpha per fold); a task not in it records the config's epochs, learning_rate, batch_size.
    """
    folder = phase_dir(output_dir, phase)
    base = f"{check_name('method_name', method)}_{stamp or timestamp()}"
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{base}.", suffix=".tmp"))
    os.chmod(staging, shared_mode(folder=True))  # mkdtemp's folders are owner-only whatever the umask
    try:
        hyper = {"epochs": config.epochs, "learning_rate": config.learning_rate, "batch_size": config.batch_size}
        for s in scores:
            result = {"q_stat": s.q_stat, "mean_score": s.mean_score, "std_dev": s.std_dev,
                      "hyperparamaters": (hyperparameters or {}).get(s.name, hyper)}  # (sic): the reference's key
            if config.output_fold_results:
                result["q_t"] = [float(v) for v in s.fold_scores]
            task_dir = staging / check_name("task", s.name)
            task_dir.mkdir()
            (task_dir / f"{s.name}_result.json").write_text(json.dumps(result, indent=2))
        if fill is not None:
            fill(staging)
        q, acc = overall(scores)
        summary = {
            "experiment": base,
            "overall_q_score": q,
            "overall_acc_score": acc,
            "task_q_scores": {s.name: s.q_stat for s in scores},
            "task_acc_scores": {s.name: s.mean_score for s in scores},
            "config": config.to_dict(),
            # neuco_jax extension: folds whose every epoch scored NaN (diverged), per task
            "failed_folds": {s.name: s.failed_folds for s in scores},
            **(extensions or {}),
        }
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base}_{attempt}"
            summary["experiment"] = name
            (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
            try:
                if (folder / name).exists():
                    continue
                os.rename(staging, folder / name)  # fails if another run took the name meanwhile
                return folder / name
            except OSError:
                continue
        raise InputError(f"{folder}: too many runs named {base}; choose another --method_name")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
