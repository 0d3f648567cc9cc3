"""Baseline encoders: datacube batches -> fixed-size embeddings, as jitted JAX.

A cube batch is (batch, time, band, y, x) float32 (see neuco_jax.datacube);
every encoder maps it to (batch, dim) float32.

- mean:   per season and band, the spatial mean and standard deviation
          (2 * time * band features), fitted into `dim` (zero-padded, or
          average-pooled when there are more features than `dim`).
- random: Gaussian noise seeded by each id: a baseline that carries no information.
- pca:    cubes average-pooled to a coarse grid, centred, projected on the top
          principal components of a sample (fitted once with an SVD).
"""

from __future__ import annotations

import dataclasses
import zlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

ENCODERS = ("mean", "random", "pca")
PCA_GRID = 4  # pca sees each band at PCA_GRID x PCA_GRID cells


def fit_to_dim(features: jax.Array, dim: int) -> jax.Array:
    """(batch, f) -> (batch, dim): zero-pad when f <= dim, else average f into dim equal bins."""
    f = features.shape[1]
    if f <= dim:
        return jnp.pad(features, ((0, 0), (0, dim - f)))
    bins = (jnp.arange(f) * dim) // f  # feature j goes to bin floor(j * dim / f)
    sums = jax.ops.segment_sum(features.T, bins, num_segments=dim).T
    counts = jnp.bincount(bins, length=dim)
    return sums / counts


@partial(jax.jit, static_argnames="dim")
def mean_std_embedding(cubes: jax.Array, dim: int) -> jax.Array:
    """cubes: (batch, time, band, y, x) -> (batch, dim) of spatial means then standard deviations."""
    flat = cubes.reshape(cubes.shape[:3] + (-1,))
    features = jnp.concatenate([flat.mean(-1), flat.std(-1)], axis=-1)  # (batch, time, 2 * band)
    return fit_to_dim(features.reshape(cubes.shape[0], -1), dim)


def random_embedding(ids, dim: int, seed: int = 0) -> np.ndarray:
    """(len(ids), dim) standard normal noise; each row depends only on (seed, id)."""
    return np.stack([np.random.default_rng([seed, zlib.crc32(str(i).encode())]).standard_normal(dim)
                     for i in ids]).astype(np.float32)


@partial(jax.jit, static_argnames="grid")
def pooled(cubes: jax.Array, grid: int = PCA_GRID) -> jax.Array:
    """(batch, time, band, y, x) -> (batch, time * band * grid * grid) cell means (y, x cropped to a multiple)."""
    b, t, c, h, w = cubes.shape
    cubes = cubes[..., : h // grid * grid, : w // grid * grid]
    cells = cubes.reshape(b, t, c, grid, h // grid, grid, w // grid).mean(axis=(4, 6))
    return cells.reshape(b, -1)


@dataclasses.dataclass(frozen=True)
class PCA:
    """A fitted PCA: mean (f,), components (k, f) with k <= dim, and the pooling grid."""

    mean: np.ndarray
    components: np.ndarray
    grid: int = PCA_GRID


def fit_pca(features: np.ndarray, dim: int, grid: int = PCA_GRID) -> PCA:
    """Principal components of a sample's pooled cubes. features: (n, f) from `pooled(cubes, grid)`."""
    features = jnp.asarray(features)
    mean = features.mean(0)
    # Rows of vt are the principal directions, by decreasing singular value.
    _, _, vt = jnp.linalg.svd(features - mean, full_matrices=False)
    return PCA(mean=np.asarray(mean), components=np.asarray(vt[:dim]), grid=grid)


@partial(jax.jit, static_argnames=("dim", "grid"))
def _pca_project(cubes, mean, components, dim, grid):
    return fit_to_dim((pooled(cubes, grid) - mean) @ components.T, dim)


def pca_embedding(cubes: jax.Array, pca: PCA, dim: int) -> jax.Array:
    """(batch, time, band, y, x) -> (batch, dim): projections on the fitted components, zero-padded."""
    return _pca_project(cubes, pca.mean, pca.components, dim, pca.grid)
