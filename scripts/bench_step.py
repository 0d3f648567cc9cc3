"""Time one per-fold minibatch step of 40 probes: the native kernel against the pure-XLA step.

A task-sized matrix (default 4,000 rows x 1,040 floats, 17 MB: in the L3 cache
of most CPUs) and 40 probes whose minibatches of 64 rows are drawn at random;
`--rows 40` draws them all from 40 rows (cache-resident: the compute floor).
Each variant runs `--steps` steps in one compiled `fori_loop`; the min of
`--repeats` is reported, per step.

    python scripts/bench_step.py
    python scripts/bench_step.py --rows 40
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from neuco_jax import native
from neuco_jax.engine import BETAS, EPS, HIGHEST, WEIGHT_DECAY


def xla_step(x, y, idx, n, params, mu, nu, lr, c1, c2):
    """The operations of the engine's XLA step for one minibatch (gather, two products, AdamW with the
    engine's constants), regression loss, in the native step's signature."""
    b1, b2 = BETAS
    xw = jax.lax.optimization_barrier(x[idx])  # (group, window, width)
    z = jnp.einsum("gwd,gd->gw", xw, params, precision=HIGHEST)
    mask = (jnp.arange(idx.shape[1]) < n) / n
    dz = 2.0 * (z - y[idx]) * mask
    grad = jnp.einsum("gwd,gw->gd", xw, dz, precision=HIGHEST)
    mu = b1 * mu + (1 - b1) * grad
    nu = b2 * nu + (1 - b2) * grad * grad
    update = (mu / c1[:, None]) / (jnp.sqrt(nu / c2[:, None]) + EPS) + WEIGHT_DECAY * params
    return params - lr[:, None] * update, mu, nu, jnp.sum(mask * (z - y[idx]) ** 2, 1)


def time_steps(step, x, y, idx, group, repeats):
    width = x.shape[1]
    lr = jnp.full(group, 1e-3)
    c = jnp.full(group, 0.5)

    @jax.jit
    def run(x, y, idx, params):
        def body(i, carry):
            return step(x, y, idx[i], jnp.int32(idx.shape[2]), *carry, lr, c, c)[:3]
        zeros = jnp.zeros((group, width))
        return jax.lax.fori_loop(0, idx.shape[0], body, (params, zeros, zeros))

    params = jnp.full((group, width), 1e-3)
    jax.block_until_ready(run(x, y, idx, params))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(x, y, idx, params))
        best = min(best, time.perf_counter() - t0)
    return best / idx.shape[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4000, help="rows of the task matrix (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=None, help="draw minibatch rows from the first N rows only")
    parser.add_argument("--width", type=int, default=1040, help="floats per row (default: %(default)s)")
    parser.add_argument("--group", type=int, default=40, help="probes stepping together (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=300, help="steps per timed run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs; the min is reported")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(args.slots, args.width)).astype(np.float32))
    y = jnp.asarray(rng.normal(size=args.slots).astype(np.float32))
    idx = jnp.asarray(rng.integers(0, args.rows or args.slots, (args.steps, args.group, 64)).astype(np.int32))
    row_bytes = args.group * 64 * args.width * 4
    print(f"{args.group} probes x 64 rows from {args.rows or args.slots} of {args.slots} rows x {args.width} floats "
          f"({row_bytes / 1e6:.1f} MB of rows per step); {jax.devices()[0].device_kind}")
    steps = {"XLA": xla_step}
    if native.available():
        steps["native"] = native.minibatch_step(False)
    else:
        print("native step unavailable (no C++ compiler, or NEUCO_JAX_NATIVE=0)")
    for name, step in steps.items():
        t = time_steps(step, x, y, idx, args.group, args.repeats)
        print(f"{name:>6}: {t * 1e3:.3f} ms per step, {row_bytes / t / 1e9:.1f} GB/s of rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
