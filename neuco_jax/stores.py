"""Embedding stores: every submission format read into, and written from, one in-memory form.

The in-memory form is `(ids, x)`: ids of shape (n_rows,), an object array of
str in stored order, and x of shape (n_rows, dim), float32. Readers return the
rows as stored (ids not cleaned, NaN kept); `data.load_submission` applies the
benchmark's filtering on top, the same for every format. The format is chosen
by the path's extension (`FORMATS`):

  .csv             header `id,0,..,D-1`, one row per id. Columns whose names
                   are all digits are the embedding, ordered by their integer
                   value (TerraTorch's 1-based `1..D` works too); without any,
                   every non-id column. Cells that are not numbers read as NaN
                   (with a warning counting them and naming the first).
  .parquet, .pq    the same columns and rules as CSV (TerraTorch's export:
                   `id` plus float columns "1".."D"); written as `id`, "0".."D-1".
  .npz             arrays `ids` (N,) str and `embeddings` (N, D), as written by
                   `np.savez(path, ids=..., embeddings=...)`; no pickled objects.
  .npy             the (N, D) matrix alone; its ids are in the sidecar text
                   file `<stem>.ids.txt` next to it (`emb.npy` -> `emb.ids.txt`),
                   UTF-8, one id per line, in row order.
  .zarr            a directory holding a zarr v3 group with arrays
                   `embeddings` (N, D) float32 and `ids` (N, L) uint8: each
                   id's UTF-8 bytes, zero-padded to the longest (tensorstore,
                   which reads the store, has no string data type; numeric
                   (N,) integer ids are accepted too). Written in chunks of at
                   most 4096 rows, split evenly, uncompressed.

Writes are atomic: everything goes to a temporary name in the destination's
folder and is renamed into place only once complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from neuco_jax.errors import InputError
from neuco_jax.files import atomic_path
from neuco_jax.tables import (_columns, _embedding_columns, _read_csv, _require_columns, coerce_numbers, locations,
                              plural, read_csv_table)

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz", ".npy": "npy", ".zarr": "zarr"}
ZARR_CHUNK_ROWS = 4096
_ZARR_ENTRIES = {"zarr.json", "embeddings", "ids"}  # all that a folder may hold for a write to replace it
_EXPECTED = {  # the layout each reader needs, for error messages
    "Parquet": "an 'id' column and one numeric column per dimension",
    ".npz": "np.savez(path, ids=<(N,) str>, embeddings=<(N, D) numbers>) without pickled objects",
    ".npy": "np.save(path, <(N, D) numbers>)",
    "zarr": "a zarr v3 group with arrays 'embeddings' (N, D) and 'ids' (N, L) uint8, zero-padded UTF-8",
}


def format_of(path: str | Path) -> str:
    """The store format of `path` from its extension: csv, parquet, npz, npy or zarr."""
    name = Path(path).name.lower()
    for ext, fmt in FORMATS.items():
        if name.endswith(ext):
            return fmt
    raise InputError(f"{path}: unknown embedding file type; name it with one of the extensions {', '.join(FORMATS)}")


def ids_file(npy_path: str | Path) -> Path:
    """The sidecar that holds the ids of a `.npy` matrix: `emb.npy` -> `emb.ids.txt`."""
    return Path(npy_path).with_suffix(".ids.txt")


def read_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an embedding store of any format.

    Args:
      path: a `.csv`, `.parquet`/`.pq`, `.npz`, `.npy` (with its `.ids.txt`) or `.zarr` store.

    Returns:
      ids: (n_rows,) object array of str, as stored; x: (n_rows, dim) float32,
      a fresh array the caller may modify.
    """
    path = Path(path)
    fmt = format_of(path)
    if not path.exists():
        raise InputError(f"{path}: embedding store not found; check the path")
    ids, x = _READERS[fmt](path)
    return _checked(path, ids, x)


def write_embeddings(path: str | Path, ids, x) -> None:
    """Write `(ids, x)` in the format of `path`'s extension, replacing any existing store.

    Args:
      path: destination; its folder must exist.
      ids: (n_rows,) str.
      x: (n_rows, dim) numbers, stored as float32.
    """
    path = Path(path)
    fmt = format_of(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist; create it first")
    if path.is_dir() and not (fmt == "zarr" and {p.name for p in path.iterdir()} <= _ZARR_ENTRIES):
        raise InputError(f"{path}: is a folder but not an embedding store; remove it or choose another name")
    ids, x = _checked(path, np.asarray(ids), np.asarray(x))
    if fmt in ("csv", "npy") and any("\n" in i or "\r" in i for i in ids):
        raise InputError(f"{path}: an id contains a line break, which {fmt} ids cannot hold; "
                         f"use .parquet, .npz or .zarr")
    targets = [path, ids_file(path)] if fmt == "npy" else [path]
    with contextlib.ExitStack() as stack:  # on exit, sidecar renamed first, then the store
        tmps = [stack.enter_context(atomic_path(p)) for p in targets]
        _WRITERS[fmt](*tmps, ids, x)


def convert(src: str | Path, dst: str | Path) -> None:
    """Copy an embedding store into another format (both chosen by extension), ids and values unchanged."""
    write_embeddings(dst, *read_embeddings(src))


def embedding_width(path: str | Path) -> int:
    """The embedding dimension D of a store, from its header or metadata where the format has one."""
    path = Path(path)
    fmt = format_of(path)
    if fmt in ("csv", "parquet"):
        return len(column_names(path))
    if fmt == "npy":
        with _reading(path, ".npy"), open(path, "rb") as f:
            shape = _npy_shape(f)
    elif fmt == "npz":
        with _reading(path, ".npz"), zipfile.ZipFile(path) as z:
            if "embeddings.npy" not in z.namelist():
                raise InputError(f"{path}: no array 'embeddings'; save with np.savez(path, ids=ids, embeddings=x)")
            with z.open("embeddings.npy") as f:
                shape = _npy_shape(f)
    else:
        shape = tuple(_open_zarr(path, "embeddings").shape)
    if len(shape) != 2:
        raise InputError(f"{path}: embeddings have shape {shape}; expected a 2-D (rows, dims) matrix")
    return int(shape[1])


def column_names(path: str | Path) -> list[str]:
    """The name of each embedding column, in x's order: the header's for CSV and Parquet, else "0".."D-1"."""
    path = Path(path)
    fmt = format_of(path)
    if fmt == "csv":
        return _embedding_columns(_require_id(path, _columns(path)))
    if fmt == "parquet":
        with _reading(path, "Parquet"):
            names = pq.read_schema(path).names
        return _embedding_columns(_require_id(path, names))
    return [str(j) for j in range(embedding_width(path))]


# Reading ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _reading(path: Path, kind: str):
    """Turn a library's failure to read `path` into a one-line InputError."""
    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        first = str(e).splitlines()[0].split(" [tensorstore_spec=")[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: cannot be read as {kind} ({first}); expected {_EXPECTED[kind]}") from None


def _checked(path: Path, ids: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and types; ids as an object array of str, x as float32."""
    if x.ndim != 2:
        raise InputError(f"{path}: embeddings have shape {x.shape}; expected a 2-D (rows, dims) matrix")
    if x.dtype.kind not in "fiub":
        raise InputError(f"{path}: embeddings have data type {x.dtype}; expected numbers")
    if ids.ndim != 1 or len(ids) != len(x):
        raise InputError(f"{path}: ids have shape {ids.shape} for {len(x)} embedding rows; give one id per row")
    if ids.dtype.kind in "iu":
        ids = ids.astype(str)
    elif ids.dtype.kind == "S":
        ids = _utf8(path, ids)
    elif ids.dtype.kind not in "UO" or (ids.dtype.kind == "O" and not all(isinstance(i, str) for i in ids)):
        raise InputError(f"{path}: ids must be strings or integers, not {ids.dtype} values")
    return ids.astype(object), x.astype(np.float32, copy=False)


def _utf8(path: Path, ids: np.ndarray) -> np.ndarray:
    """(N,) bytes -> (N,) str."""
    try:
        return np.char.decode(ids, "utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: ids are not UTF-8 text; store them UTF-8 encoded") from None


def _table_embeddings(path: Path, table: pa.Table, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """ids and x from a table with an `id` column and the given embedding columns.

    Cells that are not numbers become NaN, as in the reference; a warning counts
    them and names the first (in row order).
    """
    if table["id"].null_count:
        raise InputError(f"{path}: {table['id'].null_count} rows have no id; give every row an id")
    ids = np.asarray(table["id"].cast(pa.string()).to_pylist(), dtype=object)
    # Columns arrive one by one: copy them into x (n_rows, dim) through a (block, n_rows) buffer, so
    # that both the column copies and the transposed block copy stay cache-friendly (about 2x
    # faster than one full transpose, 8x faster than strided column writes).
    x = np.empty((table.num_rows, len(columns)), np.float32)
    block = np.empty((max(1, min(128, len(columns))), table.num_rows), np.float32)
    non_numeric, first = 0, None  # first: (row, column) of the first non-numeric cell
    for j0 in range(0, len(columns), len(block)):
        names = columns[j0:j0 + len(block)]
        for k, name in enumerate(names):
            col = table[name]
            if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
                block[k] = col.to_numpy(zero_copy_only=False)
            else:
                block[k], bad = coerce_numbers(col)
                if bad.any():
                    non_numeric += int(bad.sum())
                    cell = (int(np.argmax(bad)), j0 + k)
                    first = min(first or cell, cell)
        x[:, j0:j0 + len(names)] = block[:len(names)].T
    if non_numeric:
        r, j = first
        warnings.warn(f"{path}: {plural(non_numeric, 'non-numeric cell')} read as missing, which evaluate scores as 0 "
                      f"(first: {locations(path, [r])[0]}, column {columns[j]!r}: {table[columns[j]][r].as_py()!r}); "
                      f"fix them if they are not meant to be missing", stacklevel=4)
    return ids, x


def _require_id(path: Path, names: list[str]) -> list[str]:
    _require_columns(path, names, ("id",), "the first column of a submission must be named 'id'")
    return names


def _read_csv_store(path: Path) -> tuple[np.ndarray, np.ndarray]:
    columns = _embedding_columns(_require_id(path, _columns(path)))
    try:  # Declared types skip pyarrow's type inference: about 40% faster.
        table = read_csv_table(path, {"id": pa.string(), **{c: pa.float32() for c in columns}})
    except pa.ArrowInvalid:  # some cell is not a number (or the file is malformed): read as text, coerced in
        table = _read_csv(path, {"id": pa.string()})  # _table_embeddings, or a one-line error
    return _table_embeddings(path, table, columns)


def _read_parquet(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with _reading(path, "Parquet"):
        file = pq.ParquetFile(path, memory_map=True)  # saves a copy: about 2x faster for nullable columns
        columns = _embedding_columns(_require_id(path, file.schema_arrow.names))
        table = file.read(columns=["id", *columns])
    return _table_embeddings(path, table, columns)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with _reading(path, ".npz"), np.load(path, allow_pickle=False) as npz:
        for name in ("ids", "embeddings"):
            if name not in npz.files:
                raise InputError(f"{path}: no array '{name}' (has {', '.join(npz.files) or 'none'}); "
                                 f"save with np.savez(path, ids=ids, embeddings=x)")
        return npz["ids"], npz["embeddings"]


def _read_npy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    sidecar = ids_file(path)
    if not sidecar.is_file():
        raise InputError(f"{path}: ids file {sidecar.name} not found next to it; write the ids there, one per line")
    with _reading(path, ".npy"):
        x = np.load(path, allow_pickle=False)
    text = sidecar.read_text(encoding="utf-8")
    ids = [i.removesuffix("\r") for i in text.removesuffix("\n").split("\n")] if text else []
    return np.asarray(ids, dtype=object), x


def _npy_shape(f) -> tuple[int, ...]:
    """The array shape from a .npy header, without reading the data."""
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read_header(f)[0]


def _tensorstore():
    try:
        import tensorstore
    except ImportError:
        raise InputError("reading or writing .zarr stores needs tensorstore; pip install tensorstore") from None
    return tensorstore


def _zarr_spec(path: Path) -> dict:
    return {"driver": "zarr3", "kvstore": {"driver": "file", "path": os.fspath(path.absolute())}}


def _open_zarr(path: Path, name: str):
    """The tensorstore of array `name` in the zarr v3 group at `path` (metadata only, no data read)."""
    try:
        return _tensorstore().open(_zarr_spec(path / name), open=True, read=True).result()
    except ValueError as e:  # tensorstore reports every failure as ValueError
        reason = str(e).split(" [tensorstore_spec=")[0]
        raise InputError(f"{path}: cannot open zarr array '{name}' ({reason}); expected {_EXPECTED['zarr']}") from None


def _read_zarr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_dir():
        raise InputError(f"{path}: a .zarr store must be a directory holding a zarr v3 group")
    ts = _tensorstore()
    arrays = [_open_zarr(path, name) for name in ("ids", "embeddings")]
    # Copying into arrays allocated here is about 2x faster than TensorStore.read(); both copies run concurrently.
    raw, x = (np.empty(a.shape, a.dtype.numpy_dtype) for a in arrays)
    copies = [ts.array(out, copy=False, write=True).write(a) for out, a in zip((raw, x), arrays)]
    with _reading(path, "zarr"):
        for copy in copies:
            copy.result()
    return _decode_ids(path, raw), x


def _decode_ids(path: Path, raw: np.ndarray) -> np.ndarray:
    """Ids from a zarr `ids` array, (N, L) uint8 zero-padded UTF-8 or (N,) integers, as (N,) bytes or integers."""
    if raw.ndim == 1 and raw.dtype.kind in "iu":
        return raw
    if raw.ndim != 2 or raw.dtype != np.uint8:
        raise InputError(f"{path}: array 'ids' has shape {raw.shape} and type {raw.dtype}; expected (N, L) uint8 "
                         f"(UTF-8, zero-padded) or (N,) integers")
    return raw.view(f"S{raw.shape[1]}")[:, 0] if raw.shape[1] else np.zeros(len(raw), "S1")  # (N,) bytes


# Writing ---------------------------------------------------------------------------------------


def _table(ids: np.ndarray, x: np.ndarray) -> pa.Table:
    """`id`, "0".."D-1" as an Arrow table, each column a zero-copy row of x transposed.

    The columns are declared non-nullable ("required" in Parquet): without definition levels to
    decode, Parquet reads about 2x faster.
    """
    xt = np.ascontiguousarray(x.T)  # (dim, n_rows)
    schema = pa.schema([pa.field("id", pa.string(), nullable=False),
                        *(pa.field(str(j), pa.float32(), nullable=False) for j in range(x.shape[1]))])
    return pa.Table.from_arrays([pa.array(ids, pa.string()), *(pa.array(col) for col in xt)], schema=schema)


def _write_csv(tmp: Path, ids: np.ndarray, x: np.ndarray) -> None:
    pacsv.write_csv(_table(ids, x), tmp)  # floats as shortest round-trip text: float32 survives exactly


def _write_parquet(tmp: Path, ids: np.ndarray, x: np.ndarray) -> None:
    # Dictionary encoding, statistics and compression are useless for float embeddings: without them
    # the file is about 30% smaller than pyarrow's default and reads about 2x faster.
    pq.write_table(_table(ids, x), tmp, use_dictionary=False, write_statistics=False, compression="none")


def _write_npz(tmp: Path, ids: np.ndarray, x: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, ids=ids.astype(str), embeddings=x)


def _write_npy(tmp: Path, tmp_ids: Path, ids: np.ndarray, x: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, x)
    tmp_ids.write_text("".join(i + "\n" for i in ids), encoding="utf-8")


def _write_zarr(tmp: Path, ids: np.ndarray, x: np.ndarray) -> None:
    ts = _tensorstore()
    encoded = [i.encode("utf-8") for i in ids]
    width = max(map(len, encoded), default=0) or 1  # chunk shapes must be positive
    raw = np.array(encoded, dtype=f"S{width}").view(np.uint8).reshape(len(ids), width)  # (N, L), zero-padded
    # At most ZARR_CHUNK_ROWS rows per chunk, split evenly: edge chunks are stored full size.
    n_chunks = max(1, -(-len(x) // ZARR_CHUNK_ROWS))
    rows = max(1, -(-len(x) // n_chunks))
    tmp.mkdir()
    (tmp / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    arrays = {"embeddings": (x, {}), "ids": (raw, {"encoding": "UTF-8 bytes of each id, zero-padded"})}
    pending = [ts.open({**_zarr_spec(tmp / name), "metadata": {
        "shape": list(a.shape), "data_type": str(a.dtype), "attributes": attributes,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [rows, max(1, a.shape[1])]}},
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]}}, create=True)
        for name, (a, attributes) in arrays.items()]  # opening, then writing
    try:
        for opened, (a, _) in zip(list(pending), arrays.values()):
            pending.append(opened.result().write(a))
        for operation in pending:
            operation.result()
    finally:
        # Interrupted (Ctrl-C) while waiting, tensorstore's threads still write (cancel() does not stop
        # them): let them end, or they would put files back into the folder the caller removes.
        for operation in pending:
            while not operation.done():
                time.sleep(0.01)


_READERS = {"csv": _read_csv_store, "parquet": _read_parquet, "npz": _read_npz, "npy": _read_npy, "zarr": _read_zarr}
_WRITERS = {"csv": _write_csv, "parquet": _write_parquet, "npz": _write_npz, "npy": _write_npy, "zarr": _write_zarr}
