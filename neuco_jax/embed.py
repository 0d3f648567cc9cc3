"""`neuco-jax embed`: stream datacube batches through an encoder into a submission file.

The encoder is a baseline of neuco_jax.encoders ("mean", "random", "pca") or a
user's callable, given as an object or as a `package.module:callable` spec.
A user encoder gets each batch as `CubeReader.batches` reads it:

  concatenated (default):  x: (batch, time, channels, y, x) float32, channels the
                           bands of each modality in turn (datacube.MODALITIES
                           order), modalities in the order asked for;
  per_modality=True:       {modality: (batch, time, band, y, x) float32}, keys
                           sorted by name (the order jax.jit gives a dict);

time: the seasons asked for, in that order; values as read, S2 digital numbers
plus 1000 (the SSL4EO-S12 v1.1 range, see neuco_jax.datacube), S1 in dB. The
last batch may be smaller. The callable returns (batch, dim) numbers, numpy or
JAX, one row per location in the batch's order.

Before any pixel is read, the callable is traced with `jax.jit` on abstract
arrays of the first batch's shapes. If that works, it runs jitted (traced again
only for the smaller last batch), so it must be pure: numpy random numbers or
other side effects would be traced once. If tracing raises (numpy code that
calls np.asarray on its input, a torch wrapper), it is called as is on the numpy
batch; calling np.asarray on the input is the way to ask for that.

The first batch fixes dim (an explicit dim must equal it). Every batch's rows
are checked (2-D, one row per location, the same dim, finite numbers) and any
problem is an InputError naming the callable and the batch; the file is only
written once every batch has passed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from neuco_jax import encoders
from neuco_jax.datacube import MODALITIES, CubeReader
from neuco_jax.errors import InputError, first_line
from neuco_jax.progress import Progress
from neuco_jax.stores import format_of, write_embeddings

log = logging.getLogger(__name__)

DEFAULT_DIM = 1024  # the baselines' embedding size when none is given
SPEC_FORMAT = "package.module:callable"


def embed(data_root, output, *, encoder: str | Callable = "mean", dim: int | None = None,
          per_modality: bool = False, modalities=None, seasons=None, batch_size: int = 16, threads: int = 4,
          pca_sample: int = 256, seed: int = 0, progress: Progress | None = None) -> Path:
    """Embed every location of an SSL4EO-S12-downstream-style datacube folder and write a submission.

    Args:
      data_root: folder holding `<modality>/part-*/<id>.zarr.zip`.
      output: submission path; its extension picks the format (.csv, .parquet, .npz, .npy, .zarr).
      encoder: "mean", "random" or "pca" (see neuco_jax.encoders), or a user encoder (see the
        module docstring for what it gets and returns): a callable, or its spec
        "package.module:callable", imported from the current folder, PYTHONPATH or an installed
        package (`module:Class.method` reaches an attribute of an attribute).
      dim: embedding size. Baselines: default 1024. User encoders: the callable's output width,
        which dim, if given, must equal.
      per_modality: hand a user encoder one array per modality instead of the concatenated cube.
      modalities, seasons: which cubes and seasons to read, in that order (default: all).
      batch_size, threads: locations per batch and reader threads; memory stays at a few batches.
      pca_sample: locations the PCA is fitted on.
      seed: for `random` and the PCA sample.
      progress: where progress is shown (default: nowhere).

    Returns:
      The written path. On any error nothing is written and an existing file is left as it was.

    Raises:
      InputError: bad arguments or cubes, a spec that does not import to a callable, or a user
        encoder's result that is not (batch, dim) finite numbers (naming the batch and first id).
    """
    format_of(Path(output))  # an unknown extension fails before any cube is read
    name, user = _resolve(encoder)
    if (dim is not None and dim < 1) or batch_size < 1:
        raise InputError(f"--embedding_dim ({dim}) and --batch_size ({batch_size}) must be positive")
    if per_modality and user is None:
        raise InputError(f"--per_modality is for {SPEC_FORMAT} encoders; the baseline {name!r} "
                         f"reads the concatenated cube, drop --per_modality")
    kwargs = {} if modalities is None else {"modalities": tuple(modalities)}
    reader = CubeReader(data_root, seasons=seasons, threads=threads, concat=not per_modality, **kwargs)
    ids = list(reader.ids)
    if not ids:
        raise InputError(f"{data_root}: no location has a cube for every requested modality; "
                         f"expect <modality>/part-*/<id>.zarr.zip")
    with (progress or Progress(quiet=True)) as bar:
        if user is not None:
            x = _stream(reader, batch_size, _user_projection(user, name, reader, batch_size, dim), bar, name)
        elif encoder == "random":
            x = encoders.random_embedding(ids, dim or DEFAULT_DIM, seed)
        else:
            x = _stream(reader, batch_size, _baseline_projection(encoder, reader, dim or DEFAULT_DIM,
                                                                 batch_size, pca_sample, seed, bar), bar, encoder)
    write_embeddings(Path(output), np.asarray(ids, dtype=object), x)
    return Path(output)


def load_encoder(spec: str) -> Callable:
    """The callable a "package.module:callable" spec names, or an InputError saying how to fix the spec."""
    module_name, colon, attribute = spec.partition(":")
    if not colon:
        raise InputError(f"unknown encoder {spec!r}; choose one of {', '.join(encoders.ENCODERS)} "
                         f"or give your own as {SPEC_FORMAT}")
    if not module_name or not attribute:
        raise InputError(f"encoder {spec!r}: expected {SPEC_FORMAT}, e.g. my_models.encoders:embed")
    try:
        with _cwd_on_path():
            target = importlib.import_module(module_name)
    except Exception as e:  # the module's own code may raise anything
        raise InputError(f"encoder {spec!r}: cannot import {module_name!r} ({type(e).__name__}: "
                         f"{first_line(e)}); put it in the current folder or on PYTHONPATH, "
                         f"or install its package") from e
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise InputError(f"encoder {spec!r}: {module_name!r} has no attribute {attribute!r}; "
                             f"check the name after the colon")
        target = getattr(target, part)
    if not callable(target):
        raise InputError(f"encoder {spec!r}: is of type {type(target).__name__}, not a callable; "
                         f"name a function or an object with __call__")
    return target


def _resolve(encoder: str | Callable) -> tuple[str, Callable | None]:
    """(name used in messages, the user callable or None for a baseline)."""
    if callable(encoder):
        name = getattr(encoder, "__qualname__", type(encoder).__qualname__)
        return f"{getattr(encoder, '__module__', None) or type(encoder).__module__}:{name}", encoder
    if encoder in encoders.ENCODERS:
        return encoder, None
    return encoder, load_encoder(encoder)


@contextlib.contextmanager
def _cwd_on_path():
    """The current folder on sys.path while in the block, as `python -m` has it (a console script has not)."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            sys.path.remove(cwd)


def _stream(reader: CubeReader, batch_size: int, project: Callable, bar: Progress, label: str) -> np.ndarray:
    """x: (len(reader.ids), dim) float32, from project(batch_index, batch_ids, cubes) -> (batch, dim)."""
    x, start = None, 0
    with bar.stage(f"embed {label}", -(-len(reader.ids) // batch_size)) as step:
        for k, (batch_ids, cubes) in enumerate(reader.batches(batch_size)):
            rows = project(k, batch_ids, cubes)
            if x is None:
                x = np.empty((len(reader.ids), rows.shape[1]), np.float32)
            x[start:start + len(batch_ids)] = rows  # batches come in the order of reader.ids
            start += len(batch_ids)
            step()
    return x


def _baseline_projection(encoder: str, reader: CubeReader, dim: int, batch_size: int, pca_sample: int,
                         seed: int, bar: Progress) -> Callable:
    """project(k, batch_ids, cubes) of the "mean" or "pca" baseline; "pca" is fitted here on a sample."""
    if encoder == "mean":
        return lambda k, batch_ids, cubes: np.asarray(encoders.mean_std_embedding(cubes, dim))
    rng = np.random.default_rng(seed)
    sample = sorted(rng.choice(reader.ids, size=min(pca_sample, len(reader.ids)), replace=False))
    features = []
    with bar.stage("pca fit", -(-len(sample) // batch_size)) as step:
        for _, cubes in reader.batches(batch_size, ids=sample):
            features.append(np.asarray(encoders.pooled(cubes)))
            step()
    pca = encoders.fit_pca(np.concatenate(features), dim)
    return lambda k, batch_ids, cubes: np.asarray(encoders.pca_embedding(cubes, pca, dim))


def _batch_shapes(reader: CubeReader, n: int):
    """Abstract arrays shaped like a batch of n locations, as `reader.batches` yields it."""
    n_time, ny, nx = reader.shape
    if reader.concat:
        return jax.ShapeDtypeStruct((n, n_time, len(reader.channels), ny, nx), reader.dtype)
    return {m: jax.ShapeDtypeStruct((n, n_time, len(MODALITIES[m]), ny, nx), reader.dtype)
            for m in reader.modalities}


def _user_projection(user: Callable, name: str, reader: CubeReader, batch_size: int,
                     dim: int | None) -> Callable:
    """project(k, batch_ids, cubes) of a user encoder: jitted when it traces, its rows checked."""
    try:
        call = jax.jit(user)
        # Abstract arrays: nothing is computed, and the jitted call on the first
        # batch's shapes reuses this trace.
        call.trace(_batch_shapes(reader, min(batch_size, len(reader.ids))))
        log.info("encoder %r: traced by jax.jit; it runs jitted", name)
    except Exception as e:  # whatever non-JAX code raises on a tracer
        log.info("encoder %r: not traceable by jax.jit (%s: %s); it is called as is",
                 name, type(e).__name__, first_line(e))
        call = user
    widths = {} if dim is None else {"--embedding_dim": dim}  # where the expected dim came from

    def project(k: int, batch_ids: list[str], cubes) -> np.ndarray:
        if isinstance(cubes, dict):  # the key order jax.jit gives a dict, whichever way it is called
            cubes = dict(sorted(cubes.items()))
        where = f"encoder {name!r}: batch {k + 1}"
        try:
            out = call(cubes)
        except Exception as e:  # the user's own error: its traceback helps more than a one-liner
            e.add_note(f"in {where} (first id {batch_ids[0]!r})")
            raise
        rows = _checked_rows(out, where, batch_ids, widths)
        if not widths:
            widths["batch 1"] = rows.shape[1]
        return rows

    return project


def _checked_rows(out, where: str, batch_ids: list[str], widths: dict[str, int]) -> np.ndarray:
    """A user encoder's result for one batch as (batch, dim) float32, or an InputError saying what is wrong.

    widths: {where the expected dim came from: dim}; empty for the first batch without --embedding_dim.
    """
    n = len(batch_ids)
    try:
        rows = np.asarray(out)
    except Exception as e:  # e.g. a torch tensor that requires grad or lives on a GPU
        raise InputError(f"{where}: returned a {type(out).__name__} numpy cannot convert ({first_line(e)}); "
                         f"return a numpy or JAX array (from torch: .detach().cpu().numpy())") from None
    numeric = rows.dtype == np.bool_ or any(jnp.issubdtype(rows.dtype, t) for t in (jnp.integer, jnp.floating))
    if not numeric:  # jnp.issubdtype knows bfloat16, which numpy files under kind "V"
        raise InputError(f"{where}: returned {type(out).__name__} of dtype {rows.dtype}, not numbers; "
                         f"return a (batch, dim) numpy or JAX array of numbers")
    if rows.ndim != 2 or rows.shape[0] != n or rows.shape[1] < 1:
        raise InputError(f"{where}: returned shape {rows.shape} for {n} locations; return (batch, dim) "
                         f"with one row per location, in the order given, and dim >= 1")
    for source, dim in widths.items():
        if rows.shape[1] != dim:
            fix = (f"omit --embedding_dim (the callable's width is used) or set it to {rows.shape[1]}"
                   if source == "--embedding_dim" else "return the same dim for every batch")
            raise InputError(f"{where}: returned {rows.shape[1]} dimensions where {source} gave {dim}; {fix}")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, reported below
        rows = rows.astype(np.float32)
    finite = np.isfinite(rows)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise InputError(f"{where}: id {batch_ids[r]!r} has {rows[r, c]} at dimension {c} "
                         f"({(~finite.all(1)).sum()} of {n} rows not finite as float32); return finite values")
    return rows
