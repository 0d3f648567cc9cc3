"""Time the ridge probe (`probe_type: ridge`) on demo-sized data: one method, then a 100-method sweep.

Data: `neuco_jax.synthetic.make_benchmark` at the demo's size (13,260 ids, 11
tasks, D=1024). Config: the packaged ridge config (40 folds, alphas 0.1 / 1 /
10: 440 RidgeCV / RidgeClassifierCV fits of three alphas each per method).

1. one method: `python -m neuco_jax evaluate` as a process on method_a's CSV
   (`--repeats`, min and all reported), with the stage timings it prints;
2. a sweep of `--methods` (default 100) synthetic submissions: method_a's
   embedding mixed with independent Gaussian noise at 100 levels (so quality
   falls with the index; each its own file, `.npy` + `.ids.txt`, written once
   into `--data`/ridge_sweep_<N>_<format>/), `python -m neuco_jax sweep --submissions_dir`
   as one process: wall and peak RSS.

`--task_filter` restricts both to the named tasks (the config's `task_filter`): tasks are
independent programs, so a sweep over one task times the sweep's machinery at full method count
where all eleven would take hours.

`--routes TASK` instead times every route of the ridge probe (neuco_jax.probes.ridge: eigh,
cholesky, woodbury) in this process on one task of method_a, its 40 folds as `run` draws them,
for each count in `--alphas` (that many alphas, log-spaced from 0.1 to 10; 3 is the packaged
0.1 / 1 / 10): the second call's seconds (the first compiles), the route's estimated cost
(`route_costs`, matrix-product GFLOP), the route `fit_task` picks, and the largest weight
difference from the eigh route (every route must choose the same alphas).

    python scripts/bench_ridge.py [--data /tmp/neuco_bench_data] [--repeats 3] [--methods 100] [--format npy]
                                  [--task_filter landcover_forest]
    python scripts/bench_ridge.py --routes landcover_forest [--alphas 1 3 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import yaml


def ensure_data(folder: Path) -> None:
    from neuco_jax.synthetic import make_benchmark

    if not (folder / "ground_truth.json").exists():
        make_benchmark(folder, n_methods=3)


def ensure_sweep(folder: Path, source: Path, n: int, fmt: str) -> Path:
    """n submissions: x * sqrt(1 - s) + noise * sqrt(s), s from 0 to 0.99, seeded per method."""
    from neuco_jax.stores import read_embeddings, write_embeddings

    out = folder / f"ridge_sweep_{n}_{fmt}"
    if out.is_dir() and len(list(out.glob(f"*.{fmt}"))) == n:
        return out
    out.mkdir(parents=True, exist_ok=True)
    ids, x = read_embeddings(source)
    x = np.asarray(x, np.float32)
    for i, share in enumerate(np.linspace(0.0, 0.99, n)):
        noise = np.random.default_rng(1000 + i).standard_normal(x.shape, dtype=np.float32)
        write_embeddings(out / f"m{i:03d}.{fmt}", ids, np.sqrt(1 - share) * x + np.sqrt(share) * noise)
    return out


def run(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited {proc.returncode} (its log: {log})")
    return wall


def time_routes(data: Path, task_name: str, alpha_counts: list[int], k_folds: int, seed: int) -> None:
    """Every ridge route on one task of method_a (module docstring), one line per route and alpha count."""
    from neuco_jax.data import load_labels, load_submission, prepare
    from neuco_jax.probes import ridge
    from neuco_jax.probes.folds import shuffle_folds

    with warnings.catch_warnings():  # the demo labels' skipped empty cells, one warning per file
        warnings.simplefilter("ignore", UserWarning)
        tasks = load_labels(data / "labels")
        ids, raw = load_submission(data / "submissions" / "method_a.csv", valid_ids={i for t in tasks for i in t.ids})
    bench = prepare(tasks, ids, raw)
    t = next(i for i, task in enumerate(bench.tasks) if task.name == task_name)
    task = bench.tasks[t]
    train, test, _ = shuffle_folds(bench, t, k_folds, seed)
    x = bench.x[bench.rows[t]]
    (n, d), (k, m) = x.shape, train.shape
    print(f"{task_name}: n {n}, d {d}, k {k}, m {m}, r {n - m}", flush=True)
    for count in alpha_counts:
        alphas = tuple(np.logspace(-1, 1, count)) if count > 1 else (1.0,)
        costs = ridge.route_costs(n, m, d, k, count)
        fits = {}
        for name in costs:
            ridge._fit(x, task.labels, task.is_classification, train, test, alphas, name)  # compile
            t0 = time.perf_counter()
            fits[name] = ridge._fit(x, task.labels, task.is_classification, train, test, alphas, name)
            wall = time.perf_counter() - t0
            same = np.array_equal(fits[name].alpha, fits["eigh"].alpha)
            dw = np.abs(fits[name].w - fits["eigh"].w).max()
            print(f"  {count} alphas, {name}: {wall:.2f} s ({wall / k:.3f} s per fold), estimated "
                  f"{costs[name] / 1e9:.0f} GFLOP; alphas as eigh: {same}, max |w - w_eigh| {dw:.1e}", flush=True)
            if not same:
                raise SystemExit(f"the {name} route chose other alphas than eigh on {task_name}")
        print(f"  {count} alphas: fit_task picks {ridge.route(n, m, d, k, count)}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/neuco_bench_data"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/neuco_bench_ridge"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", type=int, default=100)
    ap.add_argument("--format", default="npy", choices=("npy", "parquet", "csv", "npz"))
    ap.add_argument("--skip_sweep", action="store_true")
    ap.add_argument("--task_filter", nargs="+", default=None, help="only these tasks (default: all)")
    ap.add_argument("--routes", metavar="TASK", default=None, help="time every ridge route on this task instead")
    ap.add_argument("--alphas", nargs="+", type=int, default=[3], help="with --routes: alpha counts to time")
    args = ap.parse_args()

    from neuco_jax.config import default_config_text

    ensure_data(args.data)
    if args.routes:
        print(f"{datetime.date.today()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        config = yaml.safe_load(default_config_text("ridge"))
        time_routes(args.data, args.routes, args.alphas, config["k_folds"], config["seed"])
        print(f"load average {os.getloadavg()[0]:.1f}")
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    config = args.work / "ridge.yaml"
    text = default_config_text("ridge")
    if args.task_filter:
        text = yaml.safe_dump({**yaml.safe_load(text), "task_filter": list(args.task_filter)}, sort_keys=False)
    config.write_text(text)
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    print(f"{datetime.date.today()}, {os.cpu_count()} cores ({model})")

    walls = []
    for r in range(args.repeats):
        log = args.work / f"evaluate_{stamp}_{r}.log"
        walls.append(run([sys.executable, "-m", "neuco_jax", "--quiet", "evaluate", "--annotation_path",
                          str(args.data / "labels"), "--submission_file",
                          str(args.data / "submissions" / "method_a.csv"), "--config", str(config),
                          "--output_dir", str(args.work / "results"), "--phase", f"one_{stamp}"], log))
        stages = [line for line in log.read_text().splitlines() if re.search(r"\d+(\.\d+)?\s*s", line)]
        print(f"evaluate process {r + 1}: {walls[-1]:.2f} s; " + " | ".join(stages[-2:])[:300], flush=True)
    print(f"one method, evaluate process: min {min(walls):.2f} s (all: {', '.join(f'{w:.2f}' for w in walls)})")

    if not args.skip_sweep:
        t0 = time.perf_counter()
        folder = ensure_sweep(args.data, args.data / "submissions" / "method_a.csv", args.methods, args.format)
        print(f"{args.methods} submissions in {folder} ({time.perf_counter() - t0:.1f} s to make)", flush=True)
        log = args.work / f"sweep_{stamp}.log"
        wall = run([sys.executable, "-m", "neuco_jax", "--quiet", "sweep", "--annotation_path",
                    str(args.data / "labels"), "--submissions_dir", str(folder), "--config", str(config),
                    "--output_dir", str(args.work / "results"), "--phase", f"sweep_{stamp}"], log)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
        stages = [line for line in log.read_text().splitlines() if re.search(r"\d+(\.\d+)?\s*s", line)]
        print(f"{args.methods}-method sweep process: {wall:.1f} s ({wall / args.methods:.2f} s per method), "
              f"peak RSS {rss:.2f} GB; " + " | ".join(stages[-2:])[:400])
    return 0


if __name__ == "__main__":
    sys.exit(main())
