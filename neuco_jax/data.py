"""Loading (host side): label folders and embedding submissions, as the reference reads them.

The output of this module is plain numpy: a list of `Task`s (ids and labels in
label-file order) and a submission as `(ids, x)`; `prepare` joins them into the
`Prepared` that the compiled engine consumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from neuco_jax import stores
from neuco_jax.errors import InputError
from neuco_jax.tables import _read_csv, _require_columns, coerce_numbers, locations, plural

log = logging.getLogger(__name__)

TASK_TYPES = {"classification": "classification", "cls": "classification",
              "regression": "regression", "regr": "regression"}
# Held-out rows are ceil(10%) of a task: below this many rows a regression fold holds out one row,
# whose R^2 (SS_tot = 0) is undefined.
MIN_REGRESSION_ROWS = 11
# A task that the submission covers below this share gets a warning.
LOW_COVERAGE = 0.5


@dataclasses.dataclass(frozen=True)
class Task:
    """One downstream task as read from `<name>__<type>.csv`.

    ids: (n,) str, labels: (n,) float64, both in label-file order, missing labels dropped.
    """

    name: str
    task_type: str  # "classification" or "regression"
    ids: np.ndarray
    labels: np.ndarray
    path: Path | None = None  # the label file, for messages

    @property
    def is_classification(self) -> bool:
        return self.task_type == "classification"


def load_labels(annotation_path: str | Path) -> list[Task]:
    """Read every `<task>__<type>.csv` in a folder, one task per file, sorted by task name.

    Args:
      annotation_path: folder of label files with columns `id` and `label`.

    Returns:
      The tasks; rows whose label is empty are skipped (and counted in a warning).

    Raises:
      InputError: naming the file (and the line where there is one) when a file
        cannot be scored: a bad name or header, a non-numeric or infinite label,
        an id labelled twice, fewer than 2 labelled rows, a classification label
        other than 0/1 or a single class, or a regression label that never varies.
    """
    folder = Path(annotation_path)
    if not folder.is_dir():
        raise InputError(f"{folder}: labels folder not found; pass the folder of <task>__<type>.csv files as --annotation_path")
    tasks = [_load_task(path) for path in _label_files(folder)]
    if not tasks:
        raise InputError(f"{folder}: no *.csv label files found; expect files named <task>__<type>.csv")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{folder}: task {dup[0]!r} has more than one label file; keep one per task")
    return sorted(tasks, key=lambda t: t.name)


def _label_files(folder: Path) -> list[Path]:
    """The label files of a folder, in name order: every `*.csv` in it."""
    return sorted(folder.glob("*.csv"))


def labels_fingerprint(annotation_path: str | Path) -> str:
    """A stable hash of the label files `load_labels` reads: "sha256:<hex>".

    Hashes each file's name and bytes, in name order, so that two runs share a
    fingerprint exactly when they were scored on the same label files (every
    file, not only the tasks a `task_filter` kept: the ids of all of them decide
    which submission rows are kept and standardised).
    """
    digest = hashlib.sha256()
    for path in _label_files(Path(annotation_path)):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def read_exclude_ids(exclude_file: str | Path) -> set[str]:
    """The ids of an exclude file: one per line, surrounding whitespace and blank lines ignored."""
    exclude_file = Path(exclude_file)
    if not exclude_file.is_file():
        raise InputError(f"{exclude_file}: exclude file not found; check --exclude_file")
    return {line.strip() for line in exclude_file.read_text().splitlines() if line.strip()}


def exclude_fingerprint(exclude_file: str | Path | None) -> str | None:
    """A stable hash of the set of ids an exclude file drops ("sha256:<hex>"); None when it drops none.

    Hashes the sorted ids rather than the bytes, so that order, blank lines and
    line endings (which change nothing) do not change it.
    """
    ids = read_exclude_ids(exclude_file) if exclude_file is not None else set()
    if not ids:
        return None
    digest = hashlib.sha256("\n".join(sorted(ids)).encode())
    return f"sha256:{digest.hexdigest()}"


# The run summary's key for the sha256 of the embeddings a run scored (neuco_jax.reuse matches on it).
CONTENT_KEY = "embeddings_sha256"


def file_sha256(path: str | Path) -> str:
    """"sha256:<hex>" of a submission's content: a file's bytes, or a folder store's (zarr) files,
    each relative path and its bytes in path order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(f"{f.relative_to(path).as_posix()}\0".encode())
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def array_sha256(ids, x: np.ndarray) -> str:
    """"sha256:<hex>" of embeddings given as arrays: the ids, then the array's dtype, shape and bytes."""
    x = np.ascontiguousarray(x)
    digest = hashlib.sha256("\0".join(map(str, ids)).encode())
    digest.update(f"\0{x.dtype.str}\0{x.shape}\0".encode())
    digest.update(x.reshape(-1).view(np.uint8))  # the bytes in place, no copy (memoryview.cast refuses empty arrays)
    return f"sha256:{digest.hexdigest()}"


def _load_task(path: Path) -> Task:
    name, sep, kind = path.stem.partition("__")
    if not sep:
        raise InputError(f"{path}: label file name must be <task_name>__<task_type>.csv (e.g. biomass_mean__regression.csv)")
    if kind not in TASK_TYPES:
        raise InputError(f"{path}: unknown task type '{kind}'; rename the file to end in one of "
                         f"{', '.join('__' + t for t in TASK_TYPES)}")
    table = _read_csv(path, {"id": pa.string()})
    _require_columns(path, table.column_names, ("id", "label"), "label files need a header row 'id,label'")
    labels, non_numeric = coerce_numbers(table["label"])
    if non_numeric.any():
        r = int(np.argmax(non_numeric))
        raise InputError(f"{path}: {locations(path, [r])[0]} has the non-numeric label "
                         f"{table['label'][r].as_py()!r}; labels must be numbers (leave the cell empty to skip the row)")
    ids = np.asarray(table["id"].to_pylist(), dtype=object)
    keep = ~np.isnan(labels)
    if not keep.all():
        warnings.warn(f"{path}: skipped {plural(int((~keep).sum()), 'row')} with an empty label", stacklevel=3)
    rows = np.flatnonzero(keep)  # file row of each kept label
    ids, labels = ids[keep], labels[keep]
    task = Task(name=name, task_type=TASK_TYPES[kind], ids=ids, labels=labels, path=path)

    if len(ids) < 2:
        raise InputError(f"{path}: {plural(len(ids), 'labelled row')}; a task needs at least 2 (one to train on, "
                         f"one held out)")
    if np.isinf(labels).any():
        r = int(np.argmax(np.isinf(labels)))
        raise InputError(f"{path}: {locations(path, [rows[r]])[0]} has the label {labels[r]}; labels must be finite")
    _, first, inverse = np.unique(ids.astype(str), return_index=True, return_inverse=True)
    again = np.flatnonzero(first[inverse] != np.arange(len(ids)))
    if len(again):
        r = again[0]
        a, b = locations(path, [rows[first[inverse[r]]], rows[r]])
        raise InputError(f"{path}: id {ids[r]!r} is labelled on {a} and on {b}; give each id one label")
    if task.is_classification:
        bad = ~np.isin(labels, (0.0, 1.0))
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(f"{path}: {locations(path, [rows[r]])[0]} has the label {labels[r]:g}; classification "
                             f"labels must be 0 or 1 (name the file {name}__regression.csv if it is a regression)")
    _check_labels_vary(task, str(path))
    return task


def _check_labels_vary(task: Task, where: str) -> None:
    """Raise unless a task's labels have both classes (classification) or vary (regression)."""
    if task.labels.min() != task.labels.max():
        return
    value = task.labels[0]
    if task.is_classification:
        raise InputError(f"{where}: every label is {value:g}; a classification task needs both classes 0 and 1 "
                         f"(F1 of a single class is meaningless)")
    raise InputError(f"{where}: every label is {value:g}; a regression task needs labels that vary "
                     f"(min-max scaling would divide by zero and R^2 is undefined)")


def clean_ids(ids: pa.Array) -> np.ndarray:
    """Drop a trailing `.zarr.zip` or `.zarr` from every id (the imagery's file names)."""
    ids = pc.replace_substring_regex(ids.cast(pa.string()), pattern=r"\.zarr(\.zip)?$", replacement="")
    return np.asarray(ids.to_pylist(), dtype=object)


def submission_width(path: str | Path) -> int:
    """The embedding dimension of a submission in any store format, from its header or metadata."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: submission file not found; check --submission_file")
    return _require_width(path, stores.embedding_width(path))


def _require_width(path: Path, width: int) -> int:
    if width == 0:
        raise InputError(f"{path}: no embedding columns besides 'id'; write one column per dimension, named 0..D-1")
    return width


def load_submission(path: str | Path, valid_ids=None, embedding_dim: int | None = None,
                    exclude_file: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an embedding submission as the reference does, from any store format.

    The format follows the extension (`.csv`, `.parquet`/`.pq`, `.npz`, `.npy`,
    `.zarr`; layouts in `neuco_jax.stores`). For CSV and Parquet, columns whose
    names are all digits are the embedding, ordered by their integer value
    (0-based `0..D-1` and TerraTorch's 1-based `1..D` both work); without any,
    every non-id column is used.

    Ids lose surrounding whitespace (with a warning: the reference would keep it,
    and such ids would silently match no label), then a trailing `.zarr.zip` or
    `.zarr`. Rows are then filtered by the exclude list and `valid_ids`, keeping
    file order. Of the kept rows:

    - cells that are not numbers, and NaN, become 0 (as in the reference; the
      reader warns with the count of non-numeric cells and the first one);
    - an infinite value is an error naming its line (or row) and column: it
      would turn the global standardisation into NaN;
    - an id on several rows with identical values keeps its first row, with a
      warning; with different values it is an error naming the id and both rows.

    Args:
      path: the submission store, with ids (CSV/Parquet: first column `id`).
      valid_ids: ids to keep (those present in the labels); None keeps all.
      embedding_dim: expected dimension; more columns is an error, fewer are
        zero-padded on the right. None infers it from the file.
      exclude_file: optional text file of ids to drop, one per line.

    Returns:
      ids: (n,) str, cleaned, in file order; x: (n, embedding_dim) float32.

    Raises:
      InputError: one line naming the file and, where there is one, the line
        (CSV) or row index and column, and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: submission file not found; check --submission_file")
    raw_ids, x = stores.read_embeddings(path)  # x: (n_rows, found), a fresh array
    found = _require_width(path, x.shape[1])
    dim = found if embedding_dim is None else embedding_dim
    if not len(raw_ids):
        raise InputError(f"{path}: no rows below the header; write one row per id")
    if found > dim:
        raise InputError(f"{path}: {found} embedding columns but embedding_dim is {dim}; "
                         f"raise embedding_dim in the config or drop columns")

    ids = _strip_ids(path, pa.array(raw_ids, pa.string()))
    rows = np.arange(len(ids))  # file row of each kept row
    if exclude_file is not None:
        bad = read_exclude_ids(exclude_file)
        rows = rows[np.fromiter((i not in bad for i in ids), bool, len(ids))]
    if valid_ids is not None:
        valid_ids = set(valid_ids)
        labelled = np.fromiter((i in valid_ids for i in ids), bool, len(ids))
        if not labelled.any():
            example = f" (e.g. {min(valid_ids)!r})" if valid_ids else ""
            raise InputError(f"{path}: none of its {len(ids)} ids (e.g. {ids[0]!r}) is an id of the labels{example}; "
                             f"the submission's 'id' column must hold the label files' ids")
        rows = rows[labelled[rows]]
        if not len(rows):
            raise InputError(f"{path}: every row whose id is in the labels is listed in {exclude_file}; "
                             f"check --exclude_file")
    if len(rows) < len(ids):
        ids, x = ids[rows], x[rows]
    x[np.isnan(x)] = 0.0
    _check_finite(path, x, rows)
    ids, x = _drop_duplicates(path, ids, x, rows)
    if dim > found:
        x = np.concatenate([x, np.zeros((len(x), dim - found), np.float32)], axis=1)
    return ids, x


def _strip_ids(path: Path, raw: pa.Array) -> np.ndarray:
    """Ids without surrounding whitespace (with a warning) and without a .zarr/.zarr.zip suffix."""
    stripped = pc.utf8_trim_whitespace(raw)
    changed = np.asarray(pc.not_equal(raw, stripped).fill_null(False))
    if changed.any():
        r = int(np.argmax(changed))
        warnings.warn(f"{path}: {plural(int(changed.sum()), 'id')} with surrounding whitespace, which is stripped before "
                      f"matching the labels (first: {raw[r].as_py()!r} on {locations(path, [r])[0]})", stacklevel=3)
    return clean_ids(stripped)


def _check_finite(path: Path, x: np.ndarray, rows: np.ndarray) -> None:
    """Raise at the first infinite value of x (kept rows; rows: their file rows)."""
    bad = np.isinf(x)
    if not bad.any():
        return
    r, c = np.argwhere(bad)[0]
    column = stores.column_names(path)[c]
    raise InputError(f"{path}: {locations(path, [rows[r]])[0]}, column {column!r} holds {x[r, c]} "
                     f"({plural(int(bad.sum()), 'infinite value')} in the rows scored; numbers beyond float32's "
                     f"range read as inf), which would make the global standardisation NaN; replace them with "
                     f"finite numbers")


def _drop_duplicates(path: Path, ids: np.ndarray, x: np.ndarray, rows: np.ndarray):
    """Keep the first row of ids repeated with identical values (warning); raise if their values differ."""
    if len(set(ids)) == len(ids):  # a set is about 4x faster than np.unique on object arrays
        return ids, x
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    first_of = first[inverse]  # (n,) the first row with each row's id
    again = np.flatnonzero(first_of != np.arange(len(ids)))
    differs = again[(x[again] != x[first_of[again]]).any(axis=1)]
    if len(differs):
        r = differs[0]
        a, b = locations(path, [rows[first_of[r]], rows[r]])
        n = len(set(ids[differs]))
        raise InputError(f"{path}: id {ids[r]!r} is on {a} and on {b} with different values"
                         f"{f' ({n} such ids in all)' if n > 1 else ''}; keep one row per id")
    r = again[0]
    a, b = locations(path, [rows[first_of[r]], rows[r]])
    warnings.warn(f"{path}: {plural(len(set(ids[again])), 'id')} on more than one row with identical values "
                  f"(first: {ids[r]!r} on {a} and {b}); the first row of each is kept", stacklevel=3)
    keep = np.sort(first)
    return ids[keep], x[keep]


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Embeddings joined to every evaluated task; the input of the compiled engine.

    x: (n_rows, dim) float32, the kept (standardised) submission, one row per id.
    tasks[t].ids / labels follow label-file order restricted to ids present in x;
    rows[t]: (n_t,) int32, the x row of each of task t's samples.
    """

    x: np.ndarray
    ids: np.ndarray
    tasks: list[Task]
    rows: list[np.ndarray]
    mean: float  # the standardisation applied: x = (raw - mean) / std
    std: float


def prepare(tasks: list[Task], ids: np.ndarray, x: np.ndarray, *, standardize: bool = True,
            normalize_labels: bool = True, task_filter=None) -> Prepared:
    """Join labels to embeddings and apply the reference's preprocessing.

    Standardisation uses ONE scalar mean and std over the whole kept matrix
    (not per dimension, not per task), std 0 treated as 1. Labels are min-max
    scaled per task after the join.

    A task that the submission covers below half of its ids gets a warning
    with the counts. It is an error when, after the join, a task has fewer than
    2 rows, a regression task fewer than 11 (each fold would hold out a single
    row, whose R^2 is undefined), a classification task one class only, or a
    regression task one label value only.
    """
    if task_filter is not None:
        known = {t.name for t in tasks}
        missing = [n for n in task_filter if n not in known]
        if missing:
            raise InputError(f"task_filter names unknown task '{missing[0]}'; tasks in the labels folder: "
                             f"{', '.join(sorted(known))}")
        tasks = [t for t in tasks if t.name in set(task_filter)]
    mean, std = 0.0, 1.0
    if standardize and x.size:
        mean = float(x.mean(dtype=np.float64))
        std = float(x.std(dtype=np.float64)) or 1.0
        x = ((x - mean) / std).astype(np.float32)
    index = {key: i for i, key in enumerate(ids)}
    kept, rows, low = [], [], []
    for task in tasks:
        r = np.fromiter((index.get(i, -1) for i in task.ids), np.int64, len(task.ids))
        present = r >= 0
        joined = dataclasses.replace(task, ids=task.ids[present], labels=task.labels[present])
        _check_joined(joined, len(task.ids))
        if len(joined.ids) < LOW_COVERAGE * len(task.ids):
            low.append(f"{task.name} {len(joined.ids)}/{len(task.ids)}")
        if normalize_labels:
            lo, hi = joined.labels.min(), joined.labels.max()
            joined = dataclasses.replace(joined, labels=(joined.labels - lo) / (hi - lo))
        kept.append(joined)
        rows.append(r[present].astype(np.int32))
    if low:
        warnings.warn(f"the submission covers less than {LOW_COVERAGE:.0%} of the labelled ids of "
                      f"{len(low)} task(s) ({', '.join(low)} ids); only covered ids are scored", stacklevel=2)
    return Prepared(x=x, ids=ids, tasks=kept, rows=rows, mean=mean, std=std)


def _check_joined(task: Task, labelled: int) -> None:
    """Raise if a task, restricted to the submission's ids (`labelled` before), cannot be scored."""
    n = len(task.ids)
    where = f"task '{task.name}'" + (f" ({task.path})" if task.path else "")
    if n == 0:
        raise InputError(f"{where}: none of its {labelled} ids is in the submission; "
                         f"check that the submission covers the labels' ids")
    need = 2 if task.is_classification else MIN_REGRESSION_ROWS
    if n < need:
        why = ("one to train on, one held out" if need == 2 else
               "below that a fold holds out a single row, whose R^2 is undefined")
        have = (f"has only {plural(n, 'labelled row')}" if n == labelled else
                f"has only {n} of its {labelled} ids in the submission")
        fix = "add labels" if n == labelled else "cover more of its ids"
        raise InputError(f"{where} {have}; a {task.task_type} task needs at least {need} ({why}); {fix} "
                         f"or leave the task out with task_filter")
    _check_labels_vary(task, f"{where}, restricted to the {n} ids the submission covers")
