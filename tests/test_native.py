"""The fused native step (neuco_jax/native/window_step.cc) against numpy, and its fallback."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from neuco_jax import native

needs_native = pytest.mark.skipif(not native.available(), reason="no C++ compiler for the native step")


def numpy_step(x, idx, params, y, mask, cls):
    """Sum over each probe's window of mask * (dloss/dz * x, loss), in float64."""
    xw = x.astype(np.float64)[idx]  # (group, window, width)
    z = np.einsum("gwd,gd->wg", xw, params.astype(np.float64))
    if cls:
        dz = 1 / (1 + np.exp(-z)) - y
        loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    else:
        dz, loss = 2 * (z - y), (z - y) ** 2
    return np.einsum("gwd,wg->gd", xw, mask * dz), (mask * loss).sum(0)


@needs_native
@pytest.mark.parametrize("cls", [True, False])
@pytest.mark.parametrize("width,group,window", [(1040, 40, 64), (37, 3, 5), (48, 17, 9)])
def test_window_step_matches_numpy(cls, width, group, window):
    rng = np.random.default_rng(width + group)
    slots = 50
    x = rng.normal(size=(slots, width)).astype(np.float32)
    idx = rng.integers(0, slots, (group, window)).astype(np.int32)
    params = (rng.normal(size=(group, width)) / np.sqrt(width)).astype(np.float32)
    y = (rng.random((window, group)) > 0.5 if cls else rng.normal(size=(window, group))).astype(np.float32)
    # Some rows are not in a probe's minibatch (mask 0): they must not count.
    mask = (rng.random((window, group)) > 0.3).astype(np.float32) / window
    grad, loss = jax.jit(native.window_step(cls))(x, idx, params, y, mask)
    want_grad, want_loss = numpy_step(x, idx, params, y, mask, cls)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env", [{"NEUCO_JAX_NATIVE": "0"}, {"CXX": "/bin/false"}])
def test_without_the_native_step_the_engine_falls_back(env, tmp_path):
    """Switched off, or with a compiler that fails, `available()` is False and nothing breaks."""
    code = "from neuco_jax import native; print(native.available(), native.window_step(True))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "NEUCO_JAX_CACHE_DIR": str(tmp_path / "xla"), **env})
    assert proc.stdout.split() == ["False", "None"]
    assert not (tmp_path / "native").exists() or not list((tmp_path / "native").glob("*.so"))
