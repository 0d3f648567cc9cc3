"""The fused native step (neuco_jax/native/window_step.cc) against numpy, and its fallback."""

import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from neuco_jax import native

needs_native = pytest.mark.skipif(not native.available(), reason="native step unavailable (no C++ compiler, or NEUCO_JAX_NATIVE=0)")


def numpy_step(x, y, idx, n, params, mu, nu, lr, c1, c2, cls):
    """The step in float64: the mean minibatch gradient of each probe, then AdamW (torch's defaults)."""
    xb = x.astype(np.float64)[idx[:, :n]]  # (group, n, width)
    yb = y.astype(np.float64)[idx[:, :n]]
    z = np.einsum("gnd,gd->gn", xb, params.astype(np.float64))
    if cls:
        dz = 1 / (1 + np.exp(-z)) - yb
        loss = np.maximum(z, 0) - z * yb + np.log1p(np.exp(-np.abs(z)))
    else:
        dz, loss = 2 * (z - yb), (z - yb) ** 2
    grad = np.einsum("gnd,gn->gd", xb, dz) / n
    mu = 0.9 * mu + 0.1 * grad
    nu = 0.999 * nu + 0.001 * grad ** 2
    update = (mu / c1[:, None]) / (np.sqrt(nu / c2[:, None]) + 1e-8) + 0.01 * params
    return params - lr[:, None] * update, mu, nu, loss.mean(1)


@needs_native
@pytest.mark.parametrize("cls", [True, False])
@pytest.mark.parametrize("width,group,window,n", [(1040, 40, 64, 64), (37, 3, 5, 2), (48, 17, 9, 9)])
def test_minibatch_step_matches_numpy(cls, width, group, window, n):
    rng = np.random.default_rng(width + group)
    slots = 50
    x = rng.normal(size=(slots, width)).astype(np.float32)
    y = (rng.random(slots) > 0.5 if cls else rng.normal(size=slots)).astype(np.float32)
    idx = rng.integers(0, slots, (group, window)).astype(np.int32)
    params, mu = (rng.normal(size=(2, group, width)) / np.sqrt(width)).astype(np.float32)
    nu = (rng.random((group, width)) / width).astype(np.float32)
    lr = rng.uniform(1e-3, 1e-1, group).astype(np.float32)
    t = rng.integers(1, 20, group)
    c1, c2 = (1 - 0.9 ** t).astype(np.float32), (1 - 0.999 ** t).astype(np.float32)
    args = (x, y, idx, np.int32(n), params, mu, nu, lr, c1, c2)
    got = jax.jit(native.minibatch_step(cls))(*args)
    want = numpy_step(*args, cls=cls)
    # Tight enough to catch a float32 1 - beta2 (1.3e-5 relative in the second moment's update).
    for a, b, rtol in zip(got, want, (2e-6, 2e-6, 2e-6, 1e-5)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("env", [{"NEUCO_JAX_NATIVE": "0"}, {"CXX": "/bin/false"}])
def test_without_the_native_step_the_engine_falls_back(env, tmp_path):
    """Switched off, or with a compiler that fails, `available()` is False and nothing breaks."""
    code = "from neuco_jax import native; print(native.available(), native.minibatch_step(True))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "NEUCO_JAX_CACHE_DIR": str(tmp_path / "xla"), **env})
    assert proc.stdout.split() == ["False", "None"]
    assert not (tmp_path / "native").exists() or not list((tmp_path / "native").glob("*.so"))


@needs_native
@pytest.mark.parametrize("width,group,n_test", [(1040, 40, 37), (37, 3, 5), (48, 17, 0)])
def test_heldout_logits_match_numpy(width, group, n_test):
    rng = np.random.default_rng(width)
    slots, cols = 60, 40
    x = rng.normal(size=(slots, width)).astype(np.float32)
    test = rng.integers(0, slots, (group, cols)).astype(np.int32)
    params = rng.normal(size=(group, width)).astype(np.float32)
    z = jax.jit(native.heldout_logits())(x, test, np.int32(n_test), params)
    want = np.einsum("gnd,gd->gn", x.astype(np.float64)[test], params.astype(np.float64))
    np.testing.assert_allclose(z[:, :n_test], want[:, :n_test], rtol=1e-5, atol=1e-4)
    assert not np.any(z[:, n_test:])


@pytest.mark.skipif(os.environ.get(native.ENV) == "0", reason="native step switched off")
def test_the_native_step_builds_where_there_is_a_compiler():
    """A source that stops compiling must fail here, not quietly turn the native tests into skips."""
    if native.find_compiler() is None:
        pytest.skip("no C++ compiler")
    assert native.available()


def test_the_build_key_changes_with_the_resolved_target(monkeypatch):
    """CPUs whose `-march=native` resolves to different instruction sets never share a library."""
    resolved = {"now": 'cc1plus "-march=znver4" -mavx2 -mfma -mavx512f'}
    monkeypatch.setattr(native, "_target", lambda compiler, flags: resolved["now"])
    monkeypatch.delenv(native.FLAGS_ENV, raising=False)
    with_avx512 = native.build_key("c++")
    assert native.build_key("c++") == with_avx512
    resolved["now"] = 'cc1plus "-march=znver4" -mavx2 -mfma -mno-avx512f'
    assert native.build_key("c++") != with_avx512
    resolved["now"] = 'cc1plus "-march=znver4" -mavx2 -mfma -mavx512f'
    monkeypatch.setenv(native.FLAGS_ENV, "-mno-avx512f")  # extra flags are part of the key too
    assert native.build_key("c++") != with_avx512


def test_the_compiler_resolves_march_native():
    """The key reads the target from the driver: GCC names the CPU and ISA flags, clang -target-cpu."""
    compiler = native.find_compiler()
    if compiler is None:
        pytest.skip("no C++ compiler")
    text = native._target(compiler, native.FLAG_SETS[0])
    if "-target-cpu" not in text and not re.search(r"-march=(?!native)\w", text):
        pytest.skip(f"{compiler} does not print its resolved target with -###")
    assert native._target(compiler, [*native.FLAG_SETS[0], "-mno-avx512f"]) != text
