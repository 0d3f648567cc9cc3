"""`neuco-jax validate`: what a submission would give the benchmark, before it is scored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from neuco_jax.data import clean_ids, load_labels
from neuco_jax.tables import _columns, _embedding_columns, _read_csv, coerce_numbers
from neuco_jax.errors import InputError
from neuco_jax.stores import format_of, read_embeddings


@dataclasses.dataclass
class Report:
    """Findings about one submission. `problems` block scoring; `notes` change what is scored."""

    path: Path
    rows: int
    dim: int
    coverage: list[tuple[str, int, int]]  # (task, ids present in the submission, labelled ids)
    counts: dict[str, int]
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.problems)

    def text(self) -> str:
        lines = [f"{self.path}: {self.rows} rows, {self.dim} embedding dimensions"]
        lines += [f"  {k.replace('_', ' ')}: {v}" for k, v in self.counts.items()]
        lines.append(f"  {'task':<24} {'covered':>8} {'labelled':>9} {'share':>7}")
        for task, covered, total in self.coverage:
            lines.append(f"  {task:<24} {covered:>8} {total:>9} {covered / max(total, 1):>7.1%}")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        lines.append("blocking problems found" if self.problems else "ok: no blocking problem")
        return "\n".join(lines)


def _raw_csv(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """ids (uncleaned) and the embedding matrix as float64 with NaN kept; plus the non-numeric cell count."""
    columns = _embedding_columns(_columns(path))
    table = _read_csv(path, {"id": pa.string()})
    x = np.empty((table.num_rows, len(columns)), np.float64)
    non_numeric = 0
    for j, name in enumerate(columns):
        x[:, j], bad = coerce_numbers(table[name])
        non_numeric += int(bad.sum())
    return np.asarray(table["id"].to_pylist(), dtype=object), x, non_numeric


def validate(path, annotation_path, embedding_dim: int | None = None) -> Report:
    """Check a submission against a labels folder the way `evaluate` would read it.

    Problems (blocking): unreadable file or no `id`; more dimensions than
    `embedding_dim`; infinite values; duplicated ids with different rows; no
    overlap with a task. Notes: NaN or non-numeric cells (scored as 0),
    identical duplicated rows, ids with surrounding whitespace, fewer dimensions
    than `embedding_dim` (zero-padded), tasks not fully covered.
    """
    path = Path(path)
    tasks = load_labels(annotation_path)
    if format_of(path) == "csv":
        if not path.is_file():
            raise InputError(f"{path}: submission file not found; check the path")
        if "id" not in _columns(path):
            raise InputError(f"{path}: no 'id' column; the first column of a submission must be named 'id'")
        raw_ids, x, non_numeric = _raw_csv(path)
    else:
        raw_ids, x = read_embeddings(path)
        x, non_numeric = x.astype(np.float64), 0
    ids = clean_ids(pa.array(list(raw_ids), pa.string()))
    report = Report(path=path, rows=len(ids), dim=x.shape[1], coverage=[], counts={
        "non-numeric cells": non_numeric,
        "NaN cells": int(np.isnan(x).sum()) - non_numeric,
        "infinite cells": int(np.isinf(x).sum()),
        "ids with a .zarr/.zarr.zip suffix": int(sum(a != b for a, b in zip(raw_ids, ids))),
        "ids with surrounding whitespace": int(sum(i != i.strip() for i in ids)),
    })
    c = report.counts
    if embedding_dim is not None and x.shape[1] > embedding_dim:
        report.problems.append(f"{x.shape[1]} dimensions but embedding_dim is {embedding_dim}")
    elif embedding_dim is not None and x.shape[1] < embedding_dim:
        report.notes.append(f"{x.shape[1]} dimensions are zero-padded to embedding_dim {embedding_dim}")
    if c["infinite cells"]:
        report.problems.append(f"{c['infinite cells']} infinite values; they would turn every standardised value "
                               f"into NaN; replace them")
    if c["non-numeric cells"] or c["NaN cells"]:
        report.notes.append(f"{c['non-numeric cells'] + c['NaN cells']} NaN or non-numeric cells are scored as 0")
    if c["ids with surrounding whitespace"]:
        report.notes.append("some ids carry surrounding whitespace and will not match the labels")

    frame = pd.DataFrame(np.nan_to_num(x, nan=0.0))
    frame.insert(0, "id", ids)
    dup = frame[frame["id"].duplicated(keep=False)]
    if len(dup):
        distinct = dup.drop_duplicates()  # rows identical in id and values collapse
        conflicting = distinct["id"].duplicated(keep=False)
        c["duplicated ids"] = int(dup["id"].nunique())
        if conflicting.any():
            first = distinct.loc[conflicting, "id"].iloc[0]
            report.problems.append(f"{int(distinct.loc[conflicting, 'id'].nunique())} ids have different "
                                   f"rows (e.g. {first!r}); keep one row per id")
        else:
            report.notes.append(f"{c['duplicated ids']} ids appear more than once with identical rows; one is kept")

    present = set(ids)
    for task in tasks:
        covered = int(sum(i in present for i in task.ids))
        report.coverage.append((task.name, covered, len(task.ids)))
        if covered == 0:
            report.problems.append(f"task '{task.name}': none of its {len(task.ids)} labelled ids is in the submission")
        elif covered < len(task.ids):
            report.notes.append(f"task '{task.name}': {len(task.ids) - covered} of {len(task.ids)} labelled ids "
                                f"are missing and will not be scored")
    return report
