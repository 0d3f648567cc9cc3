"""The hidden labels as each phase scores them, the public task aliases, and the evaluation config.

A phase restricted to some tasks or ids is scored on its own private copy of
the labels (`private/<phase>/labels/`, or the `labels/` of a packed bundle):
the label files of its tasks, each keeping only the rows of its ids. Its bytes
depend only on the hidden labels and the phase's rules, so its fingerprint,
and with it the runs' protocol, changes only when they do.

Aliases (`task_01`, `task_02`, ...) are drawn once per challenge in a random
order (kept in `private/aliases.json`), not in name order: with a public list
of candidate tasks, name order would give the names away.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import secrets
import shutil
import warnings
from pathlib import Path

from neuco_jax.challenge.spec import Challenge, Phase
from neuco_jax.config import Config, load_config
from neuco_jax.errors import ConfigError, InputError
from neuco_jax.results import atomic_write_text

ALIASES_FILE = "aliases.json"


def label_files(labels: Path) -> dict[str, Path]:
    """task name -> label file, for every `<task>__<type>.csv` of a folder."""
    files = {p.name.partition("__")[0]: p for p in sorted(labels.glob("*.csv"))}
    if not files:
        raise ConfigError(f"challenge.yaml key 'labels': {labels} holds no <task>__<type>.csv files")
    return files


def phase_tasks(spec: Challenge, phase: Phase) -> list[str]:
    """The tasks a phase scores, sorted; an unknown name fails naming the key."""
    names = sorted(label_files(spec.labels))
    if phase.tasks is None:
        return names
    unknown = [t for t in phase.tasks if t not in names]
    if unknown:
        raise ConfigError(f"challenge.yaml key 'phases.{phase.name}.tasks': no label file for task {unknown[0]!r} "
                          f"in {spec.labels}; tasks there: {', '.join(names)}")
    return sorted(phase.tasks)


def _ids(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def write_phase_labels(spec: Challenge, phase: Phase, dest: Path) -> None:
    """Write the phase's label files into the new folder `dest` (see the module docstring)."""
    dest.mkdir(parents=True)
    keep = _ids(phase.ids) if phase.ids is not None else None
    files = label_files(spec.labels)
    for task in phase_tasks(spec, phase):
        src = files[task]
        if keep is None:
            shutil.copyfile(src, dest / src.name)
            continue
        with open(src, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows or "id" not in rows[0]:
            raise InputError(f"{src}: no 'id' column in the header; label files need a header row 'id,label'")
        column = rows[0].index("id")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rows[0])
        writer.writerows(r for r in rows[1:] if len(r) > column and r[column].strip() in keep)
        (dest / src.name).write_text(out.getvalue(), encoding="utf-8")


def public_ids(spec: Challenge) -> set[str]:
    """Every id of the challenge's labels: the ids the teams are given to embed."""
    from neuco_jax.data import load_labels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the organiser's own files: empty labels are expected
        return {i for task in load_labels(spec.labels) for i in task.ids}


def aliases(spec: Challenge) -> dict[str, str]:
    """task -> public alias for every task of the labels, drawn once and kept in private/aliases.json.

    Tasks added to the labels later get the next free aliases. Call under the challenge's lock.
    """
    path = spec.root / "private" / ALIASES_FILE
    known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    new = [t for t in label_files(spec.labels) if t not in known]
    if new:
        order = sorted(new, key=lambda _: secrets.randbits(64))
        width = max(2, len(str(len(known) + len(new))))
        for i, task in enumerate(order, start=len(known) + 1):
            known[task] = f"task_{i:0{width}d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(known, indent=1, sort_keys=True))
    return known


def public_names(spec: Challenge, aliases_of: dict[str, str]) -> dict[str, str] | None:
    """task -> the name public outputs use for it under `anonymize_tasks`; None when they omit tasks."""
    if spec.anonymize_tasks == "omit":
        return None
    return dict(aliases_of) if spec.anonymize_tasks else {t: t for t in aliases_of}


def challenge_config(spec: Challenge) -> Config:
    """The evaluation config of the challenge: its config file at the challenge's embedding_dim.

    Refuses keys that would break a challenge: ablations (variants are not
    submissions), task_filter (phases choose tasks), an embedding_dim other than
    the challenge's. The leaderboard is the challenge's own, never the sweep's.
    """
    config = load_config(spec.config)
    if config.ablations.to_dict():
        raise ConfigError(f"{spec.config}: config key 'ablations' has no place in a challenge; remove it")
    if config.task_filter is not None:
        raise ConfigError(f"{spec.config}: config key 'task_filter' is set; a challenge chooses tasks per phase "
                          f"(challenge.yaml phases.<phase>.tasks); remove it")
    if config.embedding_dim not in (None, spec.embedding_dim):
        raise ConfigError(f"{spec.config}: config key 'embedding_dim' is {config.embedding_dim} but challenge.yaml "
                          f"says {spec.embedding_dim}; remove it from the config or make them equal")
    return dataclasses.replace(config, embedding_dim=spec.embedding_dim, update_leaderboard=False)
