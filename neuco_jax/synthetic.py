"""A synthetic NeuCo-Bench benchmark whose correct method ranking is known.

The files have exactly the formats the reference reads (labels folder of
`<task>__<type>.csv`, submission CSVs of `id,0..D-1`), with the quirks of real
data: missing labels, `.zarr.zip` / `.zarr` id suffixes, shuffled rows and
ids that appear in no label file.

Ground-truth model. Every location has a latent state z of shape
(n_locations, LATENT_DIM): six correlated "surface properties" (vegetation,
moisture, temperature, cloudiness, urban, relief) followed by independent
generic factors. A real task's label is

    s = standardise(z . w_task),   label = transform_task(s + noise_task * eps),

where w_task loads mainly on a few named properties plus small dense loadings
on every factor (so that no factor is irrelevant), and transform_task is
linear or a mild nonlinearity that puts the label in a plausible unit
(biomass in t/ha, heat island in degrees C, cover fractions in [0, 1]).
`random_reg` / `random_cls` ignore z.

Method i (method_a is i = 0) sees only its first `kept_dims_i` latent factors,
each blurred by independent noise of relative size `latent_noise_i`:

    u = standardise(z[:, :kept_dims_i] + latent_noise_i * eps)      (n, kept)
    emb = offset + scale * tanh(0.5 * u @ mix_i) + embedding_noise_i * eps   (n, dim)

with a random mixing `mix_i` of shape (kept, dim) and random per-dimension
offset/scale (real embeddings are neither centred nor isotropic). The offsets
(std `_OFFSET_STD`) exceed each dimension's spread across locations (about
0.5), as in pooled network features whose dimensions sit around their own
means; so the one global standardisation leaves each dimension a spread of
about 0.25, not 1 (see `_OFFSET_STD` for why this matters to the probes). Latent noise
and dropped factors destroy information that no probe can recover (latent
noise alone scales the attainable R^2 of a linear task by about
1 / (1 + latent_noise_i^2)), and both grow with i, so the expected quality is
strictly decreasing in i on every real task. `random_baseline` is pure noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import string
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from neuco_jax.files import atomic_path, remove

TASKS: tuple[tuple[str, str], ...] = (
    ("biomass_mean", "regression"),
    ("biomass_std", "regression"),
    ("crops", "regression"),
    ("landcover_agriculture", "regression"),
    ("landcover_forest", "regression"),
    ("clouds_reg", "regression"),
    ("heatisland_mean", "regression"),
    ("heatisland_std", "regression"),
    ("nodata", "regression"),
    ("random_reg", "regression"),
    ("random_cls", "classification"),
)

LATENT_DIM = 24
FACTORS = ("vegetation", "moisture", "temperature", "cloudiness", "urban", "relief")
# Correlations between the named factors, e.g. vegetated places are wetter,
# cooler and less urban; the generic factors are independent of everything.
_FACTOR_CORRELATIONS = (
    ("vegetation", "moisture", 0.5),
    ("vegetation", "temperature", -0.3),
    ("vegetation", "urban", -0.5),
    ("temperature", "urban", 0.4),
    ("cloudiness", "moisture", 0.3),
    ("relief", "temperature", -0.3),
)
# Size of the dense loadings every task has on every factor.
_DENSE_LOADING = 0.2
# Std of the per-dimension offsets of every method's embeddings. An untrained linear probe
# (torch's init, w ~ U(+-1/sqrt(D))) outputs values whose spread across locations is
# sqrt(mean per-dimension variance / 3) in standardised units. With nearly centred dimensions
# that is up to 0.58, about three times the spread of min-max-scaled labels, which 10 epochs of
# AdamW at lr 1e-3 do not undo on a thousand ids (offsets of std 0.3: method_a's mean R^2 -0.4
# at D=1024); with offsets of std 2 it is about 0.14, and the probes reach R^2 0.6-0.8 from a
# thousand ids up (ridge, which fits its own intercept, is unaffected).
_OFFSET_STD = 2.0
_MISSING_LABEL_FRACTION = 0.015
_ZARR_ZIP_FRACTION = 0.05
_ZARR_FRACTION = 0.005
RANDOM_BASELINE = "random_baseline"

# Independent random streams, so that e.g. adding a method leaves the others'
# files unchanged: np.random.default_rng((seed, stream)).
_STREAM_IDS, _STREAM_LATENT, _STREAM_TASKS, _STREAM_BASELINE = 0, 1, 2, 3
_STREAM_FIRST_METHOD = 100


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


@dataclass(frozen=True)
class _TaskSpec:
    """How one task's label depends on the latent state.

    `group`: tasks of one group are measured at the same locations (biomass
    mean and std come from the same plots). `loadings` maps named factors to
    weights; `noise` is the std of the task noise added to the standardised
    score; `transform` maps the noisy score to the label's unit. A task with
    no loadings gets a standard normal score independent of z.
    """

    group: str
    loadings: dict[str, float]
    noise: float
    transform: Callable[[np.ndarray], np.ndarray]


_TASK_SPECS: dict[str, _TaskSpec] = {
    # Above-ground biomass in t/ha: log-normal across plots.
    "biomass_mean": _TaskSpec(
        "biomass", {"vegetation": 1.0, "moisture": 0.5, "relief": 0.3}, 0.2,
        lambda s: 60.0 * np.exp(0.4 * s)),
    "biomass_std": _TaskSpec(
        "biomass", {"vegetation": 0.6, "relief": 0.6, "urban": 0.3}, 0.25,
        lambda s: 5.0 + 8.0 * _softplus(s)),
    # Cover fractions in [0, 1].
    "crops": _TaskSpec(
        "crops", {"vegetation": 0.5, "moisture": 0.3, "urban": -0.4, "relief": -0.5}, 0.2,
        lambda s: _sigmoid(1.5 * s - 0.5)),
    "landcover_agriculture": _TaskSpec(
        "landcover", {"vegetation": 0.4, "moisture": 0.3, "urban": -0.3, "relief": -0.6}, 0.2,
        lambda s: _sigmoid(1.2 * s)),
    "landcover_forest": _TaskSpec(
        "landcover", {"vegetation": 1.0, "relief": 0.5, "urban": -0.5}, 0.2,
        lambda s: _sigmoid(1.2 * s - 0.3)),
    "clouds_reg": _TaskSpec(
        "clouds", {"cloudiness": 1.0, "moisture": 0.4}, 0.2,
        lambda s: _sigmoid(1.5 * s)),
    # Land-surface temperature excess over the surroundings, degrees C.
    "heatisland_mean": _TaskSpec(
        "heatisland", {"urban": 1.0, "temperature": 0.7, "vegetation": -0.4}, 0.2,
        lambda s: 1.5 + 2.0 * s),
    "heatisland_std": _TaskSpec(
        "heatisland", {"urban": 0.8, "relief": 0.4, "temperature": 0.3}, 0.25,
        lambda s: 0.3 + 0.8 * _softplus(s)),
    # Fraction of no-data pixels: mostly small, clouds and terrain shadow.
    "nodata": _TaskSpec(
        "nodata", {"cloudiness": 0.5, "relief": 0.6}, 0.2,
        lambda s: _sigmoid(1.5 * s - 1.5)),
    # Chance tasks: no loadings, so the score is noise independent of z.
    "random_reg": _TaskSpec("random_reg", {}, 0.0, lambda s: 50.0 + 10.0 * s),
    "random_cls": _TaskSpec("random_cls", {}, 0.0, lambda s: (s > 0).astype(np.int64)),
}


@dataclass(frozen=True)
class SyntheticBenchmark:
    """Where `make_benchmark` wrote its files.

    Attributes:
      root: the output folder.
      labels_dir: folder of `<task>__<type>.csv` label files.
      submissions: method name -> submission CSV, best method first.
      expected_order: method names, best first; the random baseline is last.
    """

    root: Path
    labels_dir: Path
    submissions: dict[str, Path]
    expected_order: list[str]


def _method_params(index: int) -> dict[str, float | int]:
    """Quality knobs of the index-th method (0 = method_a, the best).

    Args:
      index: method position, 0-based, best first.

    Returns:
      dict with `latent_noise` (relative std of the noise on the latent
      factors the method sees), `kept_dims` (how many leading latent factors it
      sees) and `embedding_noise` (std of the noise added to each embedding
      value); all three get worse as index grows.
    """
    return {
        "latent_noise": 0.2 * 2.0**index,
        "kept_dims": max(LATENT_DIM // 4, LATENT_DIM - index * (LATENT_DIM // 6)),
        "embedding_noise": 0.2 * (1.0 + 0.5 * index),
    }


def _method_names(n_methods: int) -> list[str]:
    return [f"method_{letter}" for letter in string.ascii_lowercase[:n_methods]]


def hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n location-hash-like ids of 32 lowercase hex characters, shape (n,)."""
    text = rng.bytes(16 * n).hex()
    return np.array([text[32 * i: 32 * (i + 1)] for i in range(n)])


def _latent_state(rng: np.random.Generator, n: int) -> np.ndarray:
    """Latent state z of shape (n, LATENT_DIM) with unit-variance factors."""
    corr = np.eye(LATENT_DIM)
    for a, b, rho in _FACTOR_CORRELATIONS:
        i, j = FACTORS.index(a), FACTORS.index(b)
        corr[i, j] = corr[j, i] = rho
    return rng.standard_normal((n, LATENT_DIM)) @ np.linalg.cholesky(corr).T


def _task_labels(rng: np.random.Generator, spec: _TaskSpec, z: np.ndarray) -> np.ndarray:
    """Labels of one task for every location, shape (n,) for z of shape (n, r)."""
    n = z.shape[0]
    if spec.loadings:
        w = _DENSE_LOADING * rng.standard_normal(LATENT_DIM)  # (r,)
        for factor, weight in spec.loadings.items():
            w[FACTORS.index(factor)] += weight
        score = z @ w
        score = (score - score.mean()) / score.std()
    else:
        score = rng.standard_normal(n)
    return spec.transform(score + spec.noise * rng.standard_normal(n))


def _task_members(rng: np.random.Generator, groups: list[str], n: int) -> dict[str, np.ndarray]:
    """Row indices (into the n locations) measured by each group, shuffled.

    Every location belongs to one "home" group, so the groups cover all n
    locations, and to each other group with probability 0.18 to 0.32, so
    groups overlap partially and each has a few thousand of the 13,260 real
    locations (and still over 60 of 400).
    """
    home = rng.integers(0, len(groups), n)
    members = {}
    for g, group in enumerate(groups):
        joins = rng.random(n) < rng.uniform(0.18, 0.32)
        members[group] = rng.permutation(np.flatnonzero((home == g) | joins))
    return members


def _embedding(rng: np.random.Generator, z: np.ndarray, dim: int,
               params: dict[str, float | int]) -> np.ndarray:
    """One method's embeddings, shape (n, dim) float32, from z of shape (n, r)."""
    n = z.shape[0]
    kept = params["kept_dims"]
    u = z[:, :kept] + params["latent_noise"] * rng.standard_normal((n, kept))
    u /= u.std(axis=0)
    mix = rng.standard_normal((kept, dim)) / np.sqrt(kept)  # (kept, dim)
    offset = rng.normal(0.0, _OFFSET_STD, dim)
    scale = rng.lognormal(0.0, 0.3, dim)
    # tanh(0.5 x) is nearly linear over the bulk of u @ mix but saturates the
    # tails, like a network's activations.
    emb = offset + scale * np.tanh(0.5 * (u @ mix))
    emb += params["embedding_noise"] * rng.standard_normal((n, dim))
    return emb.astype(np.float32)


def _with_zarr_suffixes(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """Copy of ids (n,) where ~5% end in `.zarr.zip` and a few in `.zarr`."""
    n = ids.shape[0]
    n_zip = max(1, round(_ZARR_ZIP_FRACTION * n))
    n_zarr = max(1, round(_ZARR_FRACTION * n))
    rows = rng.choice(n, n_zip + n_zarr, replace=False)
    out = ids.astype(object)
    out[rows[:n_zip]] += ".zarr.zip"
    out[rows[n_zip:]] += ".zarr"
    return out


def write_csv(path: Path, columns: dict) -> None:
    """Writes columns (name -> numpy or pyarrow array, equal lengths) as CSV.

    Nulls of a pyarrow array are written as empty cells.

    pyarrow writes ~13k x 1024 floats in about a second, where pandas' to_csv
    takes tens of seconds. The header is written by hand because pyarrow
    quotes header names even when values are unquoted.
    """
    table = pa.table(columns)
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(columns) + "\n").encode())
        pa_csv.write_csv(table, sink,
                         pa_csv.WriteOptions(include_header=False, quoting_style="none"))


def make_benchmark(out_dir: str | Path, n_ids: int = 13260, dim: int = 1024,
                   n_methods: int = 3, seed: int = 0) -> SyntheticBenchmark:
    """Writes a synthetic benchmark with a known method ranking.

    Files written under out_dir:
      labels/<task>__<type>.csv   columns id,label; ~1.5% of labels empty.
      submissions/<method>.csv    columns id,0..dim-1 (float32); all label ids
                                  plus a few unlabelled ones, rows shuffled,
                                  ~5% ids ending in .zarr.zip, a few in .zarr.
      ground_truth.json           expected order and every generator parameter.

    Args:
      out_dir: output folder, created if missing. The files are written under a
        hidden name and moved into place at the end: a new out_dir appears
        whole; in an existing one labels/, submissions/ and ground_truth.json
        are each replaced whole (other entries are left alone). An exception
        or Ctrl-C leaves out_dir as it was.
      n_ids: number of labelled locations (unique ids over all tasks).
      dim: embedding dimension of every submission.
      n_methods: number of informative methods, method_a (best) onwards,
        1 to 26; `random_baseline` is added after them.
      seed: non-negative integer; the same seed gives identical files.

    Returns:
      SyntheticBenchmark with the paths and the expected order, best first.

    Raises:
      ValueError: if an argument is out of range.
    """
    if n_ids < 100:
        raise ValueError(f"n_ids={n_ids}: need at least 100 locations so every task has rows")
    if dim < 1:
        raise ValueError(f"dim={dim}: the embedding dimension must be at least 1")
    if not 1 <= n_methods <= 26:
        raise ValueError(f"n_methods={n_methods}: expected 1 to 26 (methods are named a..z)")
    if seed < 0:
        raise ValueError(f"seed={seed}: expected a non-negative integer")

    root = Path(out_dir)
    with _staged(root) as staging:
        bench = _write_benchmark(staging, n_ids, dim, n_methods, seed)
    return SyntheticBenchmark(root=root, labels_dir=root / "labels", expected_order=bench.expected_order,
                              submissions={name: root / "submissions" / path.name
                                           for name, path in bench.submissions.items()})


@contextlib.contextmanager
def _staged(root: Path):
    """Yield an empty hidden folder to write a benchmark in; when the block completes, it goes to `root`.

    A new root is the staged folder renamed; in an existing one, the staged
    entries replace root's one by one, ground_truth.json last. On any exception,
    KeyboardInterrupt included, the staged folder is removed.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    if not root.exists():
        with atomic_path(root) as staging:
            staging.mkdir()
            yield staging
        return
    staging = root / f".staging.{uuid.uuid4().hex[:8]}.tmp"
    try:
        staging.mkdir()
        yield staging
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == "ground_truth.json"):
            with atomic_path(root / entry.name) as tmp:
                os.replace(entry, tmp)
    finally:
        remove(staging)


def _write_benchmark(root: Path, n_ids: int, dim: int, n_methods: int, seed: int) -> SyntheticBenchmark:
    """make_benchmark's files, written into the empty folder `root`."""
    labels_dir = root / "labels"
    submissions_dir = root / "submissions"
    labels_dir.mkdir(parents=True, exist_ok=True)
    submissions_dir.mkdir(parents=True, exist_ok=True)

    # Unlabelled extra locations sit after the n_ids labelled ones.
    n_extra = max(3, n_ids // 2000)
    n_total = n_ids + n_extra
    ids = hex_ids(np.random.default_rng((seed, _STREAM_IDS)), n_total)  # (n_total,)
    z = _latent_state(np.random.default_rng((seed, _STREAM_LATENT)), n_total)  # (n_total, r)

    task_rng = np.random.default_rng((seed, _STREAM_TASKS))
    groups = list(dict.fromkeys(spec.group for spec in _TASK_SPECS.values()))
    members = _task_members(task_rng, groups, n_ids)
    task_info = {}
    for task, task_type in TASKS:
        spec = _TASK_SPECS[task]
        rows = members[spec.group]  # (n_task,)
        labels = _task_labels(task_rng, spec, z[:n_ids])[rows]
        if task_type == "regression":
            labels = np.round(labels, 4)
        missing = task_rng.random(rows.shape[0]) < _MISSING_LABEL_FRACTION
        write_csv(labels_dir / f"{task}__{task_type}.csv",
                   {"id": ids[rows], "label": pa.array(labels, mask=missing)})
        task_info[task] = {"type": task_type, "group": spec.group,
                           "n_rows": int(rows.shape[0]), "n_missing": int(missing.sum()),
                           "loadings": spec.loadings, "noise": spec.noise}

    names = _method_names(n_methods)
    expected_order = [*names, RANDOM_BASELINE]
    method_info = {}
    submissions = {}
    for name in expected_order:
        if name == RANDOM_BASELINE:
            rng = np.random.default_rng((seed, _STREAM_BASELINE))
            emb = rng.standard_normal((n_total, dim), dtype=np.float32)
            method_info[name] = {"pure_noise": True}
        else:
            index = names.index(name)
            rng = np.random.default_rng((seed, _STREAM_FIRST_METHOD + index))
            params = _method_params(index)
            emb = _embedding(rng, z, dim, params)
            method_info[name] = params
        order = rng.permutation(n_total)
        # Transposed copy: one contiguous (n_total,) array per CSV column.
        columns = np.ascontiguousarray(emb[order].T)  # (dim, n_total)
        path = submissions_dir / f"{name}.csv"
        write_csv(path, {"id": _with_zarr_suffixes(rng, ids[order]),
                          **{str(j): column for j, column in enumerate(columns)}})
        submissions[name] = path

    ground_truth = {
        "expected_order": expected_order,
        "params": {"n_ids": n_ids, "n_unlabelled_ids": n_extra, "dim": dim,
                   "n_methods": n_methods, "seed": seed, "latent_dim": LATENT_DIM,
                   "factors": list(FACTORS), "dense_loading": _DENSE_LOADING,
                   "missing_label_fraction": _MISSING_LABEL_FRACTION},
        "tasks": task_info,
        "methods": method_info,
    }
    (root / "ground_truth.json").write_text(json.dumps(ground_truth, indent=2) + "\n")
    return SyntheticBenchmark(root=root, labels_dir=labels_dir, submissions=submissions,
                              expected_order=expected_order)
