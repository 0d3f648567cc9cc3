"""`embed --encoder package.module:callable`: user encoders on small synthetic datacubes, against numpy."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import zarr
from zarr.storage import ZipStore

from neuco_jax.cli import main
from neuco_jax.data import load_submission
from neuco_jax.embed import embed
from neuco_jax.synthetic_cubes import make_cubes

N_IDS = 10  # with --batch_size 4: batches of 4, 4 and 2
MODALITIES = ("s2l2a", "s1")  # not the folders' order: channels follow the order asked for
SEASONS = ("winter", "spring")
FLAGS = ["--modalities", *MODALITIES, "--seasons", *SEASONS, "--batch_size", "4"]


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    return make_cubes(tmp_path_factory.mktemp("cubes"), n_ids=N_IDS, size=8, modalities=("s1", "s2l2a"))


@pytest.fixture(autouse=True)
def _helpers_importable(monkeypatch):
    """`user_encoders:<name>` specs import tests/user_encoders.py."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def read_pixels(cubes, modality: str, cube_id: str) -> np.ndarray:
    """(time, band, y, x) float64 of one file read with zarr, seasons as in SEASONS, S2 shifted by 1000."""
    (path,) = (cubes.root / "data" / modality).glob(f"part-*/{cube_id}.zarr.zip")
    store = ZipStore(path, mode="r")
    try:
        bands = zarr.open_group(store, mode="r")["bands"][0].astype(np.float64)
    finally:
        store.close()
    order = ["spring", "summer", "autumn", "winter"]
    return bands[[order.index(s) for s in SEASONS]] + (1000.0 if modality.startswith("s2") else 0.0)


def concatenated(cubes, cube_id: str) -> np.ndarray:
    """(time, channels, y, x): the modalities' bands in the order of MODALITIES."""
    return np.concatenate([read_pixels(cubes, m, cube_id) for m in MODALITIES], axis=1)


def run(cubes, out, *flags):
    return main(["--quiet", "embed", "--data_root", str(cubes.root), "--output", str(out), *FLAGS, *flags])


def test_numpy_and_jax_callables_write_what_numpy_computes(cubes, tmp_path):
    ids = sorted(cubes.ids)
    pixels = np.stack([concatenated(cubes, i) for i in ids])  # (n, time, channels, y, x)
    means, maxima = pixels.mean(axis=(3, 4)), pixels.max(axis=(3, 4))  # (n, time, channels)
    expected = {"band_means": means.reshape(N_IDS, -1),
                "band_mean_max": np.concatenate([means, maxima], axis=-1).reshape(N_IDS, -1)}
    for name, want in expected.items():
        out = tmp_path / f"{name}.parquet"
        assert run(cubes, out, "--encoder", f"user_encoders:{name}") == 0
        got_ids, x = load_submission(out)
        assert list(got_ids) == ids
        assert x.shape == (N_IDS, 2 * 14 * (1 if name == "band_means" else 2))  # seasons x (12 + 2) channels
        np.testing.assert_allclose(x, want, rtol=1e-5)


def counting_encoder():
    """A fresh JAX callable (jax.jit caches traces per function) and the batch shapes it was traced with."""
    traced = []

    def encoder(x):
        traced.append(x.shape)
        return x.mean((1, 3, 4))
    return encoder, traced


@pytest.mark.parametrize("batch_size, traces", [(5, [5]), (4, [4, 2])])
def test_a_jax_callable_is_traced_once_per_batch_shape(cubes, tmp_path, batch_size, traces):
    encoder, traced = counting_encoder()
    embed(cubes.root, tmp_path / "x.npz", encoder=encoder, modalities=MODALITIES, seasons=SEASONS,
          batch_size=batch_size)
    assert [shape[0] for shape in traced] == traces
    assert all(shape[1:] == (2, 14, 8, 8) for shape in traced)


def test_a_numpy_callable_is_called_as_is_on_the_readers_float32_arrays(cubes, tmp_path):
    seen = []

    def encoder(x):
        seen.append((type(x), x.dtype, x.shape))
        return np.asarray(x).mean(axis=(1, 3, 4))

    embed(cubes.root, tmp_path / "x.npz", encoder=encoder, modalities=MODALITIES, seasons=SEASONS, batch_size=4)
    assert issubclass(seen[0][0], jax.core.Tracer)  # the one tracing attempt, which fails at np.asarray
    assert seen[1:] == [(np.ndarray, np.float32, (n, 2, 14, 8, 8)) for n in (4, 4, 2)]


@pytest.mark.parametrize("jittable", [True, False])
def test_per_modality_gets_one_array_per_modality(cubes, tmp_path, jittable):
    seen = []

    def encoder(x):
        seen.append({m: (a.shape, a.dtype) for m, a in x.items()})
        if not jittable:
            x = {m: np.asarray(a) for m, a in x.items()}
        return x["s1"].mean((1, 3, 4)) - x["s2l2a"].mean((1, 2, 3, 4))[:, None]  # (batch, 2)

    out = tmp_path / "x.csv"
    embed(cubes.root, out, encoder=encoder, per_modality=True, modalities=MODALITIES, seasons=SEASONS,
          batch_size=4)
    first = (4, 2)  # batch, seasons
    assert [list(s) for s in seen] == [["s1", "s2l2a"]] * len(seen)  # keys sorted, jitted or not
    assert seen[-1] == {"s1": ((2, 2, 2, 8, 8), np.float32), "s2l2a": ((2, 2, 12, 8, 8), np.float32)}
    assert seen[0]["s2l2a"][0] == (*first, 12, 8, 8)
    ids = sorted(cubes.ids)
    want = [read_pixels(cubes, "s1", i).mean((0, 2, 3)) - read_pixels(cubes, "s2l2a", i).mean() for i in ids]
    got_ids, x = load_submission(out)
    assert list(got_ids) == ids
    np.testing.assert_allclose(x, np.stack(want), rtol=1e-5)


def test_a_module_in_the_current_folder_imports_as_with_python_m(cubes, tmp_path, monkeypatch):
    (tmp_path / "here_encoder_for_neuco.py").write_text(
        "import numpy as np\ndef embed(x):\n    return np.asarray(x).mean(axis=(1, 3, 4))\n")
    monkeypatch.chdir(tmp_path)
    assert run(cubes, tmp_path / "x.npy", "--encoder", "here_encoder_for_neuco:embed") == 0
    assert load_submission(tmp_path / "x.npy")[1].shape == (N_IDS, 14)


BAD = [  # (flags, words the one-line error must hold besides the spec)
    (["--encoder", "user_encoders"], "package.module:callable"),
    (["--encoder", "user_encoders:"], "package.module:callable"),
    (["--encoder", "no_such_module_for_neuco:embed"], "cannot import"),
    (["--encoder", "user_encoders:nope"], "no attribute 'nope'"),
    (["--encoder", "user_encoders:NOT_CALLABLE"], "not a callable"),
    (["--encoder", "user_encoders:one_number_each"], "batch 1: returned shape (4,) for 4 locations"),
    (["--encoder", "user_encoders:drops_a_row"], "batch 1: returned shape (3, 14) for 4 locations"),
    (["--encoder", "user_encoders:width_is_batch"], "batch 3: returned 2 dimensions where batch 1 gave 4"),
    (["--encoder", "user_encoders:band_means", "--embedding_dim", "7"], "where --embedding_dim gave 7"),
    (["--encoder", "user_encoders:nan_in_second_row"], "has nan at dimension 2"),
    (["--encoder", "user_encoders:overflows_float32"], "has inf at dimension 0"),
    (["--encoder", "user_encoders:text"], "not numbers"),
]


@pytest.mark.parametrize("flags, words", BAD, ids=[f[1] + "".join(f[2:]) for f, _ in BAD])
def test_a_bad_encoder_is_one_line_naming_it_and_writes_nothing(cubes, tmp_path, capsys, flags, words):
    out = tmp_path / "out" / "x.parquet"
    out.parent.mkdir()
    capsys.readouterr()
    assert run(cubes, out, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flags[1] in err[0] and words in err[0], err
    assert list(out.parent.iterdir()) == []  # nor a staged temporary


def test_the_first_bad_value_is_named_by_its_location_id(cubes, tmp_path, capsys):
    assert run(cubes, tmp_path / "x.csv", "--encoder", "user_encoders:nan_in_second_row") == 2
    assert f"id {sorted(cubes.ids)[1]!r} has nan" in capsys.readouterr().err


def test_a_failed_run_leaves_an_existing_submission_as_it_was(cubes, tmp_path):
    out = tmp_path / "x.csv"
    out.write_text("id,0\nkept,1.0\n")
    assert run(cubes, out, "--encoder", "user_encoders:width_is_batch") == 2
    assert out.read_text() == "id,0\nkept,1.0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_per_modality_is_refused_for_a_baseline(cubes, tmp_path, capsys):
    assert run(cubes, tmp_path / "x.csv", "--encoder", "mean", "--per_modality") == 2
    assert "--per_modality" in capsys.readouterr().err


def test_a_bfloat16_result_is_stored_as_float32(cubes, tmp_path):
    out = tmp_path / "x.npz"
    embed(cubes.root, out, encoder=lambda x: x.mean((1, 3, 4)).astype(jnp.bfloat16), modalities=MODALITIES,
          seasons=SEASONS)
    want = np.stack([concatenated(cubes, i).mean((0, 2, 3)) for i in sorted(cubes.ids)])
    np.testing.assert_allclose(load_submission(out)[1], want, rtol=1e-2)  # bfloat16: 8 bits of mantissa


def test_an_error_raised_by_the_callable_keeps_its_traceback_and_names_the_batch(cubes, tmp_path):
    def encoder(x):
        raise RuntimeError("model not loaded")

    with pytest.raises(RuntimeError, match="model not loaded") as raised:
        embed(cubes.root, tmp_path / "x.npz", encoder=encoder, modalities=MODALITIES, seasons=SEASONS)
    assert any("batch 1 (first id" in note for note in raised.value.__notes__)
    assert not (tmp_path / "x.npz").exists()
