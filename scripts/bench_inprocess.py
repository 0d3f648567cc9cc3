"""The research loop's costs (issue 22): repeat `Benchmark.score` calls, and a sweep that adds one method.

    python scripts/bench_inprocess.py [--data /tmp/neuco_bench_data] [--repeats 3] [--sweep 20] [--device]

1. In process: one `neuco_jax.Benchmark` at the reference's sample config (40 folds, 10 epochs of
   batch 64) scores method_a's embeddings (demo size: 13,260 ids, D=1024, read once from its CSV)
   `--repeats` times; per call the wall time and its stages (prepare, compile, train). Target: a
   repeat call within 10% of its train stage. `--device` passes a JAX array instead of numpy.
2. Incremental sweep: `--sweep` N methods swept into a fresh output folder, then N + 1 (one new
   file) into the same folder: the second sweep reuses the N runs and trains only the new one.
   Target: the second sweep costs about one method's load and training.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path


from bench import ensure_data, lscpu


def in_process(data: Path, repeats: int, device: bool) -> None:
    import jax

    from neuco_jax import Benchmark
    from neuco_jax.config import default_config
    from neuco_jax.data import load_submission

    config = default_config("linear")
    t0 = time.perf_counter()
    bench = Benchmark(data / "labels", config)
    ids, x = load_submission(data / "submissions" / "method_a.csv")
    print(f"Benchmark() and reading the CSV once: {time.perf_counter() - t0:.2f} s (not part of a call)")
    if device:
        x = jax.device_put(x)
    print("| call | wall s | prepare s | compile s | train s | wall / train |")
    print("|---|---|---|---|---|---|")
    for call in range(1, repeats + 1):
        t0 = time.perf_counter()
        result = bench.score(ids, x, method_name="method_a")
        wall = time.perf_counter() - t0
        t = result.timings
        print(f"| {call} | {wall:.2f} | {t['prepare']:.2f} | {t['compile']:.2f} | {t['train']:.2f} | "
              f"{wall / t['train']:.3f} |")
    print(f"overall Q {result.overall_q:.4f}")


def incremental(data: Path, n: int) -> None:
    from neuco_jax.config import default_config
    from neuco_jax.pipeline import sweep

    config = default_config("linear")
    files = sorted((data / "submissions").glob("*.csv"))[:n + 1]
    if len(files) < n + 1:
        raise SystemExit(f"{data}: {len(files)} submissions, need {n + 1}")
    with tempfile.TemporaryDirectory() as out:
        walls = []
        for todo in (files[:n], files):
            t0 = time.perf_counter()
            runs = sweep(todo, data / "labels", config, output_dir=out, write_leaderboard=True)
            walls.append(time.perf_counter() - t0)
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in runs[0].timings.items())
            print(f"sweep of {len(todo)}: {walls[-1]:.1f} s, reused {sum(r.reused for r in runs)}, "
                  f"trained {sum(not r.reused for r in runs)} ({stages})")
        print(f"second sweep / first: {walls[1] / walls[0]:.3f}; per method of the first: {walls[0] / n:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", action="store_true", help="score a JAX array (device-resident) instead of numpy")
    ap.add_argument("--sweep", type=int, default=20, help="methods of the first sweep (0: skip part 2)")
    args = ap.parse_args()
    ensure_data(args.data, max(args.sweep + 1, 1))
    print(f"# {datetime.date.today()} {lscpu()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    in_process(args.data, args.repeats, args.device)
    if args.sweep:
        incremental(args.data, args.sweep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
