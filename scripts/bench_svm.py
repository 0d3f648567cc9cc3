"""Time the batched SVM solver (neuco_jax.probes.svm.cv_scores) against a loop of scikit-learn fits on one task.

    python scripts/bench_svm.py [--rows 1000] [--dim 1024] [--folds 5] [--task classification|regression]

Synthetic task (Gaussian embeddings, a noisy quadratic target); candidates
span the reference's space (C 1e-2..1e2, degrees 2 and 3, gamma 'scale' or
set, coef0 0..1). Prints wall times, SMO steps, and the largest per-fold
metric gap to scikit-learn.
"""

import argparse
import time

import numpy as np
from sklearn.metrics import f1_score, r2_score
from sklearn.svm import SVC, SVR

from neuco_jax.plan import shuffle_split
from neuco_jax.probes import svm

CANDIDATES = [svm.Candidate(C=0.01, degree=2), svm.Candidate(C=1.0, degree=2),
              svm.Candidate(C=100.0, degree=2, gamma=1e-4, coef0=1.0), svm.Candidate(C=1.0, degree=3),
              svm.Candidate(C=10.0, degree=3, gamma=5e-4, coef0=0.5)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--task", choices=("classification", "regression"), default="classification")
    args = ap.parse_args()
    regression = args.task == "regression"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    z = x[:, :32] @ rng.standard_normal(32) / np.sqrt(32) + 0.3 * x[:, 0] ** 2
    y = z + 0.3 * rng.standard_normal(args.rows) if regression else (z + 0.5 * rng.standard_normal(args.rows) > 0) * 1.0
    train, test = shuffle_split(args.rows, args.folds)

    for run in ("first call (compiles)", "second call"):
        t = time.perf_counter()
        out = svm.cv_scores(x, y, train, test, CANDIDATES, regression=regression)
        print(f"neuco_jax {run}: {time.perf_counter() - t:.2f} s for {out.metric.size} fits; "
              f"converged {int(out.converged.sum())}/{out.converged.size}")
    y_svm = y if regression else np.where(y > 0, 1, -1)
    metric = np.empty_like(out.metric)
    t = time.perf_counter()
    for k in range(args.folds):
        for c, cand in enumerate(CANDIDATES):
            kw = {"epsilon": cand.epsilon} if regression else {}
            model = (SVR if regression else SVC)(kernel="poly", C=cand.C, degree=cand.degree, coef0=cand.coef0,
                                                 gamma="scale" if cand.gamma is None else cand.gamma, **kw)
            pred = model.fit(x[train[k]], y_svm[train[k]]).predict(x[test[k]])
            metric[k, c] = (r2_score(y_svm[test[k]], pred) if regression
                            else f1_score(y_svm[test[k]], pred, zero_division=0.0))
    sk = time.perf_counter() - t
    print(f"scikit-learn loop: {sk:.2f} s for {metric.size} fits ({1000 * sk / metric.size:.0f} ms per fit)")
    gap = np.abs(out.metric - metric)
    print(f"per-fold {'R2' if regression else 'F1'} gap to scikit-learn: mean {gap.mean():.4f}, max {gap.max():.4f}; "
          f"fold scores (max over candidates) mean gap {np.abs(out.fold_scores - metric.max(1)).mean():.4f}")


if __name__ == "__main__":
    main()
