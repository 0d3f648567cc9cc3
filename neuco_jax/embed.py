"""`neuco-jax embed`: stream datacube batches through a baseline encoder into a submission file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuco_jax import encoders
from neuco_jax.datacube import CubeReader
from neuco_jax.errors import InputError
from neuco_jax.progress import Progress
from neuco_jax.stores import format_of, write_embeddings


def embed(data_root, output, *, encoder: str = "mean", dim: int = 1024, modalities=None, seasons=None,
          batch_size: int = 16, threads: int = 4, pca_sample: int = 256, seed: int = 0,
          progress: Progress | None = None) -> Path:
    """Embed every location of an SSL4EO-S12-downstream-style datacube folder and write a submission.

    Args:
      data_root: folder holding `<modality>/part-*/<id>.zarr.zip`.
      output: submission path; its extension picks the format (.csv, .parquet, .npz, .npy, .zarr).
      encoder: "mean", "random" or "pca" (see neuco_jax.encoders).
      dim: embedding size.
      modalities, seasons: which cubes and seasons to read (default: all).
      batch_size, threads: locations per batch and reader threads; memory stays at a few batches.
      pca_sample: locations the PCA is fitted on.
      seed: for `random` and the PCA sample.
      progress: where progress is shown (default: nowhere).

    Returns:
      The written path.
    """
    format_of(Path(output))  # an unknown extension fails before any cube is read
    if encoder not in encoders.ENCODERS:
        raise InputError(f"unknown encoder {encoder!r}; choose one of {', '.join(encoders.ENCODERS)}")
    if dim < 1 or batch_size < 1:
        raise InputError(f"--embedding_dim ({dim}) and --batch_size ({batch_size}) must be positive")
    kwargs = {} if modalities is None else {"modalities": tuple(modalities)}
    reader = CubeReader(data_root, seasons=seasons, threads=threads, **kwargs)
    ids = list(reader.ids)
    if not ids:
        raise InputError(f"{data_root}: no location has a cube for every requested modality; "
                         f"expect <modality>/part-*/<id>.zarr.zip")
    x = np.zeros((len(ids), dim), np.float32)
    row = {i: r for r, i in enumerate(ids)}
    if encoder == "random":
        x[:] = encoders.random_embedding(ids, dim, seed)
    else:
        project = lambda cubes: encoders.mean_std_embedding(cubes, dim)  # noqa: E731
        with (progress or Progress(quiet=True)) as bar:
            if encoder == "pca":
                rng = np.random.default_rng(seed)
                sample = sorted(rng.choice(ids, size=min(pca_sample, len(ids)), replace=False))
                features = []
                with bar.stage("pca fit", -(-len(sample) // batch_size)) as step:
                    for _, cubes in reader.batches(batch_size, ids=sample):
                        features.append(np.asarray(encoders.pooled(cubes)))
                        step()
                pca = encoders.fit_pca(np.concatenate(features), dim)
                project = lambda cubes: encoders.pca_embedding(cubes, pca, dim)  # noqa: E731
            with bar.stage(f"embed {encoder}", -(-len(ids) // batch_size)) as step:
                for batch_ids, cubes in reader.batches(batch_size):
                    x[[row[i] for i in batch_ids]] = np.asarray(project(cubes))
                    step()
    write_embeddings(Path(output), np.asarray(ids, dtype=object), x)
    return Path(output)
