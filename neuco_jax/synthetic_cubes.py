"""Synthetic SSL4EO-S12-downstream imagery whose labels are computed from the pixels.

`make_cubes` writes datacubes in exactly the dataset's layout and format (see
`neuco_jax.datacube`) and label files for the tasks of `neuco_jax.synthetic`,
so that an embedding pipeline can be run end to end and checked: every label
except the two random ones is a statistic of the images, so embeddings that
keep e.g. per-band means and spreads predict them.

Scene model, per location (fields of shape (y, x) are smooth: Gaussian-blurred
noise on a coarse grid, at two scales):

  cover_k  = softmax_k(a_k + c f_k)         k in forest, crop, urban, bare; a_k and
                                            the contrast c (about 3) vary by location
  green_t  = cover_forest g_forest[t] + cover_crop g_crop[t]     t: season
  heat     = 6 urban + 3 bare - 4 green_summer + h f_heat       (degrees C, h in 0.5..2)
  surface_t(band) = green and dry vegetation, soil and urban spectra mixed by
             cover (S2 L2A reflectance); B11, B12 times exp(0.08 heat s_t), s_t
             the seasonal strength of the heat (summer 1, winter 0.2)
  s2l2a    = surface with clouds and no-data patches; s2l1c adds the
             atmosphere's path reflectance (blue bright, B09 absorbed, B10 cirrus)
  s1       = backscatter of the cover mix in dB, with speckle

S2 values are written as reflectance * 10000 in uint16 (0 is no data), the
pre-2022 convention of the dataset; S1 as float32 dB.

Labels, plus a noise of 3% of each task's spread across locations (fractions
clipped to [0, 1]); NDVI is computed from the cloud-free s2l2a numbers of B08
and B04:
  biomass_mean / _std   mean / spatial std of 250 max(NDVI_summer - 0.2, 0)^2   (t/ha)
  crops                 mean over pixels of the seasonal NDVI range (max - min)
  landcover_agriculture fraction of pixels whose seasonal NDVI range > 0.35
  landcover_forest      fraction of pixels with NDVI > 0.5 in every season
  clouds_reg            fraction of s2l1c pixels (all seasons) with B02 > 2500
  heatisland_mean / _std  mean / spatial std of the summer heat field
  nodata                fraction of s2l2a values that are 0
  random_reg / random_cls  independent of the images
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from neuco_jax.datacube import MODALITIES, SUFFIX, write_cube
from neuco_jax.synthetic import TASKS, hex_ids, write_csv

# Independent random streams: np.random.default_rng((seed, stream[, location])).
_STREAM_IDS, _STREAM_RANDOM_LABELS, _STREAM_LABEL_NOISE, _STREAM_LOCATION = 0, 1, 2, 3

_COVERS = ("forest", "crop", "urban", "bare")
# Mean logit of each cover across locations: urban is rare.
_COVER_LOGIT_MEAN = np.array([0.0, 0.0, -1.5, -0.5])
_COVER_LOGIT_STD = 1.5
# Surface reflectance spectra in the s2l2a bands B01..B12 (no B10).
_GREEN_VEG = np.array([.03, .04, .08, .04, .12, .30, .38, .42, .44, .40, .22, .10])
_DRY_VEG = np.array([.06, .08, .11, .14, .18, .22, .24, .26, .28, .28, .32, .24])
_SOIL = np.array([.08, .10, .14, .18, .22, .25, .27, .28, .30, .30, .35, .28])
_URBAN = np.array([.12, .13, .15, .17, .19, .21, .22, .23, .24, .24, .26, .23])
# Fraction of green leaves per season (spring, summer, autumn, winter).
_FOREST_GREEN = np.array([.75, .95, .80, .55])
_CROP_GREEN = np.array([.35, .90, .25, .05])
_HEAT_BY_SEASON = np.array([.6, 1.0, .6, .2])
_SWIR = [10, 11]  # B11, B12 in the s2l2a band order
# Top of atmosphere (s2l1c, 13 bands): path reflectance added to the surface, the
# share of the surface signal that passes (B09 is a water-vapour band, B10 cirrus
# sees no surface), and the spectrum of a thick cloud.
_PATH = np.array([.10, .08, .05, .03, .03, .02, .02, .02, .02, .01, .003, .005, .002])
_TRANSMITTED = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, .3, 0, 1, 1])
_CLOUD_TOA = np.array([.55, .55, .55, .55, .55, .55, .55, .55, .55, .35, .20, .45, .35])
_CLOUD_SURFACE = np.delete(_CLOUD_TOA, 10) - 0.03
_L1C_FROM_L2A = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11]  # B10 takes B09's slot, then zeroed
# Backscatter in dB per cover (vv, vh); crops and bare soil vary, see _s1.
_S1_FOREST = np.array([-7.5, -13.0])
_S1_URBAN = np.array([-2.0, -9.0])
_SPECKLE_LOOKS = 4.0
_LABEL_NOISE = 0.03
_BLUE_CLOUD_DN = 2500
_FRACTIONS = ("landcover_agriculture", "landcover_forest", "clouds_reg", "nodata")


@dataclass(frozen=True)
class CubeBenchmark:
    """Where `make_cubes` wrote its files.

    Attributes:
      root: the output folder; datacubes are under root/data, ready for
        `neuco_jax.datacube.CubeReader(root)`.
      labels_dir: folder of `<task>__<type>.csv` label files.
      ids: location ids in generation order.
    """

    root: Path
    labels_dir: Path
    ids: list[str]


def _smooth_fields(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """n smooth random fields of shape (size, size), zero mean and unit std each.

    A (cells, cells) grid of standard normals blurred onto the pixels with a
    Gaussian of one cell's width: w @ grid @ w.T with w of shape (size, cells).
    The grid does not depend on size, so small test images are the same
    scenes as full ones at a coarser resolution.
    """
    centres = (np.arange(cells) + 0.5) / cells
    pixels = (np.arange(size) + 0.5) / size
    w = np.exp(-0.5 * ((pixels[:, None] - centres[None, :]) * cells) ** 2)  # (size, cells)
    fields = w @ rng.standard_normal((n, cells, cells)) @ w.T  # (n, size, size)
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    return (fields / fields.std(axis=(1, 2), keepdims=True)).astype(np.float32)


def _two_scale_fields(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(n, size, size) unit-std fields: landscape-scale plus field-scale structure."""
    fields = 0.8 * _smooth_fields(rng, n, size, 4) + 0.6 * _smooth_fields(rng, n, size, 12)
    return fields / fields.std(axis=(1, 2), keepdims=True)


def _to_dn(reflectance: np.ndarray) -> np.ndarray:
    """S2 digital numbers (reflectance * 10000) as uint16, at least 1 (0 means no data)."""
    return np.clip(np.rint(reflectance * 10000.0), 1, 65535).astype(np.uint16)


def _ndvi(dn: np.ndarray) -> np.ndarray:
    """NDVI of (..., 12 bands, y, x) s2l2a numbers: (B08 - B04) / (B08 + B04), shape (..., y, x)."""
    nir, red = dn[..., 7, :, :].astype(np.float64), dn[..., 3, :, :].astype(np.float64)
    return (nir - red) / (nir + red)


def _scene(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """One location's imagery and the fields its labels are computed from.

    Returns:
      dict with s1: (4, 2, y, x) float32 dB; s2l1c: (4, 13, y, x) and
      s2l2a: (4, 12, y, x) uint16; clear_l2a: (4, 12, y, x) uint16, the
      surface without clouds and no-data; heat: (y, x) summer heat field.
    """
    n_time = len(_FOREST_GREEN)
    logits = (_COVER_LOGIT_MEAN + _COVER_LOGIT_STD * rng.standard_normal(len(_COVERS)))[:, None, None].astype(np.float32)
    # Some landscapes are patchworks of pure covers, others smooth mixtures.
    contrast = np.exp(rng.normal(np.log(3.0), 0.4))
    logits = logits + contrast * _two_scale_fields(rng, len(_COVERS), size)
    cover = np.exp(logits - logits.max(axis=0))
    forest, crop, urban, bare = cover / cover.sum(axis=0)  # each (y, x)
    green = (forest * _FOREST_GREEN[:, None, None] + crop * _CROP_GREEN[:, None, None]).astype(np.float32)  # (t, y, x)
    vegetated = (forest + crop)[None]
    heat = 6 * urban + 3 * bare - 4 * green[1] + rng.uniform(0.5, 2.0) * _two_scale_fields(rng, 1, size)[0]

    def mix(spectrum, weight):  # (12,) x (t, y, x) -> (t, 12, y, x) float32
        return spectrum.astype(np.float32)[None, :, None, None] * weight[:, None]

    surface = (mix(_GREEN_VEG, green) + mix(_DRY_VEG, vegetated - green)
               + mix(_URBAN, np.broadcast_to(urban, green.shape)) + mix(_SOIL, np.broadcast_to(bare, green.shape)))
    # Hot surfaces are dry and bright in the short-wave infrared.
    surface[:, _SWIR] *= np.exp(0.08 * heat * _HEAT_BY_SEASON[:, None, None])[:, None]
    texture = 1.0 + 0.04 * rng.standard_normal((n_time, 1, size, size), dtype=np.float32)
    surface = surface * texture + 0.003 * rng.standard_normal(surface.shape, dtype=np.float32)

    # Clouds: blobs covering a given fraction of each season's image, often none.
    cover_fraction = np.where(rng.random(n_time) < 0.5, 0.0, rng.beta(1.2, 4.0, n_time))
    cloud_fields = _smooth_fields(rng, n_time, size, 6)
    thresholds = [np.quantile(f, 1.0 - p) if p > 0 else np.inf for f, p in zip(cloud_fields, cover_fraction)]
    cloud = 1.0 / (1.0 + np.exp(-8.0 * (cloud_fields - np.array(thresholds, np.float32)[:, None, None])))
    cloud = cloud[:, None]  # (t, 1, y, x)

    # No data: an orbit edge cutting off a corner of the image in some seasons.
    nodata = np.zeros((n_time, size, size), bool)
    if rng.random() < 0.3:
        angle, fraction = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.5)
        y, x = np.mgrid[:size, :size]
        along = np.cos(angle) * x + np.sin(angle) * y
        edge = along >= np.quantile(along, 1.0 - fraction)
        seasons = rng.random(n_time) < 0.5
        seasons[rng.integers(n_time)] = True
        nodata[seasons] = edge

    clear_l2a = _to_dn(surface)
    s2l2a = _to_dn((1 - cloud) * surface + cloud * _CLOUD_SURFACE[None, :, None, None])
    toa = surface[:, _L1C_FROM_L2A] * _TRANSMITTED[None, :, None, None] + _PATH[None, :, None, None]
    s2l1c = _to_dn((1 - cloud) * toa + cloud * _CLOUD_TOA[None, :, None, None])
    s2l2a *= ~nodata[:, None]
    s2l1c *= ~nodata[:, None]

    return {"s1": _s1(rng, forest, crop, urban, bare, green), "s2l1c": s2l1c, "s2l2a": s2l2a,
            "clear_l2a": clear_l2a, "heat": heat}


def _s1(rng: np.random.Generator, forest: np.ndarray, crop: np.ndarray, urban: np.ndarray,
        bare: np.ndarray, green: np.ndarray) -> np.ndarray:
    """Backscatter (t, 2, y, x) float32 in dB of the cover mix, with speckle.

    Covers are (y, x) fractions, green is (t, y, x). Crops scatter more as they
    grow; bare soil more where it is wet.
    """
    size = green.shape[1]
    moisture = _smooth_fields(rng, 1, size, 4)[0]
    crop_db = np.stack([-12 + 3 * green, -20 + 6 * green], axis=1)  # (t, 2, y, x)
    bare_db = np.stack([-14 + 2 * moisture, -22 + 1.5 * moisture])[None]  # (1, 2, y, x)
    power = (forest * 10 ** (_S1_FOREST[:, None, None] / 10) + urban * 10 ** (_S1_URBAN[:, None, None] / 10))[None]
    power = power + crop * 10 ** (crop_db / 10) + bare * 10 ** (bare_db / 10)
    speckle = rng.gamma(_SPECKLE_LOOKS, 1.0 / _SPECKLE_LOOKS, power.shape)
    return (10 * np.log10(power * speckle)).astype(np.float32)


def _pixel_labels(scene: dict[str, np.ndarray]) -> dict[str, float]:
    """The non-random tasks' labels of one location, computed from its pixels."""
    ndvi = _ndvi(scene["clear_l2a"])  # (t, y, x)
    biomass = 250.0 * np.maximum(ndvi[1] - 0.2, 0.0) ** 2
    ndvi_range = ndvi.max(axis=0) - ndvi.min(axis=0)
    summer_heat = scene["heat"]
    return {
        "biomass_mean": biomass.mean(),
        "biomass_std": biomass.std(),
        "crops": ndvi_range.mean(),
        "landcover_agriculture": (ndvi_range > 0.35).mean(),
        "landcover_forest": (ndvi.min(axis=0) > 0.5).mean(),
        "clouds_reg": (scene["s2l1c"][:, 1] > _BLUE_CLOUD_DN).mean(),
        "heatisland_mean": summer_heat.mean(),
        "heatisland_std": summer_heat.std(),
        "nodata": (scene["s2l2a"] == 0).mean(),
    }


def make_cubes(out_dir: str | Path, n_ids: int = 64, size: int = 264, seed: int = 0,
               modalities: Sequence[str] = tuple(MODALITIES), parts: int = 2) -> CubeBenchmark:
    """Writes synthetic datacubes and labels computed from their pixels.

    Files written under out_dir:
      data/<modality>/part-NNNNNN/<id>.zarr.zip  one datacube per location and
          modality (see `neuco_jax.datacube.write_cube`); locations are split
          into `parts` consecutive blocks, one part folder each.
      labels/<task>__<type>.csv  columns id,label for every location, for the
          tasks of `neuco_jax.synthetic.TASKS`.

    Args:
      out_dir: output folder, created if missing; files of the same names are
        overwritten.
      n_ids: number of locations.
      size: image height and width in pixels (264 in the real dataset; tests
        use smaller images of the same scenes).
      seed: non-negative integer; the same seed gives identical files.
      modalities: which modality folders to write; labels are the same
        whichever are written.
      parts: number of part-NNNNNN folders per modality.

    Returns:
      CubeBenchmark with the folders and the ids.
    """
    modalities = tuple(modalities)
    if n_ids < 2:
        raise ValueError(f"n_ids={n_ids}: need at least 2 locations")
    if size < 4:
        raise ValueError(f"size={size}: images need at least 4x4 pixels")
    if seed < 0:
        raise ValueError(f"seed={seed}: expected a non-negative integer")
    if not 1 <= parts <= n_ids:
        raise ValueError(f"parts={parts}: expected 1 to n_ids={n_ids}")
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown:
        raise ValueError(f"modalities={list(modalities)}: expected names out of {', '.join(MODALITIES)}")

    root = Path(out_dir)
    labels_dir = root / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    folders = {(m, p): root / "data" / m / f"part-{p:06d}" for m in modalities for p in range(parts)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    ids = [str(i) for i in hex_ids(np.random.default_rng((seed, _STREAM_IDS)), n_ids)]
    rows = []
    for k, cube_id in enumerate(ids):
        scene = _scene(np.random.default_rng((seed, _STREAM_LOCATION, k)), size)
        for m in modalities:
            write_cube(folders[m, k * parts // n_ids] / f"{cube_id}{SUFFIX}", scene[m], MODALITIES[m], cube_id)
        rows.append(_pixel_labels(scene))

    noise_rng = np.random.default_rng((seed, _STREAM_LABEL_NOISE))
    random_rng = np.random.default_rng((seed, _STREAM_RANDOM_LABELS))
    for task, task_type in TASKS:
        if task == "random_reg":
            labels = 50.0 + 10.0 * random_rng.standard_normal(n_ids)
        elif task == "random_cls":
            labels = (random_rng.random(n_ids) < 0.5).astype(np.int64)
        else:
            labels = np.array([row[task] for row in rows])
            labels = labels + _LABEL_NOISE * labels.std() * noise_rng.standard_normal(n_ids)
            if task in _FRACTIONS:
                labels = np.clip(labels, 0.0, 1.0)
        if task_type == "regression":
            labels = np.round(labels, 4)
        write_csv(labels_dir / f"{task}__{task_type}.csv", {"id": pa.array(ids), "label": pa.array(labels)})
    return CubeBenchmark(root=root, labels_dir=labels_dir, ids=ids)
