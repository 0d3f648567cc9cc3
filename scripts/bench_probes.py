"""Time one `neuco-jax evaluate` per probe kind on the same demo-sized data (issue 21's speed targets).

Data: `neuco_jax.synthetic.make_benchmark` at the demo's size (13,260 ids, 11 tasks, D=1024),
made once into `--data`. Each probe runs its packaged sample config (`neuco-jax config <kind>`:
40 folds; knn: k = 20, euclidean, uniform; linear: 10 epochs of batch 64) as
`python -m neuco_jax evaluate` in a child process on method_a's CSV, `--repeats` times; the
script prints the wall time (min and all), the stage timings the process reports for its
fastest run, and the peak RSS of the children.

    python scripts/bench_probes.py [--probes linear knn] [--data /tmp/neuco_bench_data] [--repeats 2]
                                   [--set k_list=[5,20,50]]
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
import tempfile
import time
from pathlib import Path

import yaml

from bench import ensure_data, lscpu


def config_file(kind: str, overrides: list[str], folder: Path) -> Path:
    """The packaged sample config of a probe kind, with `key=value` probe_params overrides (YAML values)."""
    from neuco_jax.config import default_config_text

    raw = yaml.safe_load(default_config_text(kind))
    for item in overrides:
        key, _, value = item.partition("=")
        raw["probe_params"][key] = yaml.safe_load(value)
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def evaluate_once(data: Path, config: Path, out: Path) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "neuco_jax", "--quiet", "evaluate", "--annotation_path", str(data / "labels"),
           "--submission_file", str(data / "submissions" / "method_a.csv"), "--output_dir", str(out),
           "--config", str(config)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"evaluate failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1]}")
    stages = re.search(r"wall time: (.*)", proc.stdout)
    return wall, stages.group(1) if stages else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", nargs="+", default=["linear", "knn"])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="probe_params overrides for every probe kind that has the key")
    args = ap.parse_args()
    ensure_data(args.data, 1)
    print(f"# {datetime.date.today()} {lscpu()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| probe | evaluate wall (min) | all runs | stages of the fastest |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in args.probes:
            from neuco_jax.config import default_config_text

            known = yaml.safe_load(default_config_text(kind))["probe_params"]
            config = config_file(kind, [s for s in args.set if s.partition("=")[0] in known], tmp)
            runs = [evaluate_once(args.data, config, tmp / f"out_{kind}_{r}") for r in range(args.repeats)]
            wall, stages = min(runs)
            print(f"| {kind} | {wall:.1f} s | {', '.join(f'{w:.1f}' for w, _ in runs)} | {stages} |")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a child: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
