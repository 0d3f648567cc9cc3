"""Time `neuco-jax compare` on a phase of 30 methods x 11 tasks x 40 folds at 2,000 resamples.

    python scripts/bench_compare.py [--methods 30] [--tasks 11] [--folds 40] [--resamples 2000] [--repeats 3]

Writes a synthetic phase (run folders with results_summary.json and fold_scores.csv: methods of
graded quality plus a shared per-fold effect, as paired runs have) to a temporary folder, then
times compare() (reading every run, the fold and task bootstraps, the pairs table, Friedman) and
save_comparison() (two CSVs, the CD diagram as PNG and SVG). Prints the min over repeats.
"""

import argparse
import csv
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from neuco_jax import stats
from neuco_jax.compare import compare, save_comparison
from neuco_jax.config import Config
from neuco_jax.results import write_run
from neuco_jax.scores import task_score


def write_phase(output_dir, n_methods, n_tasks, n_folds, seed=0):
    """Run folders of n_methods methods scored on the same n_folds folds of n_tasks tasks."""
    rng = np.random.default_rng(seed)
    tasks = [f"task_{t:02d}" for t in range(n_tasks)]
    fold_effect = rng.normal(0, 0.03, (n_tasks, n_folds))           # shared by every method: the pairing
    quality = np.linspace(0.7, 0.3, n_methods)
    for m in range(n_methods):
        scores = quality[m] + fold_effect + rng.normal(0, 0.01, (n_tasks, n_folds))
        run = write_run(output_dir, "bench", f"method_{m:02d}", [task_score(t, "regression", s)
                                                                  for t, s in zip(tasks, scores)],
                        Config(k_folds=n_folds), stamp="20261202_000000")
        with open(run / "fold_scores.csv", "w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(["task", "fold", "n_train", "n_test", "score"])
            for t, task in enumerate(tasks):
                out.writerows([task, k, 3600, 400, repr(float(scores[t, k]))] for k in range(n_folds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", type=int, default=30)
    ap.add_argument("--tasks", type=int, default=11)
    ap.add_argument("--folds", type=int, default=40)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        output_dir = Path(tmp)
        write_phase(output_dir, args.methods, args.tasks, args.folds)
        best = {}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                comparison = compare(output_dir, "bench", resamples=args.resamples)
            t1 = time.perf_counter()
            save_comparison(comparison, output_dir)
            t2 = time.perf_counter()
            stats.fold_bootstrap(comparison.scores, comparison.ratio, args.resamples)
            t3 = time.perf_counter()
            for key, value in (("compare", t1 - t0), ("save", t2 - t1), ("fold bootstrap alone", t3 - t2)):
                best[key] = min(best.get(key, np.inf), value)
    print(f"{args.methods} methods x {args.tasks} tasks x {args.folds} folds, {args.resamples} resamples, "
          f"{len(comparison.pairs)} pair rows; min of {args.repeats}:")
    for key, value in best.items():
        print(f"  {key}: {value:.2f} s")


if __name__ == "__main__":
    main()
