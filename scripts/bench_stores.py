"""Load time of the demo-size submission in every store format (`neuco_jax.data.load_submission`).

Converts one CSV submission (generated once with `neuco_jax.synthetic.make_benchmark`
if --data has none) to Parquet, zarr, npz and npy, then times `load_submission`
from each in a fresh process (min of --repeats), filtered to the labels' ids.

    python scripts/bench_stores.py [--data DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from neuco_jax.data import load_labels, load_submission
labels, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
valid = {i for t in load_labels(labels) for i in t.ids}
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    ids, x = load_submission(path, valid_ids=valid)
    times.append(time.perf_counter() - t0)
print(json.dumps({"min": min(times), "rows": len(ids), "dim": x.shape[1]}))
"""


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    if path.suffix == ".npy":
        files.append(path.with_suffix(".ids.txt"))
    return sum(f.stat().st_size for f in files) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data")
    parser.add_argument("--method", default="method_a")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from neuco_jax.stores import convert
    from neuco_jax.synthetic import make_benchmark

    if not (args.data / "ground_truth.json").exists():
        make_benchmark(args.data, n_methods=1)
    csv = args.data / "submissions" / f"{args.method}.csv"
    out = Path(tempfile.mkdtemp(prefix="neuco_stores_"))
    paths = {"csv": csv}
    for ext in ("parquet", "zarr", "npz", "npy"):
        paths[ext] = out / f"{args.method}.{ext}"
        convert(csv, paths[ext])
    results = {}
    for fmt, path in paths.items():
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.data / "labels"), str(path), str(args.repeats)],
                              capture_output=True, text=True, check=True)
        results[fmt] = json.loads(proc.stdout.strip().splitlines()[-1])
    base = results["csv"]["min"]
    print(f"{results['csv']['rows']} kept rows x {results['csv']['dim']} dims")
    print("| format | load_submission | vs CSV | size |")
    print("| --- | --- | --- | --- |")
    for fmt, r in results.items():
        print(f"| {fmt} | {r['min'] * 1e3:.0f} ms | {base / r['min']:.1f}x | {size_mb(paths[fmt]):.1f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
