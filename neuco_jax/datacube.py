"""Loading (host side): SSL4EO-S12-downstream datacubes, the imagery embeddings are computed from.

Layout of the dataset (Hugging Face `embed2scale/SSL4EO-S12-downstream`):

    <root>/data/<modality>/part-NNNNNN/<id>.zarr.zip      modality: s1, s2l1c, s2l2a

One file per location and modality: an xarray Dataset saved as zarr (format 2)
and zipped. Its data variable `bands` has dims (sample=1, time=4, band, y, x),
264 x 264 pixels, the four seasons in the order of `SEASONS`; xarray records
the dims in each array's `_ARRAY_DIMENSIONS` attribute and stores coordinates
(`band` names, `time`, ...) as arrays beside it. S1 holds backscatter (vv, vh;
floats in dB), S2 integer digital numbers. The S2 numbers follow ESA's
processing before 2022 (reflectance * 10000); SSL4EO-S12 v1.1, on which most
models were pretrained, follows the newer baseline that adds 1000, so
`CubeReader` adds 1000 to S2 by default (`s2_shift`).

`read_cube` reads one file; `CubeReader` reads batches of locations, the
files of a batch on a thread pool, into one preallocated float array per batch:
  concat=True:  x: (batch, time, channels, y, x), channels = the modalities' bands in order;
  concat=False: {modality: (batch, time, band, y, x)}.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import zarr
import zarr.errors
from zarr.storage import MemoryStore, ZipStore

from neuco_jax.errors import InputError, first_line

log = logging.getLogger(__name__)

MODALITIES: dict[str, tuple[str, ...]] = {
    "s1": ("vv", "vh"),
    "s2l1c": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"),
    "s2l2a": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"),
}
SEASONS = ("spring", "summer", "autumn", "winter")
VARIABLE = "bands"
DIMS = ("sample", "time", "band", "y", "x")
SUFFIX = ".zarr.zip"
S2_SHIFT = 1000.0
_SHIFTED = ("s2l1c", "s2l2a")
# A batch: (batch, time, channels, y, x), or {modality: (batch, time, band, y, x)}.
_Batch = np.ndarray | dict[str, np.ndarray]


def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities={list(modalities)}: expected one or more distinct names "
                         f"out of {', '.join(MODALITIES)}")
    return modalities


def season_indices(seasons: Sequence[str] | None) -> list[int]:
    """Time indices of seasons given by name, in the order given; None means all four."""
    if seasons is None:
        return list(range(len(SEASONS)))
    seasons = (seasons,) if isinstance(seasons, str) else tuple(seasons)
    unknown = [s for s in seasons if s not in SEASONS]
    if not seasons or unknown or len(set(seasons)) != len(seasons):
        raise ValueError(f"seasons={list(seasons)}: expected one or more distinct names out of "
                         f"{', '.join(SEASONS)} (or None for all)")
    return [SEASONS.index(s) for s in seasons]


def _data_dir(root: str | Path) -> Path:
    """The folder of modality folders: root itself, or root/data for the dataset's top folder."""
    root = Path(root)
    if not any((root / m).is_dir() for m in MODALITIES) and (root / "data").is_dir():
        return root / "data"
    return root


def find_ids(root: str | Path, modalities: Sequence[str] = tuple(MODALITIES)
             ) -> tuple[list[str], dict[str, dict[str, Path]]]:
    """Finds the locations that have a datacube in every requested modality.

    Args:
      root: the dataset folder (holding `data/`) or its `data/` folder, which
        holds one folder per modality with `part-*/<id>.zarr.zip` files (files
        directly in the modality folder are found too).
      modalities: names out of `MODALITIES`.

    Returns:
      (ids, paths): the ids, sorted, and paths[modality][id] -> file. Ids that
      lack a file in some modality are left out, with a logged warning.

    Raises:
      InputError: a modality folder is missing or empty, an id has two files in
        one modality, or no id is in every modality.
    """
    modalities = _check_modalities(modalities)
    data = _data_dir(root)
    paths: dict[str, dict[str, Path]] = {}
    for modality in modalities:
        folder = data / modality
        if not folder.is_dir():
            raise InputError(f"{folder}: modality folder not found; expect <dataset>/data/<modality>/"
                             f"part-*/<id>{SUFFIX} with modality one of {', '.join(MODALITIES)}")
        found: dict[str, Path] = {}
        for path in sorted([*folder.glob(f"part-*/*{SUFFIX}"), *folder.glob(f"*{SUFFIX}")]):
            cube_id = path.name[:-len(SUFFIX)]
            if cube_id in found:
                raise InputError(f"{path}: id {cube_id!r} also has the file {found[cube_id]}; "
                                 f"keep one file per id and modality")
            found[cube_id] = path
        if not found:
            raise InputError(f"{folder}: no <id>{SUFFIX} files in part-*/ sub-folders; "
                             f"expect the SSL4EO-S12-downstream layout data/{modality}/part-NNNNNN/<id>{SUFFIX}")
        paths[modality] = found
    every = set.intersection(*(set(found) for found in paths.values()))
    partial = set.union(*(set(found) for found in paths.values())) - every
    if partial:
        log.warning("%d ids lack a file in one of the modalities %s and are skipped (e.g. %s)",
                    len(partial), ", ".join(modalities), sorted(partial)[0])
    if not every:
        raise InputError(f"{data}: no id has a file in every modality ({', '.join(modalities)}); "
                         f"check that the folders hold the same locations")
    ids = sorted(every)
    return ids, {m: {i: found[i] for i in ids} for m, found in paths.items()}


def _bands_array(path: Path, group: zarr.Group, modality: str | None) -> zarr.Array:
    """The validated `bands` array of an open datacube."""
    array = group.get(VARIABLE)
    if not isinstance(array, zarr.Array):
        raise InputError(f"{path}: no data variable '{VARIABLE}' (found {sorted(group.keys())}); "
                         f"expect an SSL4EO-S12-downstream datacube, whose pixels are in '{VARIABLE}'")
    dims = (array.metadata.dimension_names if array.metadata.zarr_format == 3
            else array.attrs.get("_ARRAY_DIMENSIONS"))
    if dims is None or tuple(dims) != DIMS:
        raise InputError(f"{path}: '{VARIABLE}' has dims {None if dims is None else tuple(dims)}; "
                         f"expected {DIMS} as written by xarray for SSL4EO-S12-downstream")
    n_sample, n_time, n_band = array.shape[:3]
    if n_sample != 1 or n_time != len(SEASONS):
        raise InputError(f"{path}: '{VARIABLE}' has shape {array.shape}; expected one sample and "
                         f"{len(SEASONS)} seasons, (1, {len(SEASONS)}, band, y, x)")
    if array.dtype.kind not in "iuf":
        raise InputError(f"{path}: '{VARIABLE}' has dtype {array.dtype}; expected integer or float pixels")
    if modality is not None:
        expected = list(MODALITIES[modality])
        names = group.get("band")
        names = None if names is None else [str(name) for name in names[:]]
        if n_band != len(expected) or (names is not None and names != expected):
            raise InputError(f"{path}: has bands {names or n_band}; {modality} has {expected}; "
                             f"check that the file is in the right modality folder")
    return array


@contextlib.contextmanager
def _open_bands(path: Path, modality: str | None) -> Iterator[zarr.Array]:
    """The validated `bands` array of a datacube file, open while in the block."""
    # Checked first because a ZipStore that failed to open cannot be closed.
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: missing or not a zip archive; expect <id>{SUFFIX}, "
                         f"a zarr store zipped as in SSL4EO-S12-downstream")
    store = ZipStore(path, mode="r")
    try:
        try:
            group = zarr.open_group(store, mode="r")
        except (OSError, zipfile.BadZipFile, zarr.errors.BaseZarrError, ValueError, KeyError) as e:
            raise InputError(f"{path}: cannot be opened as a zipped zarr ({first_line(e)}); expect an "
                             f"xarray Dataset saved with to_zarr and zipped, as in SSL4EO-S12-downstream") from None
        yield _bands_array(path, group, modality)
    finally:
        store.close()


def read_cube(path: str | Path, seasons: Sequence[str] | None = None,
              modality: str | None = None) -> np.ndarray:
    """Reads the pixels of one datacube file.

    Args:
      path: a `<id>.zarr.zip` file.
      seasons: season names out of `SEASONS`, in the order wanted; None for all four.
      modality: if given, the file's bands (count and, when the file has a
        `band` coordinate, names) must be those of this modality.

    Returns:
      (time, band, y, x) array in the file's dtype, time in the order of `seasons`.

    Raises:
      InputError: the file is not a zipped zarr, has no `bands` variable, or
        its dims, shape or bands are not those of the layout.
    """
    times = season_indices(seasons)
    with _open_bands(Path(path), modality) as array:
        if times == list(range(len(SEASONS))):
            return array[0]
        # One basic read per season: zarr's orthogonal selection of a few time
        # indices reads and decodes every chunk, several times slower.
        return np.stack([array[0, t] for t in times])


def write_cube(path: str | Path, pixels: np.ndarray, band_names: Sequence[str], sample: str) -> None:
    """Writes one datacube in the SSL4EO-S12-downstream format (the inverse of `read_cube`).

    What xarray's `Dataset.to_zarr` writes for the dataset's files, zipped: zarr
    format 2, consolidated metadata, the data variable `bands` (sample=1, time,
    band, y, x) chunked one season per chunk, blosc-compressed, and the
    coordinates `sample`, `time` (0..3), `band` (names), `y`, `x` (pixel
    indices), each with its `_ARRAY_DIMENSIONS`.

    Args:
      path: the `<id>.zarr.zip` file to write (overwritten).
      pixels: (time, band, y, x) array, stored in its own dtype.
      band_names: one name per band.
      sample: the location id, the value of the `sample` coordinate.
    """
    n_time, n_band, ny, nx = pixels.shape
    if len(band_names) != n_band:
        raise ValueError(f"{len(band_names)} band names for {n_band} bands")
    entries: dict = {}
    group = zarr.create_group(MemoryStore(entries), zarr_format=2)
    group.create_array(VARIABLE, data=pixels[None], chunks=(1, 1, n_band, ny, nx),
                       attributes={"_ARRAY_DIMENSIONS": list(DIMS)})
    coords = {"sample": np.array([sample]), "time": np.arange(n_time, dtype=np.int64),
              "band": np.array(band_names), "y": np.arange(ny, dtype=np.int64),
              "x": np.arange(nx, dtype=np.int64)}
    for name, values in coords.items():
        group.create_array(name, data=values, attributes={"_ARRAY_DIMENSIONS": [name]})
    zarr.consolidate_metadata(MemoryStore(entries))
    # Chunks are compressed already, so the zip stores them as they are; a fixed
    # timestamp makes the bytes depend on the content only.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(entries):
            zf.writestr(zipfile.ZipInfo(key, date_time=(1980, 1, 1, 0, 0, 0)), entries[key].to_bytes())


class CubeReader:
    """Reads batches of datacubes: configuration plus the files found under root.

    Attributes:
      ids: the locations with a file in every modality, sorted.
      paths: paths[modality][id] -> file.
      channels: (modality, band name) of each channel of a concatenated batch.
      shape: (time, y, x) of every batch item, from the first location's files.
    """

    def __init__(self, root: str | Path, modalities: Sequence[str] = tuple(MODALITIES),
                 seasons: Sequence[str] | None = None, concat: bool = True, s2_shift: bool = True,
                 threads: int = 4, dtype: np.dtype | type = np.float32):
        """Finds the files; reads nothing but one location's metadata.

        Args:
          root: dataset folder or its `data/` folder (see `find_ids`).
          modalities: names out of `MODALITIES`, in the channel order wanted.
          seasons: names out of `SEASONS`, in the order wanted; None for all four.
          concat: one array with the modalities' bands concatenated (True) or
            a dict of one array per modality (False).
          s2_shift: add 1000 to S2 values (SSL4EO-S12 v1.1's value range).
          threads: files read at once.
          dtype: floating dtype of the returned arrays.
        """
        self.modalities = _check_modalities(modalities)
        self.seasons = tuple(SEASONS[t] for t in season_indices(seasons))
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads={threads!r}: expected a positive integer")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"dtype={self.dtype}: expected a floating dtype (pixels are shifted and cast)")
        self.concat, self.s2_shift, self.threads = bool(concat), bool(s2_shift), threads
        self.ids, self.paths = find_ids(root, self.modalities)
        self.channels = [(m, band) for m in self.modalities for band in MODALITIES[m]]
        first = self.paths[self.modalities[0]][self.ids[0]]
        with _open_bands(first, self.modalities[0]) as array:
            ny, nx = array.shape[3:]
        self.shape = (len(self.seasons), ny, nx)

    def _read_into(self, path: Path, modality: str, target: np.ndarray) -> None:
        """Reads one file into target: (time, band, y, x) view of a batch array."""
        pixels = read_cube(path, self.seasons, modality)
        if pixels.shape[2:] != self.shape[1:]:
            raise InputError(f"{path}: is {pixels.shape[2]}x{pixels.shape[3]} pixels where "
                             f"{self.paths[self.modalities[0]][self.ids[0]]} is "
                             f"{self.shape[1]}x{self.shape[2]}; a batch needs one image size")
        target[...] = pixels
        if self.s2_shift and modality in _SHIFTED:
            target += S2_SHIFT

    def _start(self, pool: ThreadPoolExecutor, ids: list[str]) -> tuple[list[str], _Batch, list[Future]]:
        """Allocates one batch and queues the reads of its files."""
        n, (n_time, ny, nx) = len(ids), self.shape
        if self.concat:
            out = np.empty((n, n_time, len(self.channels), ny, nx), self.dtype)
            offsets = np.cumsum([0, *(len(MODALITIES[m]) for m in self.modalities)])
            targets = {m: out[:, :, offsets[k]:offsets[k + 1]] for k, m in enumerate(self.modalities)}
        else:
            out = {m: np.empty((n, n_time, len(MODALITIES[m]), ny, nx), self.dtype) for m in self.modalities}
            targets = out
        futures = [pool.submit(self._read_into, self.paths[m][cube_id], m, targets[m][i])
                   for i, cube_id in enumerate(ids) for m in self.modalities]
        return ids, out, futures

    def batches(self, batch_size: int, ids: Sequence[str] | None = None, prefetch: bool = True,
                to_jax: bool = False) -> Iterator[tuple[list[str], _Batch]]:
        """Reads the locations in batches, in the order of `ids`.

        Args:
          batch_size: locations per batch; the last batch may be smaller.
          ids: locations to read (default: all of `self.ids`).
          prefetch: read the next batch while the caller works on this one
            (two batches in memory instead of one).
          to_jax: put each batch on the default JAX device (`jax.device_put`)
            before yielding it.

        Returns:
          An iterator of (ids, x): the batch's ids and, with concat,
          x: (batch, time, channels, y, x) in `self.dtype`; otherwise
          {modality: (batch, time, band, y, x)}. Bad arguments raise here, bad
          files while iterating (InputError naming the file).
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
        ids = list(self.ids if ids is None else ids)
        missing = [i for i in ids if i not in self.paths[self.modalities[0]]]
        if missing:
            raise ValueError(f"{len(missing)} requested ids have no file in every modality "
                             f"({', '.join(self.modalities)}), e.g. {missing[0]!r}")
        # Checked above, read below: a generator would only check on the first next().
        return self._batches([ids[i:i + batch_size] for i in range(0, len(ids), batch_size)],
                             prefetch, to_jax)

    def _batches(self, chunks: list[list[str]], prefetch: bool, to_jax: bool
                 ) -> Iterator[tuple[list[str], _Batch]]:
        """The reading loop of `batches`: the batch handed out plus at most one in flight."""
        if to_jax:
            import jax
        pending = iter(chunks)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="neuco-cubes") as pool:
            queued = collections.deque(self._start(pool, chunk)
                                       for chunk in itertools.islice(pending, 1 + bool(prefetch)))
            try:
                while queued:
                    batch_ids, out, futures = queued.popleft()
                    for future in futures:
                        future.result()
                    yield batch_ids, (jax.device_put(out) if to_jax else out)
                    chunk = next(pending, None)
                    if chunk is not None:
                        queued.append(self._start(pool, chunk))
            finally:
                # A caller that stops early leaves queued reads: drop them.
                for _, _, futures in queued:
                    for future in futures:
                        future.cancel()
