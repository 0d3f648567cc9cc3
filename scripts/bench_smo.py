"""Time the SVM dual solver's two paths (native CPU kernel, XLA lockstep loop) and scikit-learn on the same problems.

    python scripts/bench_smo.py [--problems 50] [--svr_rows 458] [--svc_rows 542] [--rank 16] [--max_iter 60000]
                                [--no_xla]

Per task (an SVR task of --svr_rows rows, an SVC task of --svc_rows rows;
synthetic embeddings of rank --rank plus noise, a noisy quadratic target;
low rank makes the duals as slow to solve as real embeddings'): --problems
problems, each a 90% training split of the rows and a candidate drawn
log-uniformly over C 1e-3..1e3 and gamma 1e-4..10, degree 2 or 3, coef0
uniform over -1..2 (the reference's sample search space). Prints, per path,
the wall time, the SMO steps summed over problems (and the slowest problem's),
microseconds per problem-step (wall / summed steps), and whether the two
paths took the same steps. --max_iter caps every path (the XLA path steps in
lockstep to its slowest problem: uncapped, one slow problem costs minutes);
then scikit-learn's SVC / SVR (libsvm, default
shrinking) per-fit time and steps on the first --sklearn_fits problems.
"""

import argparse
import time

import numpy as np
from sklearn.svm import SVC, SVR

from neuco_jax.probes import svm


def problems(rows, dim, rank, count, regression, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, dim)) / np.sqrt(rank)
    x += 0.3 * rng.standard_normal((rows, dim))
    z = x[:, :16] @ rng.standard_normal(16) / 4 + 0.3 * x[:, 0] ** 2
    y = z + 0.3 * rng.standard_normal(rows) if regression else np.where(z + 0.5 * rng.standard_normal(rows) > 0, 1.0,
                                                                        -1.0)
    mask = np.zeros((count, rows), bool)
    for p in range(count):
        mask[p, rng.permutation(rows)[: int(0.9 * rows)]] = True
    C = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), count))
    gamma = np.exp(rng.uniform(np.log(1e-4), np.log(10.0), count))
    degree = rng.choice([2, 3], count)
    coef0 = rng.uniform(-1.0, 2.0, count)
    return x, y, mask, C, degree, gamma, coef0


def timed(repeats, fn):
    """The minimum wall over `repeats` calls (the machine is shared) and the last result."""
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
    return min(walls), walls, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--svr_rows", type=int, default=458)
    ap.add_argument("--svc_rows", type=int, default=542)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--max_iter", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--xla_repeats", type=int, default=1)
    ap.add_argument("--sklearn_fits", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no_xla", action="store_true", help="skip the XLA path (slow: lockstep)")
    args = ap.parse_args()
    for regression, rows in ((True, args.svr_rows), (False, args.svc_rows)):
        x, y, mask, C, degree, gamma, coef0 = problems(rows, args.dim, args.rank, args.problems, regression,
                                                     args.seed)
        gram = svm.gram_matrix(x)
        l = 2 * rows if regression else rows
        print(f"\n{'SVR' if regression else 'SVC'}: {args.problems} problems, n {rows} (l {l}), dim {args.dim}")

        def solve(native):
            return svm.solve_dual(gram, y, mask, C, degree, gamma, coef0, regression=regression, native=native,
                                  max_iter=args.max_iter)

        solve(True)  # compile (and build the kernel on first use)
        paths = [("native", True, args.repeats)] + ([] if args.no_xla else [("XLA", False, args.xla_repeats)])
        results = {}
        for name, native, repeats in paths:
            if not native:
                svm.solve_dual(gram, y, mask[:1], C[:1], degree[:1], gamma[:1], coef0[:1], regression=regression,
                               native=False, max_iter=1)  # compile
            wall, walls, sol = timed(repeats, lambda: solve(native))  # noqa: B023
            results[name] = sol
            steps = int(sol.iterations.sum())
            print(f"  {name}: {wall:.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}); steps total {steps}, "
                  f"mean {steps / args.problems:.0f}, max {sol.iterations.max()}; {1e6 * wall / steps:.2f} us per "
                  f"problem-step; converged {int(sol.converged.sum())}/{args.problems}", flush=True)
        if len(results) == 2:
            a, b = results["native"], results["XLA"]
            same = a.iterations == b.iterations
            print(f"  native vs XLA: same steps on {int(same.sum())}/{args.problems} problems; decision max abs gap "
                  f"{np.abs(a.decision - b.decision).max():.2e} (scale {np.abs(b.decision).max():.2e})")
        fits, walls, sk_steps = min(args.sklearn_fits, args.problems), [], []
        for p in range(fits):
            model = (SVR if regression else SVC)(kernel="poly", C=C[p], degree=int(degree[p]), gamma=gamma[p],
                                                 coef0=coef0[p])
            t = time.perf_counter()
            model.fit(x[mask[p]], y[mask[p]])
            walls.append(time.perf_counter() - t)
            sk_steps.append(int(np.max(model.n_iter_)))
        ours = results["native"].iterations[:fits]
        print(f"  scikit-learn (one core, shrinking), first {fits} problems: {1e3 * np.mean(walls):.1f} ms per fit, "
              f"{sum(walls):.2f} s in all; steps mean {np.mean(sk_steps):.0f} (ours {ours.mean():.0f}); "
              f"{1e6 * sum(walls) / sum(sk_steps):.2f} us per step", flush=True)


if __name__ == "__main__":
    main()
