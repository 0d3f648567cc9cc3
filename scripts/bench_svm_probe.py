"""Where the time of `probe_type: svm` goes: every batched solve of an evaluate, with SMO steps, wall and GFLOP/s.

Runs `neuco_jax.pipeline.evaluate` in this process on a submission with an SVM
config (default: the packaged sample config, `neuco-jax config svm`, with
`--k_folds`, `--n_iter`, `--tasks` overriding it) and wraps
`neuco_jax.probes.svm.solve_dual` to record, per call (one search round of one
task): problems (folds x candidates), variables l (n, or 2n for SVR), SMO
steps (max and mean over problems), wall, and the flops it did.

Flops counted (the dominant terms, float64):
  Gram matrix   2 n^2 d per task (X X^T, numpy), once per task;
  SMO step      per problem and step: two kernel rows of n entries from the Gram
                rows, (gamma g + coef0)^degree: 2 + degree flops each (the masked
                `_poly` loop does max_degree multiplies and selects; counted at
                the problem's own degree), plus the gradient update 4 l and the
                working-set scans ~ 8 l (selection, gain): about
                2 n (2 + degree) + 12 l flops per step;
  predictions   none: decision values are read off the final gradient.
In lockstep, a chunk runs as many steps as its slowest problem; converged
problems keep computing (masked). "useful" counts each problem's own steps,
"executed" counts max steps x problems.

A matmul rate for scale: float64 and float32 GEMM 2048^3 (numpy and jax).

    python scripts/bench_svm_probe.py --data /tmp/neuco_svm_reference/data --k_folds 10 --n_iter 12 \
        --tasks crops random_cls [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def gemm_rates() -> dict:
    import jax
    import jax.numpy as jnp

    out = {}
    n = 2048
    for dtype in ("float32", "float64"):
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        best = min(_time(lambda: a @ a) for _ in range(5))
        out[f"numpy_{dtype}"] = 2 * n**3 / best / 1e9
        with jax.enable_x64(dtype == "float64"):
            x = jnp.asarray(a)
            f = jax.jit(lambda m: m @ m)
            f(x).block_until_ready()
            best = min(_time(lambda: f(x).block_until_ready()) for _ in range(5))
        out[f"jax_{dtype}"] = 2 * n**3 / best / 1e9
    return out


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/neuco_svm_reference/data"))
    ap.add_argument("--method", default="method_a")
    ap.add_argument("--config", type=Path, default=None, help="default: the packaged svm config")
    ap.add_argument("--k_folds", type=int, default=None)
    ap.add_argument("--n_iter", type=int, default=None)
    ap.add_argument("--tasks", nargs="+", default=None)
    ap.add_argument("--output_dir", type=Path, default=Path("/tmp/neuco_svm_probe_bench"))
    ap.add_argument("--no_gemm", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import dataclasses

    from neuco_jax.config import default_config_text, load_config
    from neuco_jax.pipeline import evaluate
    from neuco_jax.probes import svm

    if args.config is None:
        path = args.output_dir / "svm.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(default_config_text("svm"))
        args.config = path
    config = load_config(args.config)
    changes = {}
    if args.k_folds is not None:
        changes["k_folds"] = args.k_folds
    if args.tasks is not None:
        changes["task_filter"] = tuple(args.tasks)
    if changes:
        config = dataclasses.replace(config, **changes)
    if args.n_iter is not None:
        config = dataclasses.replace(config, svm=dataclasses.replace(config.svm, n_iter=args.n_iter))

    calls = []
    solve, gram = svm.solve_dual, svm.gram_matrix
    gram_s = []

    def timed_gram(x):
        t = time.perf_counter()
        g = gram(x)
        gram_s.append((x.shape[0], x.shape[1], time.perf_counter() - t))
        return g

    def timed_solve(gram_, y, train_mask, C, degree, gamma, coef0, epsilon=None, *, regression, **kw):
        t = time.perf_counter()
        sol = solve(gram_, y, train_mask, C, degree, gamma, coef0, epsilon, regression=regression, **kw)
        wall = time.perf_counter() - t
        n = gram_.shape[0]
        l = 2 * n if regression else n
        deg = np.broadcast_to(np.asarray(degree, np.float64), (len(train_mask),))
        per_step = 2 * n * (2 + deg) + 12 * l
        it = sol.iterations.astype(np.float64)
        calls.append({"n": n, "l": l, "problems": len(train_mask), "regression": regression, "wall": wall,
                      "steps_max": int(it.max()), "steps_mean": float(it.mean()),
                      "converged": int(sol.converged.sum()),
                      "flops_useful": float((per_step * it).sum()),
                      "flops_executed": float((per_step * it.max()).sum())})
        c = calls[-1]
        print(f"  solve {len(calls)}: n {n} {'SVR' if regression else 'SVC'}, {c['problems']} problems, "
              f"{wall:.1f} s, steps max {c['steps_max']} mean {c['steps_mean']:.0f}, "
              f"converged {c['converged']}/{c['problems']}", flush=True)
        return sol

    svm.solve_dual, svm.gram_matrix = timed_solve, timed_gram
    submission = args.data / "submissions" / f"{args.method}.csv"
    t0 = time.perf_counter()
    run, = evaluate(submission, args.data / "labels", config, output_dir=args.output_dir, phase="svm_probe_bench")
    total = time.perf_counter() - t0

    solve_s = sum(c["wall"] for c in calls)
    gram_flops = sum(2 * n * n * d for n, d, _ in gram_s)
    useful = sum(c["flops_useful"] for c in calls)
    executed = sum(c["flops_executed"] for c in calls)
    print(f"evaluate in-process {total:.1f} s; timings {run.timings}")
    print(f"{len(calls)} solves, {sum(c['problems'] for c in calls)} problems, solver wall {solve_s:.1f} s; "
          f"Gram {sum(s for *_, s in gram_s):.2f} s ({gram_flops / 1e9:.1f} GFLOP)")
    by_task = {}
    for c in calls:
        by_task.setdefault((c["n"], c["regression"]), []).append(c)
    for (n, reg), cs in by_task.items():
        print(f"  n {n} {'SVR' if reg else 'SVC'}: {len(cs)} solves, {sum(c['problems'] for c in cs)} problems, "
              f"{sum(c['wall'] for c in cs):.1f} s; steps max per solve {[c['steps_max'] for c in cs]}, "
              f"mean {[round(c['steps_mean']) for c in cs]}; not converged "
              f"{sum(c['problems'] - c['converged'] for c in cs)}")
    print(f"SMO flops: useful {useful / 1e9:.1f} GFLOP ({useful / solve_s / 1e9:.2f} GFLOP/s), executed in lockstep "
          f"{executed / 1e9:.1f} GFLOP ({executed / solve_s / 1e9:.2f} GFLOP/s)")
    report = {"evaluate_s": total, "timings": run.timings, "calls": calls, "gram": gram_s, "solve_s": solve_s,
              "gram_flops": gram_flops, "smo_flops_useful": useful, "smo_flops_executed": executed}
    if not args.no_gemm:
        report["gemm_gflops"] = gemm_rates()
        print("GEMM 2048^3 GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in report["gemm_gflops"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
