"""What sharing each epoch's shuffle across folds does to the scores, and what it saves.

For each submission and seed, trains the demo benchmark's 40 folds x 11 tasks
with `shuffle: per_fold` (the reference's independent orders) and with
`shuffle: shared`, and prints per task the mean over seeds of the fold scores'
mean and spread (std_dev) under both, their ratio, and the train time.

    python scripts/bench_shuffle.py                       # method_a and method_c, 6 seeds (~2 min on 2 cores)
    python scripts/bench_shuffle.py --seeds 3 --methods method_a

The data comes from `neuco_jax.synthetic.make_benchmark` (generated into
--data on first use, as scripts/bench.py does).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data",
                        help="benchmark folder, generated on first use (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=["method_a", "method_c"])
    parser.add_argument("--seeds", type=int, default=6, help="seeds per mode (default: %(default)s)")
    args = parser.parse_args()

    from neuco_jax import engine
    from neuco_jax.data import load_labels, load_submission, prepare
    from neuco_jax.plan import make_plan, stack_embeddings
    from neuco_jax.synthetic import make_benchmark

    if not (args.data / "labels").is_dir():
        make_benchmark(args.data, n_methods=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic labels' skipped empty rows
        tasks = load_labels(args.data / "labels")
    valid = {i for t in tasks for i in t.ids}
    for method in args.methods:
        ids, x = load_submission(args.data / "submissions" / f"{method}.csv", valid_ids=valid)
        bench = prepare(tasks, ids, x)
        emb = stack_embeddings([bench])
        stats = {}
        for shuffle in ("per_fold", "shared"):
            means, stds, train = [], [], []
            for seed in range(args.seeds):
                plan = make_plan(bench, k_folds=40, epochs=10, batch_size=64, seed=seed, shuffle=shuffle)
                compiled = engine.compile_plan(plan, emb)
                t0 = time.perf_counter()
                best = engine.run_plan(plan, emb, compiled).best[0].reshape(len(plan.entries), plan.k_folds)
                train.append(time.perf_counter() - t0)
                means.append(np.nanmean(best, axis=1))
                stds.append(np.nanstd(best, axis=1))
            stats[shuffle] = np.mean(means, axis=0), np.mean(stds, axis=0), min(train)
        (m_pf, s_pf, t_pf), (m_sh, s_sh, t_sh) = stats["per_fold"], stats["shared"]
        print(f"\n{method}: {args.seeds} seeds x 40 folds; train (min over seeds) per_fold {t_pf:.2f} s, "
              f"shared {t_sh:.2f} s")
        print(f"{'task':<24} {'mean per_fold':>13} {'mean shared':>11} {'std per_fold':>12} {'std shared':>10} "
              f"{'std ratio':>9}")
        for t, task in enumerate(bench.tasks):
            print(f"{task.name:<24} {m_pf[t]:>13.4f} {m_sh[t]:>11.4f} {s_pf[t]:>12.4f} {s_sh[t]:>10.4f} "
                  f"{s_sh[t] / s_pf[t]:>9.2f}")
        print(f"{'all tasks':<24} {m_pf.mean():>13.4f} {m_sh.mean():>11.4f} {s_pf.mean():>12.4f} "
              f"{s_sh.mean():>10.4f} {s_sh.mean() / s_pf.mean():>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
