"""Reading tables (host side): the CSV reader, its column rules and the messages that point into a file.

Shared by the label files (neuco_jax.data) and the embedding stores (neuco_jax.stores), which
both build on it: pyarrow's CSV reader at our block size, one-line errors for files it cannot
read (an empty file, a ragged row found by its line), the required-column check, the
embedding-column rule (all-digit names by value, else every non-id column), the reference's
number coercion, and `locations` / `plural` for messages.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from neuco_jax.errors import InputError

# Cell texts that mean "no value" rather than "not a number": pyarrow's defaults (as pandas').
MISSING_TEXTS = frozenset(v.lower() for v in pacsv.ConvertOptions().null_values) | {"nan", "+nan"}
# pyarrow parses a CSV in blocks of this many bytes: with its default 1 MB, a demo-sized
# submission (152 MB x 1025 columns) becomes 150 chunks per column and reads 2x slower.
CSV_BLOCK_BYTES = 16 << 20


def read_csv_table(path: Path, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """pyarrow's CSV reader with our block size; pyarrow's exceptions pass through."""
    return pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                          convert_options=pacsv.ConvertOptions(column_types=column_types or {}))


def _read_csv(path: Path, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    try:
        return read_csv_table(path, column_types)
    except (pa.ArrowInvalid, OSError) as e:
        raise _csv_error(path, e) from None


def _csv_error(path: Path, e: Exception) -> InputError:
    """One line for pyarrow's failure to read a CSV: an empty file, a ragged row (found by its line), or else."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if text == "Empty CSV file":
        return InputError(f"{path}: the file is empty; expected a comma-separated file with a header row")
    if "Expected" in text and "columns, got" in text:
        line, fields, width = _ragged_line(path)
        if line is not None:
            return InputError(f"{path}: line {line} has {fields} fields but the header has {width}; give every row "
                              f"one value per column (quote values that contain commas)")
    return InputError(f"{path}: cannot be read as CSV ({text}); expect a comma-separated file with a header row")


def _records(path: Path):
    """(first line, fields) of every non-blank CSV record, header included, as pyarrow splits them."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        start = 1
        for record in reader:
            if record:  # pyarrow skips blank lines
                yield start, record
            start = reader.line_num + 1


def _ragged_line(path: Path) -> tuple[int | None, int, int]:
    """The first line whose field count differs from the header's: (line, fields, header fields)."""
    width = None
    for line, record in _records(path):
        if width is None:
            width = len(record)
        elif len(record) != width:
            return line, len(record), width
    return None, 0, width or 0


def locations(path: str | Path, rows) -> list[str]:
    """Where data rows (0-based, header excluded) are in a file, for messages.

    CSV: "line N" counting the header as line 1, as an editor shows it (found by
    re-reading the file up to the last row asked for; used on error and warning
    paths only). Other formats: "row index N".
    """
    path = Path(path)
    rows = [int(r) for r in rows]
    if not path.name.lower().endswith(".csv"):
        return [f"row index {r}" for r in rows]
    wanted, found = set(rows), {}
    records = _records(path)
    next(records, None)  # the header
    for r, (line, _) in enumerate(records):
        if r in wanted:
            found[r] = line
            if len(found) == len(wanted):
                break
    return [f"line {found[r]}" if r in found else f"data row {r + 1}" for r in rows]


def _require_columns(path: Path, names: list[str], required: tuple[str, ...], fix: str) -> None:
    """Raise unless every required column is present exactly once; spots a wrong delimiter."""
    for column in required:
        if column in names:
            continue
        if len(names) == 1:
            for sep, what in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
                if sep in names[0]:
                    raise InputError(f"{path}: the header {names[0]!r} is a single column: the file looks "
                                     f"{what}-separated; write it comma-separated (pandas: df.to_csv(path, index=False))")
        near = [n for n in names if n.strip().lower() == column]
        found = f" (found {near[0]!r})" if near else ""
        raise InputError(f"{path}: no '{column}' column{found}; {fix}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"{path}: column {repeated[0]!r} appears more than once in the header; rename or drop the copies")


def coerce_numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64, the reference's way: cells that are not numbers become NaN.

    Returns:
      values: (n,) float64, NaN where the cell is missing or not a number;
      non_numeric: (n,) bool, True where a cell holds text that is not a number
      (empty cells, NaN and the usual missing-value markers such as NA are not counted).
    """
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type) \
            or pa.types.is_boolean(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return values, np.zeros(len(values), bool)
    import pandas as pd  # only for text columns; importing pandas costs every run 0.2-0.4 s

    text = pd.Series(column.cast(pa.string()).to_pylist(), dtype=object)
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    missing = text.isna().to_numpy() | text.str.strip().str.lower().isin(MISSING_TEXTS).to_numpy()
    return values, np.isnan(values) & ~missing


def _columns(path: Path) -> list[str]:
    """Column names of a CSV, from its first block only."""
    try:
        with pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(column_types={"id": pa.string()})) as r:
            return r.schema.names
    except (pa.ArrowInvalid, OSError) as e:
        raise _csv_error(path, e) from None


def _embedding_columns(columns: list[str]) -> list[str]:
    """All-digit column names ordered by value; without any, every non-id column."""
    columns = [c for c in columns if c != "id"]
    digit = [c for c in columns if c.isdigit()]
    return sorted(digit, key=int) if digit else columns


def plural(n: int, word: str) -> str:
    """'1 id', '2 ids': counts in messages."""
    return f"{n} {word}{'' if n == 1 else 's'}"
