"""Datacube layout, reader and synthetic imagery, checked against direct zarr reads."""

import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

zarr = pytest.importorskip("zarr")
from zarr.storage import ZipStore  # noqa: E402

from neuco_jax.data import load_labels  # noqa: E402
from neuco_jax.datacube import CubeReader, find_ids, read_cube  # noqa: E402
from neuco_jax.errors import InputError  # noqa: E402
from neuco_jax.synthetic import TASKS  # noqa: E402
from neuco_jax.synthetic_cubes import make_cubes  # noqa: E402

# Written out rather than imported: the layout of the real dataset.
BANDS = {
    "s1": ["vv", "vh"],
    "s2l1c": ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"],
    "s2l2a": ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"],
}
DTYPES = {"s1": np.float32, "s2l1c": np.uint16, "s2l2a": np.uint16}
SIZE = 20


def direct_read(path):
    """(group, bands array as numpy of shape (1, 4, band, y, x)) read with zarr alone."""
    group = zarr.open_group(ZipStore(path, mode="r"), mode="r")
    return group, group["bands"][...]


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    return make_cubes(tmp_path_factory.mktemp("cubes"), n_ids=24, size=SIZE, seed=3, parts=2)


def test_files_have_the_dataset_layout(cubes):
    data = cubes.root / "data"
    assert sorted(p.name for p in data.iterdir()) == ["s1", "s2l1c", "s2l2a"]
    for modality, bands in BANDS.items():
        assert sorted(p.name for p in (data / modality).iterdir()) == ["part-000000", "part-000001"]
        files = sorted((data / modality).glob("part-*/*.zarr.zip"))
        assert sorted(f.name[:-len(".zarr.zip")] for f in files) == sorted(cubes.ids)
        for path in files[:3]:
            cube_id = path.name[:-len(".zarr.zip")]
            assert len(cube_id) == 32 and int(cube_id, 16) >= 0
            with zipfile.ZipFile(path) as zf:  # zarr keys at the root of the zip
                assert {".zgroup", ".zmetadata", "bands/.zarray", "bands/.zattrs"} <= set(zf.namelist())
            group, pixels = direct_read(path)
            array = group["bands"]
            assert array.metadata.zarr_format == 2
            assert array.attrs["_ARRAY_DIMENSIONS"] == ["sample", "time", "band", "y", "x"]
            assert array.shape == (1, 4, len(bands), SIZE, SIZE) and array.dtype == DTYPES[modality]
            assert list(group["band"][:]) == bands
            assert list(group["time"][:]) == [0, 1, 2, 3]
            assert list(group["sample"][:]) == [cube_id]
            assert group["band"].attrs["_ARRAY_DIMENSIONS"] == ["band"]
            if modality == "s1":  # backscatter in dB
                assert -60 < pixels.min() and pixels.max() < 20
            else:  # digital numbers, reflectance * 10000, 0 = no data
                assert 200 < np.median(pixels) < 6000


def test_label_files_cover_every_task_and_location(cubes):
    tasks = load_labels(cubes.labels_dir)
    assert sorted((t.name, t.task_type) for t in tasks) == sorted(TASKS)
    for task in tasks:
        assert sorted(task.ids) == sorted(cubes.ids) and np.isfinite(task.labels).all()


def test_reader_returns_the_stored_pixels(cubes):
    reader = CubeReader(cubes.root / "data", s2_shift=False, threads=2)
    assert reader.ids == sorted(cubes.ids)
    assert reader.channels == [(m, b) for m in ("s1", "s2l1c", "s2l2a") for b in BANDS[m]]
    seen = []
    for ids, x in reader.batches(5, ids=reader.ids[:12]):
        assert x.dtype == np.float32 and x.shape == (len(ids), 4, 27, SIZE, SIZE)
        for cube_id, item in zip(ids, x):
            expected = np.concatenate([direct_read(reader.paths[m][cube_id])[1][0] for m in BANDS], axis=1)
            np.testing.assert_array_equal(item, expected.astype(np.float32))
        seen += ids
    assert seen == reader.ids[:12]  # batches of 5, 5 and 2, in order


def test_season_and_modality_selection_per_modality(cubes):
    reader = CubeReader(cubes.root, modalities=("s2l2a", "s1"), seasons=("winter", "spring"),
                        concat=False, threads=2)
    ids, x = next(reader.batches(4))
    assert sorted(x) == ["s1", "s2l2a"]
    assert x["s2l2a"].shape == (4, 2, 12, SIZE, SIZE) and x["s1"].shape == (4, 2, 2, SIZE, SIZE)
    for k, cube_id in enumerate(ids):
        l2a = direct_read(reader.paths["s2l2a"][cube_id])[1][0, [3, 0]].astype(np.float32)
        s1 = direct_read(reader.paths["s1"][cube_id])[1][0, [3, 0]]
        np.testing.assert_array_equal(x["s2l2a"][k], l2a + 1000)
        np.testing.assert_array_equal(x["s1"][k], s1)
    np.testing.assert_array_equal(read_cube(reader.paths["s1"][ids[0]], ["winter", "spring"]), x["s1"][0])


def test_s2_shift_adds_1000_to_sentinel2_only(cubes):
    ids = sorted(cubes.ids)[:6]
    (_, shifted), = CubeReader(cubes.root, threads=2).batches(6, ids=ids)
    (_, plain), = CubeReader(cubes.root, s2_shift=False, threads=2).batches(6, ids=ids)
    difference = (shifted - plain).transpose(2, 0, 1, 3, 4).reshape(27, -1)  # (channel, rest)
    np.testing.assert_array_equal(difference[:2], 0.0)
    np.testing.assert_array_equal(difference[2:], 1000.0)


def test_threads_and_prefetch_do_not_change_batches(cubes):
    one = list(CubeReader(cubes.root, threads=1).batches(7, prefetch=False))
    four = list(CubeReader(cubes.root, threads=4).batches(7, prefetch=True))
    assert [ids for ids, _ in one] == [ids for ids, _ in four]
    for (_, a), (_, b) in zip(one, four):
        np.testing.assert_array_equal(a, b)


def test_batches_can_be_put_on_the_jax_device(cubes):
    reader = CubeReader(cubes.root, modalities=("s1",), seasons=("summer",), threads=2)
    (ids, x), = reader.batches(3, ids=reader.ids[:3], to_jax=True)
    assert type(x).__module__.startswith("jax")
    np.testing.assert_array_equal(np.asarray(x), next(reader.batches(3))[1])


def _write_group(path, arrays):
    """A zipped zarr-2 group with arrays {name: (data, dims)}."""
    with ZipStore(path, mode="w") as store:
        group = zarr.create_group(store, zarr_format=2)
        for name, (data, dims) in arrays.items():
            group.create_array(name, data=data, attributes={"_ARRAY_DIMENSIONS": dims})


@pytest.mark.parametrize("problem", ["no_bands", "wrong_dims", "two_samples", "not_a_zip", "wrong_modality"])
def test_bad_files_raise_input_errors_naming_the_file(tmp_path, cubes, problem):
    path = tmp_path / "bad.zarr.zip"
    pixels = np.zeros((1, 4, 2, 8, 8), np.float32)
    modality = "s1"
    if problem == "no_bands":
        _write_group(path, {"data": (pixels, ["sample", "time", "band", "y", "x"])})
    elif problem == "wrong_dims":
        _write_group(path, {"bands": (pixels[0], ["time", "band", "y", "x"])})
    elif problem == "two_samples":
        _write_group(path, {"bands": (np.zeros((2, 4, 2, 8, 8)), ["sample", "time", "band", "y", "x"])})
    elif problem == "not_a_zip":
        path.write_text("id,label\n")
    else:
        shutil.copy(next((cubes.root / "data" / "s1").glob("*/*.zarr.zip")), path)
        modality = "s2l2a"
    with pytest.raises(InputError) as error:
        read_cube(path, modality=modality)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    if problem == "wrong_modality":
        assert "s2l2a" in message and "['vv', 'vh']" in message


def test_reader_reports_a_bad_file_in_a_batch(tmp_path, cubes):
    root = tmp_path / "data"
    shutil.copytree(cubes.root / "data", root)
    victim = sorted((root / "s2l1c").glob("*/*.zarr.zip"))[0]
    _write_group(victim, {"bands": (np.zeros((1, 4, 13, 8, 8), np.uint16), ["sample", "time", "band", "y", "x"])})
    reader = CubeReader(root, threads=2)
    with pytest.raises(InputError, match=f"{victim}.*8x8 pixels"):
        list(reader.batches(8))


def test_find_ids_keeps_locations_present_in_every_modality(tmp_path, cubes, caplog):
    root = tmp_path / "data"
    shutil.copytree(cubes.root / "data", root)
    dropped = sorted((root / "s1").glob("part-000001/*.zarr.zip"))[0]
    dropped.unlink()
    ids, paths = find_ids(tmp_path)  # the dataset folder works as well as data/
    assert ids == sorted(set(cubes.ids) - {dropped.name[:-len(".zarr.zip")]})
    assert "lack a file" in caplog.text
    assert paths["s2l2a"][ids[0]].parent.parent == root / "s2l2a"
    assert find_ids(root, ["s2l2a"])[0] == sorted(cubes.ids)

    twin = sorted((root / "s2l2a").glob("part-000000/*.zarr.zip"))[0]
    shutil.copy(twin, root / "s2l2a" / "part-000001" / twin.name)
    with pytest.raises(InputError, match="keep one file per id"):
        find_ids(root)
    with pytest.raises(InputError, match="modality folder not found"):
        find_ids(tmp_path / "nowhere", ["s1"])


def test_generation_is_deterministic(tmp_path):
    a = make_cubes(tmp_path / "a", n_ids=3, size=8, seed=5, parts=1)
    b = make_cubes(tmp_path / "b", n_ids=3, size=8, seed=5, parts=1)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    for f in files:
        assert (a.root / f).read_bytes() == (b.root / f).read_bytes()


def test_labels_are_predictable_from_the_pixels(tmp_path):
    """Ridge on per-(season, band) spatial means and stds, scored on held-out folds."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bench = make_cubes(tmp_path, n_ids=150, size=16, seed=0, parts=3)
    features = []
    for cube_id in bench.ids:
        stats = []
        for modality in BANDS:
            path = next((bench.root / "data" / modality).glob(f"*/{cube_id}.zarr.zip"))
            pixels = direct_read(path)[1][0].astype(np.float64)  # (time, band, y, x)
            stats += [pixels.mean(axis=(2, 3)).ravel(), pixels.std(axis=(2, 3)).ravel()]
        features.append(np.concatenate(stats))
    x = np.array(features)  # (150, 2 * 4 * 27)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    for task, task_type in TASKS:
        labels = pd.read_csv(bench.labels_dir / f"{task}__{task_type}.csv", dtype={"id": str})
        y = labels.set_index("id")["label"].loc[bench.ids].to_numpy()
        r2 = r2_score(y, cross_val_predict(model, x, y, cv=5))
        if task.startswith("random"):
            assert r2 < 0.2, (task, r2)
        else:
            assert r2 > 0.5, (task, r2)


def test_bad_arguments_raise_before_reading(cubes):
    with pytest.raises(ValueError, match="monsoon"):
        CubeReader(cubes.root, seasons=("monsoon",))
    with pytest.raises(ValueError, match="s2"):
        CubeReader(cubes.root, modalities=("s2",))
    reader = CubeReader(cubes.root, threads=2)
    with pytest.raises(ValueError, match="batch_size"):
        reader.batches(0)
    with pytest.raises(ValueError, match="'nope'"):
        reader.batches(4, ids=["nope"])


def test_stopping_early_drops_the_queued_reads(cubes):
    batches = CubeReader(cubes.root, threads=2).batches(2)
    ids, _ = next(batches)
    batches.close()  # returns once the in-flight reads are done or cancelled
    assert ids == sorted(cubes.ids)[:2]
