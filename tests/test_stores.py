"""Embedding stores: every format round-trips exactly and loads into the same submission."""

import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neuco_jax import stores
from neuco_jax.data import load_submission, submission_width
from neuco_jax.errors import InputError

EXTENSIONS = [".csv", ".parquet", ".npz", ".npy", ".zarr"]


def sample(n=7, d=5, seed=0):
    """Ids that stress every format (leading zeros, unicode, CSV quoting, long, suffixes) and float32 edge values."""
    ids = np.array(["007", "b.zarr.zip", "ünï cödé", "x,y", 'q"uote', "z" * 40, "c.zarr"][:n], dtype=object)
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    x[0, 0], x[1, 1], x[2, 2], x[3, 3] = np.nan, np.inf, 1e-38, np.float32(1 / 3)
    return ids, x


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("src, dst", list(itertools.product(EXTENSIONS, EXTENSIONS)))
def test_convert_round_trips_every_format_pair_exactly(tmp_path, src, dst):
    ids, x = sample()
    stores.write_embeddings(tmp_path / f"in{src}", ids, x)
    stores.convert(tmp_path / f"in{src}", tmp_path / f"out{dst}")
    got_ids, got = stores.read_embeddings(tmp_path / f"out{dst}")
    assert got_ids.dtype == object and list(got_ids) == list(ids)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x)  # exact, NaN in the same places


def test_csv_and_parquet_have_the_reference_columns(tmp_path):
    ids, x = sample()
    stores.write_embeddings(tmp_path / "s.csv", ids, x)
    stores.write_embeddings(tmp_path / "s.parquet", ids, x)
    names = ["id", *map(str, range(x.shape[1]))]
    df = pd.read_csv(tmp_path / "s.csv", dtype={"id": str})
    assert list(df.columns) == names and list(df["id"]) == list(ids)
    np.testing.assert_array_equal(df[names[1:]].to_numpy(np.float32), x)
    table = pq.read_table(tmp_path / "s.parquet")
    assert table.column_names == names and table.schema.field("0").type == pa.float32()


def test_terratorch_parquet_with_one_based_columns_loads_in_order(tmp_path):
    rng = np.random.default_rng(1)
    ids, x = sample(d=12)
    order = rng.permutation(12)
    columns = {"id": ids, "bbox": ["b"] * len(ids), **{str(j + 1): x[:, j].astype(np.float64) for j in order}}
    pq.write_table(pa.table(columns), tmp_path / "tt.parquet")
    got_ids, got = stores.read_embeddings(tmp_path / "tt.parquet")
    assert list(got_ids) == list(ids)
    np.testing.assert_array_equal(got, x)
    assert submission_width(tmp_path / "tt.parquet") == 12


def test_parquet_without_digit_columns_uses_every_other_column(tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    pq.write_table(pa.table({"emb_a": x[:, 0], "id": ["a", "b", "c"], "emb_b": x[:, 1]}), tmp_path / "s.parquet")
    np.testing.assert_array_equal(stores.read_embeddings(tmp_path / "s.parquet")[1], x)


def test_load_submission_is_the_same_from_every_format(tmp_path):
    ids = np.array(["a.zarr.zip", "b.zarr", "c", "d", "e", "f", "c", "zz"], dtype=object)
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    x[1, 2] = np.nan
    x[6] = x[2]  # 'c' twice with identical values: the first row is kept
    (tmp_path / "exclude.txt").write_text("e\n\n")
    valid = {"a", "b", "c", "d", "e", "f"}
    # Plain computation: clean ids, drop excluded and unknown ids, first of duplicates, NaN -> 0, pad to 5.
    keep = [0, 1, 2, 3, 5]
    want_ids = ["a", "b", "c", "d", "f"]
    want = np.zeros((5, 5), np.float32)
    want[:, :3] = np.nan_to_num(x[keep], nan=0.0)
    for ext in EXTENSIONS:
        path = tmp_path / f"s{ext}"
        stores.write_embeddings(path, ids, x)
        assert submission_width(path) == 3
        with pytest.warns(UserWarning, match=f"s{ext}: 1 id on more than one row with identical values"):
            got_ids, got = load_submission(path, valid_ids=valid, embedding_dim=5,
                                           exclude_file=tmp_path / "exclude.txt")
        assert list(got_ids) == want_ids, ext
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want, err_msg=ext)
        with pytest.raises(InputError, match=f"s{ext}: 3 embedding columns but embedding_dim is 2"):
            load_submission(path, embedding_dim=2)


def test_zarr_layout_is_plain_zarr_v3(tmp_path):
    zarr = pytest.importorskip("zarr")
    ts = pytest.importorskip("tensorstore")
    ids, x = sample()
    path = tmp_path / "s.zarr"
    stores.write_embeddings(path, ids, x)
    assert json.loads((path / "zarr.json").read_text())["node_type"] == "group"
    # zarr-python, an independent reader of the format.
    group = zarr.open_group(path, mode="r")
    np.testing.assert_array_equal(group["embeddings"][:], x)
    assert group["embeddings"].dtype == np.float32 and group["embeddings"].chunks[0] <= stores.ZARR_CHUNK_ROWS
    raw = group["ids"][:]
    assert raw.dtype == np.uint8 and [bytes(r).rstrip(b"\0").decode() for r in raw] == list(ids)
    # tensorstore directly.
    emb = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "embeddings")}}).result()
    assert emb.dtype == ts.float32 and tuple(emb.shape) == x.shape


def test_zarr_written_by_zarr_python_is_read(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = np.random.default_rng(2).normal(size=(6000, 3)).astype(np.float32)  # several chunks
    ids = np.array([f"id{i}" for i in range(6000)], dtype=object)
    encoded = np.array([i.encode() for i in ids], dtype="S8").view(np.uint8).reshape(6000, 8)
    group = zarr.open_group(tmp_path / "z.zarr", mode="w")
    group.create_array("embeddings", data=x.astype(np.float64), chunks=(1000, 3))
    group.create_array("ids", data=encoded, chunks=(1000, 8))
    got_ids, got = stores.read_embeddings(tmp_path / "z.zarr")
    assert list(got_ids) == list(ids)
    np.testing.assert_array_equal(got, x)
    numeric = zarr.open_group(tmp_path / "n.zarr", mode="w")
    numeric.create_array("embeddings", data=x[:3])
    numeric.create_array("ids", data=np.array([10, 20, 30]))
    assert list(stores.read_embeddings(tmp_path / "n.zarr")[0]) == ["10", "20", "30"]


def test_npy_ids_sidecar(tmp_path):
    ids, x = sample()
    stores.write_embeddings(tmp_path / "emb.npy", ids, x)
    assert files_in(tmp_path) == ["emb.ids.txt", "emb.npy"]
    assert (tmp_path / "emb.ids.txt").read_text(encoding="utf-8").split("\n")[:-1] == list(ids)
    np.testing.assert_array_equal(np.load(tmp_path / "emb.npy"), x)


def _bad_parquet(path):
    pq.write_table(pa.table({"key": ["a"], "0": [1.0]}), path)


def _pickled_ids(path):
    np.savez(path, ids=np.array(["a"], dtype=object), embeddings=np.ones((1, 2)))


def _npy_count_mismatch(path):
    np.save(path, np.ones((2, 3)))
    path.with_suffix(".ids.txt").write_text("a\nb\nc\n")


def _zarr_without_ids(path):
    stores.write_embeddings(path, ["a"], np.ones((1, 2)))
    shutil.rmtree(path / "ids")


def _zarr_string_ids(path):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(path, mode="w")
    group.create_array("embeddings", data=np.ones((2, 2), np.float32))
    group.create_array("ids", shape=(2,), dtype=str)[:] = np.array(["a", "b"])  # vlen-utf8: not in tensorstore


@pytest.mark.parametrize("name, make, message", [
    ("emb.txt", lambda p: p.write_text("id,0\na,1\n"), "unknown embedding file type; .* .parquet"),
    ("s.parquet", _bad_parquet, "no 'id' column"),
    ("s.parquet", lambda p: p.write_text("not parquet"), "cannot be read as Parquet"),
    ("s.npz", lambda p: np.savez(p, ids=np.array(["a"])), "no array 'embeddings'"),
    ("s.npz", _pickled_ids, "cannot be read as .npz"),
    ("s.npy", lambda p: np.save(p, np.ones((2, 3))), "ids file s.ids.txt not found"),
    ("s.npy", _npy_count_mismatch, "ids have shape \\(3,\\) for 2 embedding rows"),
    ("s.zarr", _zarr_without_ids, "cannot open zarr array 'ids'"),
    ("s.zarr", _zarr_string_ids, "cannot open zarr array 'ids'"),
    ("s.zarr", lambda p: p.write_text(""), "must be a directory"),
    ("missing.npz", lambda p: None, "not found"),
])
def test_bad_stores_raise_one_line_naming_the_file(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(InputError, match=message) as err:
        stores.read_embeddings(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_matrix_shape(tmp_path):
    np.savez(tmp_path / "s.npz", ids=np.array(["a", "b"]), embeddings=np.ones((2, 3, 1)))
    with pytest.raises(InputError, match="s.npz: embeddings have shape \\(2, 3, 1\\); expected a 2-D"):
        stores.read_embeddings(tmp_path / "s.npz")
    with pytest.raises(InputError, match="s.npz: embeddings have shape"):
        submission_width(tmp_path / "s.npz")


def test_write_rejects_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(InputError, match="out.zarr: ids have shape \\(2,\\) for 3 embedding rows"):
        stores.write_embeddings(tmp_path / "out.zarr", ["a", "b"], np.ones((3, 2)))
    with pytest.raises(InputError, match="out.npy: an id contains a line break"):
        stores.write_embeddings(tmp_path / "out.npy", ["a\nb"], np.ones((1, 2)))
    with pytest.raises(InputError, match="does not exist; create it first"):
        stores.write_embeddings(tmp_path / "no" / "out.csv", ["a"], np.ones((1, 2)))
    assert files_in(tmp_path) == []
    (tmp_path / "imagery.zarr" / "B04").mkdir(parents=True)  # a folder that is not an embedding store survives
    with pytest.raises(InputError, match="imagery.zarr: is a folder but not an embedding store"):
        stores.write_embeddings(tmp_path / "imagery.zarr", ["a"], np.ones((1, 2)))
    assert files_in(tmp_path / "imagery.zarr") == ["B04"]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_interrupted_write_leaves_nothing_and_keeps_the_old_store(tmp_path, monkeypatch, ext):
    ids, x = sample()
    path = tmp_path / f"s{ext}"
    real = stores._WRITERS[ext.strip(".")]

    def crash_after_writing(*args):
        real(*args)  # the temporary files are complete on disk when the "crash" comes
        raise KeyboardInterrupt

    monkeypatch.setitem(stores._WRITERS, ext.strip("."), crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        stores.write_embeddings(path, ids, x)
    assert files_in(tmp_path) == []

    monkeypatch.setitem(stores._WRITERS, ext.strip("."), real)
    stores.write_embeddings(path, ids[:3], x[:3])
    before = files_in(tmp_path)
    monkeypatch.setitem(stores._WRITERS, ext.strip("."), crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        stores.write_embeddings(path, ids, x)
    assert files_in(tmp_path) == before
    np.testing.assert_array_equal(stores.read_embeddings(path)[1], x[:3])

    monkeypatch.setitem(stores._WRITERS, ext.strip("."), real)
    stores.write_embeddings(path, ids, x)  # a complete write replaces the store, directories too
    assert files_in(tmp_path) == before
    np.testing.assert_array_equal(stores.read_embeddings(path)[1], x)


def test_npz_ids_may_be_bytes_or_integers(tmp_path):
    x = np.ones((2, 3), np.float32)
    np.savez(tmp_path / "b.npz", ids=np.array(["é".encode(), b"b"]), embeddings=x)
    np.savez(tmp_path / "i.npz", ids=np.array([7, 8]), embeddings=x)
    np.savez(tmp_path / "bad.npz", ids=np.array([b"\xff", b"b"]), embeddings=x)
    assert list(stores.read_embeddings(tmp_path / "b.npz")[0]) == ["é", "b"]
    assert list(stores.read_embeddings(tmp_path / "i.npz")[0]) == ["7", "8"]
    with pytest.raises(InputError, match="bad.npz: ids are not UTF-8"):
        stores.read_embeddings(tmp_path / "bad.npz")
