"""Baseline encoders against numpy and scikit-learn."""

import numpy as np
from sklearn.decomposition import PCA as SkPCA

from neuco_jax.encoders import fit_pca, fit_to_dim, mean_std_embedding, pca_embedding, pooled, random_embedding


def cubes(n=5, t=2, c=3, h=8, w=8, seed=0):
    return np.random.default_rng(seed).normal(100, 20, size=(n, t, c, h, w)).astype(np.float32)


def test_mean_std_embedding_is_spatial_mean_then_std_per_season_and_band():
    x = cubes()
    got = np.asarray(mean_std_embedding(x, dim=20))
    flat = x.reshape(5, 2, 3, -1)
    expected = np.concatenate([flat.mean(-1), flat.std(-1)], axis=-1).reshape(5, -1)  # (5, 12)
    np.testing.assert_allclose(got[:, :12], expected, rtol=1e-5)
    np.testing.assert_array_equal(got[:, 12:], 0)


def test_fit_to_dim_averages_equal_bins_when_too_many_features():
    f = np.arange(12, dtype=np.float32).reshape(1, 12)
    np.testing.assert_allclose(fit_to_dim(f, 4), [[1.0, 4.0, 7.0, 10.0]])
    np.testing.assert_allclose(fit_to_dim(f, 5), [[np.mean([0, 1, 2]), np.mean([3, 4]), np.mean([5, 6, 7]),
                                                    np.mean([8, 9]), np.mean([10, 11])]])


def test_pca_matches_sklearn_up_to_sign():
    sample = cubes(n=40, seed=1)
    feats = np.asarray(pooled(sample, 2))
    pca = fit_pca(feats, dim=6, grid=2)
    expected = SkPCA(n_components=6, svd_solver="full").fit(feats).transform(feats)
    got = np.asarray(pca_embedding(sample, pca, dim=8))
    np.testing.assert_allclose(np.abs(got[:, :6]), np.abs(expected), rtol=1e-3, atol=1e-2)
    np.testing.assert_array_equal(got[:, 6:], 0)


def test_pooled_is_cell_means():
    x = cubes(n=1, t=1, c=1, h=4, w=6)
    got = np.asarray(pooled(x, 2))
    expected = [x[0, 0, 0, :2, :3].mean(), x[0, 0, 0, :2, 3:].mean(), x[0, 0, 0, 2:, :3].mean(), x[0, 0, 0, 2:, 3:].mean()]
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)


def test_random_embedding_depends_only_on_the_id():
    a = random_embedding(["x", "y"], 16)
    b = random_embedding(["y"], 16)
    np.testing.assert_array_equal(a[1], b[0])
    assert not np.allclose(a[0], a[1])
