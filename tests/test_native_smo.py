"""The native SMO kernel (neuco_jax/native/smo.cc) against the XLA solver it replaces on one CPU device."""

import os
import subprocess
import sys

import numpy as np
import pytest

from neuco_jax import native
from neuco_jax.probes import svm

needs_native = pytest.mark.skipif(not native.available(),
                                  reason="native kernels unavailable (no C++ compiler, or NEUCO_JAX_NATIVE=0)")


def _batch(regression, seed=3, n=160, d=12):
    """One task and a batch of problems whose step counts differ by ~100x (C 1e-3..1e3, degrees 1-3,
    coef0 < 0 included: a non-convex dual is still the same deterministic path on both solvers)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    yr = x @ rng.standard_normal(d) / np.sqrt(d) + 0.2 * x[:, 0] ** 2 + 0.3 * rng.standard_normal(n)
    y = yr if regression else np.where(yr > 0, 1.0, -1.0)
    P = 14
    mask = rng.random((P, n)) > 0.15  # every problem its own training rows
    C = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), P))
    gamma = np.exp(rng.uniform(np.log(1e-3), np.log(0.5), P))
    degree = np.array([1, 2, 3] * 5)[:P]
    coef0 = rng.uniform(-1.0, 2.0, P)
    epsilon = rng.uniform(0.01, 0.5, P)
    return svm.gram_matrix(x), y, mask, C, degree, gamma, coef0, epsilon


@needs_native
@pytest.mark.parametrize("regression", [False, True], ids=["svc", "svr"])
def test_native_solver_takes_the_xla_solvers_steps(regression):
    args = _batch(regression)
    nat = svm.solve_dual(*args, regression=regression)
    xla = svm.solve_dual(*args, regression=regression, native=False)
    assert svm.uses_native(svm.jax.devices())
    assert xla.iterations.max() > 15 * xla.iterations.min()  # one batch, step counts 15x and more apart
    np.testing.assert_array_equal(nat.converged, xla.converged)
    # Both run the same selection, update and bias in float64; they differ in the last bits where the
    # compilers contract a * b + c into FMA differently. The paths stay the same until an exact tie
    # (a pair update leaves the two gradients equal in exact arithmetic, and the next choice between
    # them rests on the last bit); where they part, both still step to a violation below tol. So:
    # steps near (within 1.5x per problem, 10% summed), and values within what stopping at tol 1e-3
    # allows (test_svm.py's bounds against libsvm; the objectives, both within ~tol of the optimum, agree to
    # 1e-4 relative). The step-for-step check is the step cap's test below: before any tie the paths agree.
    ratio = nat.iterations / xla.iterations
    assert (ratio < 1.5).all() and (ratio > 1 / 1.5).all(), (nat.iterations, xla.iterations)
    assert abs(nat.iterations.sum() / xla.iterations.sum() - 1) < 0.1
    gap = np.abs(nat.decision - xla.decision)
    assert gap.mean() < 2.5e-3 and gap.max() < 1e-2, (gap.mean(), gap.max())
    np.testing.assert_allclose(nat.objective, xla.objective, rtol=1e-4, atol=1e-8)


@needs_native
@pytest.mark.parametrize("regression", [False, True], ids=["svc", "svr"])
def test_native_solver_stops_at_the_step_cap(regression):
    args = _batch(regression, seed=1)
    nat = svm.solve_dual(*args, regression=regression, max_iter=25)
    xla = svm.solve_dual(*args, regression=regression, max_iter=25, native=False)
    assert not nat.converged.any() and (nat.iterations == 25).all()
    # The first steps meet no tie: the same pairs, values equal up to FMA rounding.
    for a, b in ((nat.decision, xla.decision), (nat.coef, xla.coef), (nat.intercept, xla.intercept)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_without_native_kernels_the_solver_is_xla():
    code = ("import numpy as np, jax; from neuco_jax.probes import svm; "
            "g = np.eye(4); s = svm.solve_dual(g, np.array([1., -1, 1, -1]), np.ones((1, 4), bool), 1.0, 2, 1.0, 0.0, "
            "regression=False); print(svm.uses_native(jax.devices()), bool(s.converged[0]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, native.ENV: "0"})
    assert proc.stdout.split() == ["False", "True"]
