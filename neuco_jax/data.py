"""Loading (host side): label folders and embedding submissions, as the reference reads them.

The output of this module is plain numpy: a list of `Task`s (ids and labels in
label-file order) and a submission as `(ids, x)`; `prepare` joins them into the
`Benchmark` that the compiled engine consumes.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from neuco_jax.errors import InputError

log = logging.getLogger(__name__)

TASK_TYPES = {"classification": "classification", "cls": "classification",
              "regression": "regression", "regr": "regression"}


@dataclasses.dataclass(frozen=True)
class Task:
    """One downstream task as read from `<name>__<type>.csv`.

    ids: (n,) str, labels: (n,) float64, both in label-file order, missing labels dropped.
    """

    name: str
    task_type: str  # "classification" or "regression"
    ids: np.ndarray
    labels: np.ndarray

    @property
    def is_classification(self) -> bool:
        return self.task_type == "classification"


def _read_csv(path: Path, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    try:
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=column_types or {}))
    except (pa.ArrowInvalid, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: cannot be read as CSV ({first}); expect a comma-separated file with a header row") from None


def load_labels(annotation_path: str | Path) -> list[Task]:
    """Read every `<task>__<type>.csv` in a folder, one task per file, sorted by task name.

    Args:
      annotation_path: folder of label files with columns `id` and `label`.

    Returns:
      The tasks; rows whose label is empty are skipped (and counted in a warning).
    """
    folder = Path(annotation_path)
    if not folder.is_dir():
        raise InputError(f"{folder}: labels folder not found; pass the folder of <task>__<type>.csv files as --annotation_path")
    tasks = []
    for path in sorted(folder.glob("*.csv")):
        name, sep, kind = path.stem.partition("__")
        if not sep:
            raise InputError(f"{path}: label file name must be <task_name>__<task_type>.csv (e.g. biomass_mean__regression.csv)")
        if kind not in TASK_TYPES:
            raise InputError(f"{path}: unknown task type '{kind}'; rename the file to end in one of "
                             f"{', '.join('__' + t for t in TASK_TYPES)}")
        table = _read_csv(path, {"id": pa.string()})
        for column in ("id", "label"):
            if column not in table.column_names:
                raise InputError(f"{path}: missing column '{column}'; label files need a header 'id,label'")
        label = table["label"]
        if not pa.types.is_integer(label.type) and not pa.types.is_floating(label.type) and label.null_count < len(label):
            bad = next(v for v in label.to_pylist() if v not in (None, ""))
            raise InputError(f"{path}: column 'label' holds non-numeric value {bad!r}; labels must be numbers")
        labels = label.cast(pa.float64()).to_numpy(zero_copy_only=False) if label.null_count < len(label) \
            else np.full(len(label), np.nan)
        ids = np.asarray(table["id"].to_pylist(), dtype=object)
        keep = ~np.isnan(labels)
        if not keep.all():
            warnings.warn(f"{path.name}: skipped {int((~keep).sum())} rows with an empty label", stacklevel=2)
        tasks.append(Task(name=name, task_type=TASK_TYPES[kind], ids=ids[keep], labels=labels[keep]))
    if not tasks:
        raise InputError(f"{folder}: no *.csv label files found; expect files named <task>__<type>.csv")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{folder}: task {dup[0]!r} has more than one label file; keep one per task")
    return sorted(tasks, key=lambda t: t.name)


def clean_ids(ids: pa.Array) -> np.ndarray:
    """Drop a trailing `.zarr.zip` or `.zarr` from every id (the imagery's file names)."""
    ids = pc.replace_substring_regex(ids.cast(pa.string()), pattern=r"\.zarr(\.zip)?$", replacement="")
    return np.asarray(ids.to_pylist(), dtype=object)


def _columns(path: Path) -> list[str]:
    """Column names of a CSV, from its first block only."""
    try:
        with pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(column_types={"id": pa.string()})) as r:
            return r.schema.names
    except (pa.ArrowInvalid, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: cannot be read as CSV ({first}); expect a comma-separated file with a header row") from None


def _embedding_columns(columns: list[str]) -> list[str]:
    """All-digit column names ordered by value; without any, every non-id column."""
    columns = [c for c in columns if c != "id"]
    digit = [c for c in columns if c.isdigit()]
    return sorted(digit, key=int) if digit else columns


def submission_width(path: str | Path) -> int:
    """The embedding dimension of a submission in any store format, from its header or metadata."""
    from neuco_jax import stores  # imported here: stores builds on this module's CSV helpers
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: submission file not found; check --submission_file")
    return stores.embedding_width(path)


def load_submission(path: str | Path, valid_ids=None, embedding_dim: int | None = None,
                    exclude_file: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an embedding submission as the reference does, from any store format.

    The format follows the extension (`.csv`, `.parquet`/`.pq`, `.npz`, `.npy`,
    `.zarr`; layouts in `neuco_jax.stores`). For CSV and Parquet, columns whose
    names are all digits are the embedding, ordered by their integer value
    (0-based `0..D-1` and TerraTorch's 1-based `1..D` both work); without any,
    every non-id column is used. Cells that are not numbers, and NaN, become 0.
    Rows are then filtered by the exclude list and `valid_ids`.

    Args:
      path: the submission store, with ids (CSV/Parquet: first column `id`).
      valid_ids: ids to keep (those present in the labels); None keeps all.
      embedding_dim: expected dimension; more columns is an error, fewer are
        zero-padded on the right. None infers it from the file.
      exclude_file: optional text file of ids to drop, one per line.

    Returns:
      ids: (n,) str, cleaned, in file order; x: (n, embedding_dim) float32.
    """
    from neuco_jax import stores  # imported here: stores builds on this module's CSV helpers
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: submission file not found; check --submission_file")
    ids, x = stores.read_embeddings(path)  # x: (n_rows, found), a fresh array
    found = x.shape[1]
    dim = found if embedding_dim is None else embedding_dim
    if found > dim:
        raise InputError(f"{path}: {found} embedding columns but embedding_dim is {dim}; "
                         f"raise embedding_dim in the config or drop columns")

    ids = clean_ids(pa.array(ids, pa.string()))
    keep = np.ones(len(ids), bool)
    if exclude_file is not None:
        exclude_file = Path(exclude_file)
        if not exclude_file.is_file():
            raise InputError(f"{exclude_file}: exclude file not found; check --exclude_file")
        bad = {line.strip() for line in exclude_file.read_text().splitlines() if line.strip()}
        keep &= np.fromiter((i not in bad for i in ids), bool, len(ids))
    if valid_ids is not None:
        valid_ids = set(valid_ids)
        keep &= np.fromiter((i in valid_ids for i in ids), bool, len(ids))
    if not keep.all():
        ids, x = ids[keep], x[keep]
    if dim > found:
        x = np.concatenate([x, np.zeros((len(x), dim - found), np.float32)], axis=1)
    x[np.isnan(x)] = 0.0
    if len(set(ids)) < len(ids):  # a set is about 4x faster than np.unique on object arrays
        unique, first = np.unique(ids, return_index=True)
        warnings.warn(f"{path.name}: {len(ids) - len(unique)} duplicated ids; the first row of each is kept",
                      stacklevel=2)
        first.sort()
        ids, x = ids[first], x[first]
    return ids, x


@dataclasses.dataclass(frozen=True)
class Benchmark:
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
            normalize_labels: bool = True, task_filter=None) -> Benchmark:
    """Join labels to embeddings and apply the reference's preprocessing.

    Standardisation uses ONE scalar mean and std over the whole kept matrix
    (not per dimension, not per task), std 0 treated as 1. Labels are min-max
    scaled per task after the join.
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
    kept, rows = [], []
    for task in tasks:
        r = np.fromiter((index.get(i, -1) for i in task.ids), np.int64, len(task.ids))
        present = r >= 0
        labels = task.labels[present]
        if normalize_labels and len(labels):
            lo, hi = labels.min(), labels.max()
            labels = (labels - lo) / (hi - lo) if hi > lo else labels - lo
        kept.append(dataclasses.replace(task, ids=task.ids[present], labels=labels))
        rows.append(r[present].astype(np.int32))
        if not present.any():
            raise InputError(f"task '{task.name}': none of its {len(task.ids)} ids is in the submission; "
                             f"check that the submission covers the labels' ids")
    return Benchmark(x=x, ids=ids, tasks=kept, rows=rows, mean=mean, std=std)
