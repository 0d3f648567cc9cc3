"""Where an SVM search round's time goes: SMO steps per problem (libsvm's count) x neuco_jax's cost per lockstep step.

For each task given, on demo-sized data with the reference's sample SVM space:

1. the first search round's candidates, exactly as neuco_jax draws them
   (`neuco_jax.probes.search`: a Latin hypercube of `n_initial_points`, seeded
   with the config's seed), resolved per fold as `neuco_jax.probes.svm` does;
2. for each candidate on fold 0 (`--folds` folds), scikit-learn's SVC / SVR
   (libsvm, the reference's solver) with `shrinking=False`: its step count
   `n_iter_` (neuco_jax's solver takes libsvm's working pairs, so about as many
   steps; tests/test_svm.py) and its fit time (default shrinking, as the
   reference fits);
3. neuco_jax's batched solver (`solve_dual`) on the round's real problems
   (folds x candidates, one vmapped `lax.while_loop`) capped at `--probe_steps`
   steps: the wall per lockstep step (after a compile call);
4. the round's predicted wall: max steps over its problems x wall per step,
   since a chunk steps until its slowest problem converges (or hits the cap,
   max(1e6, 100 l)).

    python scripts/svm_lockstep.py --data /tmp/neuco_svm_reference/data --tasks crops random_cls --k_folds 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/neuco_svm_reference/data"))
    ap.add_argument("--method", default="method_a")
    ap.add_argument("--tasks", nargs="+", default=["crops", "random_cls"])
    ap.add_argument("--k_folds", type=int, default=10)
    ap.add_argument("--folds", type=int, default=1, help="folds fitted with scikit-learn per candidate")
    ap.add_argument("--probe_steps", type=int, default=2000)
    args = ap.parse_args()

    import yaml
    from sklearn.svm import SVC, SVR

    import tempfile

    from neuco_jax.config import default_config_text, load_config
    from neuco_jax.data import load_labels, load_submission, prepare
    from neuco_jax.probes import search, svm
    from neuco_jax.probes.folds import shuffle_folds

    raw = yaml.safe_load(default_config_text("svm"))
    raw["k_folds"] = args.k_folds
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "svm.yaml"
        path.write_text(yaml.safe_dump(raw))
        config = load_config(path)
    tasks = load_labels(args.data / "labels")
    ids, x = load_submission(args.data / "submissions" / f"{args.method}.csv",
                             valid_ids={i for t in tasks for i in t.ids})
    bench = prepare(tasks, ids, x, task_filter=tuple(args.tasks))
    params = config.svm
    for t, task in enumerate(bench.tasks):
        regression = not task.is_classification
        train, test, *_ = shuffle_folds(bench, t, config.k_folds, config.seed)
        data = svm.task_data(bench.x[bench.rows[t]], task.labels, train, test, regression)
        first = []

        def stop(points):
            first.extend(points)
            raise StopIteration

        try:
            search.search(params, regression, config.seed, stop)
        except StopIteration:
            pass
        cands = [svm.Candidate(**p) for p in first]
        n = len(data.y)
        l = 2 * n if regression else n
        print(f"\n{task.name}: {n} rows ({train.shape[1]} training), {'SVR' if regression else 'SVC'}, l {l}; "
              f"round 0: {len(cands)} candidates x {config.k_folds} folds", flush=True)
        steps = []
        for c in cands:
            row = []
            for f in range(args.folds):
                gamma = svm.resolved_gamma(c, data.scale[f])
                kw = {"epsilon": c.epsilon} if regression else {}
                make = lambda shrinking: (SVR if regression else SVC)(  # noqa: E731
                    kernel="poly", C=c.C, degree=c.degree, gamma=gamma, coef0=c.coef0, shrinking=shrinking, **kw)
                xs, ys = data.x[data.train[f]], data.y[data.train[f]]
                t0 = time.perf_counter()
                m = make(True).fit(xs, ys)
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                m0 = make(False).fit(xs, ys)
                row.append((int(np.max(m0.n_iter_)), fit_s, time.perf_counter() - t0, int(np.max(m.n_iter_))))
            steps.append(max(r[0] for r in row))
            print(f"  C {c.C:.3g} degree {c.degree} gamma {c.gamma:.3g} coef0 {c.coef0:.2f}"
                  + (f" eps {c.epsilon}" if regression else "")
                  + f": libsvm steps (no shrinking) {', '.join(str(r[0]) for r in row)}; with shrinking "
                  f"{', '.join(str(r[3]) for r in row)}; fit {', '.join(f'{r[1]:.2f}' for r in row)} s "
                  f"(no shrinking {', '.join(f'{r[2]:.2f}' for r in row)} s)", flush=True)

        # neuco_jax's cost per lockstep step on the round's real problems (all folds x candidates).
        folds = config.k_folds
        fold_of = np.repeat(np.arange(folds), len(cands))
        cand = [cands[c] for c in np.tile(np.arange(len(cands)), folds)]
        gamma = np.array([svm.resolved_gamma(c, data.scale[f]) for f, c in zip(fold_of, cand)])
        C, degree, coef0, eps = (np.array([getattr(c, k) for c in cand]) for k in ("C", "degree", "coef0", "epsilon"))
        timings = []
        for cap in (args.probe_steps, args.probe_steps, 2 * args.probe_steps):
            t0 = time.perf_counter()
            sol = svm.solve_dual(data.gram, data.y, data.mask[fold_of], C, degree, gamma, coef0, eps,
                                 regression=regression, max_iter=cap)
            timings.append((cap, time.perf_counter() - t0, int(sol.iterations.max())))
        (c1, w1, _), (c2, w2, _) = timings[1], timings[2]
        per_step = (w2 - w1) / (c2 - c1)
        cap = svm.default_max_iter(l)
        worst = min(max(steps), cap)
        print(f"  neuco_jax solve_dual, {len(cand)} problems: {timings[0][1]:.2f} s at cap {timings[0][0]} (with "
              f"compile), {w1:.2f} s at {c1}, {w2:.2f} s at {c2}: {1e3 * per_step:.3f} ms per lockstep step "
              f"({1e6 * per_step / len(cand):.1f} us per problem-step)")
        print(f"  round 0 predicted: slowest problem {max(steps)} steps (cap {cap}) x {1e3 * per_step:.3f} ms = "
              f"{worst * per_step:.0f} s; libsvm's steps over the candidates: {sorted(steps)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
