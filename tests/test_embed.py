"""End to end on small shapes: synthetic datacubes -> embed -> evaluate -> leaderboard."""

import numpy as np
import pandas as pd
import pytest

from neuco_jax.cli import main
from neuco_jax.datacube import CubeReader
from neuco_jax.encoders import mean_std_embedding
from neuco_jax.stores import read_embeddings
from neuco_jax.synthetic_cubes import make_cubes

CONFIG = "k_folds: 5\nprobe_params: {batch_size: 16, epochs: 10, learning_rate: 0.01}\n"


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    return make_cubes(tmp_path_factory.mktemp("cubes"), n_ids=150, size=16)


def test_mean_baseline_beats_random_end_to_end(cubes, tmp_path, capsys):
    data = cubes.root / "data"
    for encoder, ext in (("mean", "parquet"), ("random", "csv")):
        assert main(["--quiet", "embed", "--data_root", str(data), "--output", str(tmp_path / f"{encoder}.{ext}"),
                     "--encoder", encoder, "--embedding_dim", "256", "--batch_size", "32"]) == 0
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "results"
    for sub in ("mean.parquet", "random.csv"):
        assert main(["evaluate", "--annotation_path", str(cubes.labels_dir), "--submission_file",
                     str(tmp_path / sub), "--output_dir", str(out), "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--output_dir", str(out)]) == 0
    (board,) = (out / "leaderboards" / "results").glob("leaderboard_*.csv")
    ranked = pd.read_csv(board)["experiment"].str.rsplit("_", n=2).str[0].tolist()
    assert ranked == ["mean", "random"]


def test_embed_writes_what_the_encoder_computes(cubes, tmp_path):
    data = cubes.root / "data"
    out = tmp_path / "mean.zarr"
    assert main(["--quiet", "embed", "--data_root", str(data), "--output", str(out), "--modalities", "s2l2a",
                 "--seasons", "summer", "--embedding_dim", "64", "--batch_size", "7"]) == 0
    ids, x = read_embeddings(out)
    reader = CubeReader(data, modalities=("s2l2a",), seasons=("summer",))
    assert list(ids) == list(reader.ids)
    (_, first), = [next(iter(reader.batches(len(reader.ids))))]
    expected = np.asarray(mean_std_embedding(first, 64))
    np.testing.assert_allclose(x, expected, rtol=1e-5)
    # 12 bands x 1 season x (mean, std) = 24 features, zero-padded to 64
    assert np.all(x[:, 24:] == 0) and np.all(x[:, :12] > 1000)


def test_embed_rejects_an_unknown_encoder(cubes, tmp_path):
    assert main(["embed", "--data_root", str(cubes.root), "--output", str(tmp_path / "x.csv"), "--encoder", "vit"]) == 2
