"""Wall time and peak memory of one `neuco-jax evaluate` process on demo-sized data.

Generates the synthetic benchmark once (13,260 ids, 11 tasks, D=1024), then runs
`neuco-jax evaluate` at the reference's default config (40 folds, 10 epochs,
batch 64) as a child process, and reports its stage times and peak RSS.

    python scripts/bench_evaluate.py [--data DIR] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuco_jax.synthetic import make_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data")
    parser.add_argument("--method", default="method_a")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    if not (args.data / "ground_truth.json").exists():
        make_benchmark(args.data)
    config = Path(__file__).resolve().parents[1] / "configs" / "linear.yaml"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "neuco_jax", "evaluate", "--annotation_path", str(args.data / "labels"),
                   "--submission_file", str(args.data / "submissions" / f"{args.method}.csv"),
                   "--output_dir", out, "--config", str(config)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
        stages = re.search(r"\((load .*)\)", proc.stdout).group(1)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"run {i + 1}: process wall {wall:.2f}s; {stages}; peak RSS so far {peak_mb:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
