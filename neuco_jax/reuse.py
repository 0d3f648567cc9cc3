"""Incremental sweeps: a run the phase already holds, of the same embeddings under the same config, is reused.

`sweep` and `evaluate` (unless `rerun`) look in the phase folder before training. A complete run
stands for a (method, ablation variant) when

- its folder is the variant's (`<name>_<stamp>`; the newest such run that matches is taken),
- its summary's `embeddings_sha256` is the content hash of the submission given now
  (neuco_jax.data.file_sha256: the file's bytes, so a rewritten file with the same numbers matches),
- its recorded config is the variant's, but for where it ran (`probe_params.device`) and
  `update_leaderboard`: the protocol keys decide the scores, the others (task_filter, store_probes,
  enable_plots, output_fold_results) which files the run holds,
- its labels and exclude fingerprints and ablation axes are today's, and
- its files read back: every task's result JSON, fold_scores.csv with every task's folds, and with
  `store_probes` every task's probe.

A run that matches on the first four but fails the last is not reused (a warning names it) and the
method is trained again; a run without a content hash (the reference's, or neuco_jax's before it
recorded one) is never reused.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from neuco_jax.config import Config
from neuco_jax.data import CONTENT_KEY
from neuco_jax.errors import InputError
from neuco_jax.fold_scores import read_fold_scores
from neuco_jax.results import RUN_NAME, SUMMARY_FILE
from neuco_jax.scores import TaskScore

# Recorded config keys that change neither the scores nor the files a run holds.
_IGNORED = ("update_leaderboard",)


def phase_runs(output_dir, phase: str) -> dict[str, list[Path]]:
    """{method: its complete run folders in the phase, newest first}; empty when the phase is new."""
    folder = Path(output_dir) / phase
    runs: dict[str, list[tuple[tuple, Path]]] = {}
    if not folder.is_dir():
        return {}
    for run_dir in folder.iterdir():
        match = RUN_NAME.fullmatch(run_dir.name)
        if match and run_dir.is_dir() and (run_dir / SUMMARY_FILE).is_file():
            age = (match["stamp"], int(match["clash"] or 1))
            runs.setdefault(match["method"], []).append((age, run_dir))
    return {method: [d for _, d in sorted(found, reverse=True)] for method, found in runs.items()}


def find(candidates: list[Path], config: Config, record: dict, content: str, task_types: dict[str, str]):
    """The scores of the newest of `candidates` that stands for a run of `config` (module docstring).

    Args:
      candidates: the variant's run folders, newest first (phase_runs).
      config: the variant's config; record: the protocol record it would write (fingerprints, axes).
      content: the submission's content hash; task_types: {task: type} of the labels.

    Returns:
      (run folder, [TaskScore] in the run's task order), or None.
    """
    want = _comparable(config.to_dict())
    for run_dir in candidates:
        try:
            summary = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(summary, dict) or summary.get(CONTENT_KEY) != content:
            continue
        if not isinstance(summary.get("config"), dict) or _comparable(summary["config"]) != want:
            continue
        if any(summary.get(key) != value for key, value in record.items()) or \
                summary.get("ablation_axes") != record.get("ablation_axes"):
            continue
        try:
            return run_dir, _scores(run_dir, summary, config, task_types)
        except (OSError, ValueError, KeyError, TypeError, InputError) as e:
            warnings.warn(f"{run_dir}: not reused, it is trained again ({e})", stacklevel=3)
    return None


def _comparable(config: dict) -> dict:
    d = {k: v for k, v in config.items() if k not in _IGNORED}
    if isinstance(d.get("probe_params"), dict):
        d["probe_params"] = {k: v for k, v in d["probe_params"].items() if k != "device"}
    return d


def _scores(run_dir: Path, summary: dict, config: Config, task_types: dict[str, str]) -> list[TaskScore]:
    """Every task's scores as the run holds them; raises if one of its files does not read back."""
    names = list(summary["task_q_scores"])
    folds = read_fold_scores(run_dir, names).scores
    scores = []
    for name in names:
        result = json.loads((run_dir / name / f"{name}_result.json").read_text(encoding="utf-8"))
        if config.store_probes and not (run_dir / name / "probe").exists():
            raise ValueError(f"{name}/probe is missing")
        q, mean, std = (_float(result[key]) for key in ("q_stat", "mean_score", "std_dev"))
        scores.append(TaskScore(name, task_types[name], np.asarray(folds[name], np.float64), mean, std, q))
    return scores


def _float(value) -> float:
    return math.nan if value is None else float(value)

