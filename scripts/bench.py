"""Benchmark of one `neuco-jax evaluate` on demo-sized data against the machine's own limits.

Generates the synthetic benchmark once (`neuco_jax.synthetic.make_benchmark`:
13,260 ids, 11 tasks, D=1024) and, at the reference's default config (40 folds,
10 epochs, batch 64, lr 1e-3):

1. measures the machine: memory bandwidth (numpy copy of a 1 GiB array, read +
   write bytes, one thread and one thread per core), the rate of gathering
   minibatch rows out of one task's cache-resident matrix, and float32 GEMM
   (2048^3) in JAX and numpy;
2. times `neuco_jax.pipeline.evaluate` in a child process (stage timings:
   load, compile, train, write) and the whole `python -m neuco_jax evaluate`
   process, min over repeats, each with its peak RSS;
3. counts the training work (row visits = sum over tasks of
   k_folds * epochs * n_train; bytes = visits * D * 4; flops = visits * 4 * D:
   forward dot and gradient axpy) and reports the train stage's GB/s and
   GFLOP/s against the machine's figures;
4. with `--torch` (torch installed), times the per-fold PyTorch loop of
   `scripts/torch_reference.py` as a process, extrapolates from its first
   `--torch_tasks` tasks when given, prints the torch / neuco_jax ratio and
   checks that the per-task mean scores agree statistically;
5. times an 8-method `neuco_jax.pipeline.sweep` as a process.

Ends with markdown tables for docs/benchmarks.md.

    python scripts/bench.py                                   # neuco_jax only (~1.5 min on 2 cores)
    python scripts/bench.py --torch --torch_tasks 3           # + torch on 3 tasks, extrapolated (+30 s)
    python scripts/bench.py --torch --torch_repeats 2         # + torch on all 11 tasks (+100 s per repeat)
    python scripts/bench.py --data /tmp/neuco_bench_data --repeats 3 --method method_a
    python scripts/bench.py --shuffle shared                  # the folds of a task share each epoch's shuffle
    python scripts/bench.py --xla_step                        # the pure-XLA step, not the native kernel

Heavy work runs in child processes and this process stays small: a child
reports at least the peak RSS of the process that started it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "linear.yaml"
TORCH_SCRIPT = ROOT / "scripts" / "torch_reference.py"
SWEEP_METHODS = 8
GiB = 1 << 30


# ---------------------------------------------------------------- data and work


def ensure_data(folder: Path, n_submissions: int) -> float:
    """Make the demo-sized benchmark in `folder` unless it has `n_submissions`; seconds spent generating."""
    from neuco_jax.synthetic import make_benchmark

    truth = folder / "ground_truth.json"
    if truth.exists() and json.loads(truth.read_text())["params"]["n_methods"] + 1 >= n_submissions:
        return 0.0
    t0 = time.perf_counter()
    # Methods have independent random streams: adding methods leaves existing files unchanged.
    make_benchmark(folder, n_methods=max(3, n_submissions - 1))
    return time.perf_counter() - t0


def count_work(labels: Path, submission: Path, k_folds: int, epochs: int) -> dict:
    """Rows visited by training and held-out scoring, from the rows each task joins with the submission."""
    from neuco_jax.data import load_labels, load_submission, prepare

    tasks = load_labels(labels)
    ids, x = load_submission(submission, valid_ids={i for t in tasks for i in t.ids})
    bench = prepare(tasks, ids, x)
    n = {t.name: len(r) for t, r in zip(bench.tasks, bench.rows)}
    n_train = {name: m - math.ceil(0.1 * m) for name, m in n.items()}
    dim = x.shape[1]
    visits = k_folds * epochs * sum(n_train.values())
    test_visits = k_folds * epochs * sum(n[t] - n_train[t] for t in n)
    return {"dim": dim, "n": n, "n_train": n_train, "visits": visits, "test_visits": test_visits,
            "bytes": visits * dim * 4, "flops": visits * 4 * dim}


# ---------------------------------------------------------------- the machine


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown cpu")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    import jax

    devices = jax.devices()
    kind = devices[0].device_kind
    device = devices[0].platform + (f" {kind}" if kind != devices[0].platform else "") \
        + (f" x{len(devices)}" if len(devices) > 1 else "")
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": mem_kb / 1e6, "jax": jax.__version__, "device": device}


def lscpu() -> str:
    """lscpu's model name and whether the CPU has AVX-512 (its flags)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "lscpu unavailable"
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    return f"{model}, {'AVX-512 (' + ' '.join(avx512) + ')' if avx512 else 'no AVX-512'}"


def best_time(fn, repeats: int) -> float:
    """Min wall seconds of fn() over repeats, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def copy_bandwidth(threads: int, repeats: int, n_bytes: int = GiB) -> float:
    """GB/s of a numpy copy of n_bytes split over `threads` threads, counting read + write bytes."""
    src = np.ones(n_bytes // 4, np.float32)
    dst = np.zeros_like(src)  # touched, so page faults stay out of the timing
    bounds = np.linspace(0, len(src), threads + 1).astype(int)
    parts = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:  # numpy releases the GIL while copying
        t = best_time(lambda: list(pool.map(lambda p: np.copyto(*p), parts)), repeats)
    return 2 * n_bytes / t / 1e9


def gather_bandwidth(n_rows: int, dim: int, threads: int, repeats: int, rows_per_step: int = 40 * 64) -> float:
    """GB/s of rows gathered (bytes read) from one task-sized (n_rows, dim) float32 matrix.

    The engine's access pattern: each step reads a random minibatch of rows for
    every fold of a task out of a matrix small enough to stay in the L3 cache.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_rows, dim), dtype=np.float32)
    idx = rng.integers(0, n_rows, (64, rows_per_step))
    parts = [(i, np.empty((rows_per_step, dim), np.float32)) for i in np.array_split(idx, threads)]

    def gather(part):
        steps, out = part
        for i in steps:  # mode="clip": with "raise", take copies through a buffer
            np.take(x, i, axis=0, out=out, mode="clip")

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        t = best_time(lambda: list(pool.map(gather, parts)), repeats)
    return idx.size * dim * 4 / t / 1e9


def gemm_rates(repeats: int, n: int = 2048) -> dict:
    """float32 GEMM GFLOP/s (2 n^3 flops) in JAX (jit, default device) and numpy."""
    import jax

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    ja, jb = jax.device_put(a), jax.device_put(b)
    matmul = jax.jit(lambda p, q: p @ q)
    t_jax = best_time(lambda: matmul(ja, jb).block_until_ready(), repeats)
    t_np = best_time(lambda: a @ b, repeats)
    return {"jax": 2 * n**3 / t_jax / 1e9, "numpy": 2 * n**3 / t_np / 1e9}


# ---------------------------------------------------------------- measured processes


def run_process(cmd: list[str]) -> dict:
    """Run a command to completion; its wall seconds, peak RSS (GB, its own), stdout and stderr."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall": wall, "rss_gb": usage.ru_maxrss * 1024 / 1e9, "stdout": stdout, "stderr": stderr}


def child_cmd(mode: str, args) -> list[str]:
    return [sys.executable, __file__, "--_child", mode, "--data", str(args.data), "--method", args.method,
            "--repeats", str(args.repeats), "--shuffle", args.shuffle]


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def child_machine(args) -> None:
    """In a fresh process: the data (generated if missing), the machine's figures and the work; prints JSON."""
    generated_s = ensure_data(args.data, SWEEP_METHODS)
    cores = os.cpu_count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic labels' skipped empty rows
        work = count_work(args.data / "labels", args.data / "submissions" / f"{args.method}.csv",
                          k_folds=40, epochs=10)
    largest = max(work["n"].values())
    figures = {
        "copy_1": copy_bandwidth(1, args.repeats), "copy_n": copy_bandwidth(cores, args.repeats),
        "gather_1": gather_bandwidth(largest, work["dim"], 1, args.repeats),
        "gather_n": gather_bandwidth(largest, work["dim"], cores, args.repeats),
        "gemm": gemm_rates(args.repeats),
    }
    import jax

    from neuco_jax import engine
    step = "native" if engine.uses_native(args.shuffle == "per_fold", jax.devices()) else "XLA"
    print(json.dumps({"machine": machine_info(), "figures": figures, "work": work,
                      "generated_s": generated_s, "step": step}))


def child_evaluate(args) -> None:
    """In a fresh process: `pipeline.evaluate` `repeats` times; prints JSON (timings, scores, own RSS)."""
    from neuco_jax.config import Config
    from neuco_jax.pipeline import evaluate

    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = evaluate(args.data / "submissions" / f"{args.method}.csv", args.data / "labels",
                              Config(k_folds=40, shuffle=args.shuffle), output_dir=out, phase="bench")
            runs.append({**result[0].timings, "total": time.perf_counter() - t0})
    result = result[0]
    scores = {s.name: {"mean_score": s.mean_score, "std_dev": s.std_dev, "q_stat": s.q_stat} for s in result.scores}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(json.dumps({"runs": runs, "scores": scores, "rss_gb": rss}))


def child_sweep(args) -> None:
    """In a fresh process: one `sweep` over SWEEP_METHODS submissions; prints JSON (wall, timings, RSS)."""
    from neuco_jax.config import Config
    from neuco_jax.pipeline import sweep

    files = sorted((args.data / "submissions").glob("*.csv"))[:SWEEP_METHODS]
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        results = sweep(files, args.data / "labels", Config(k_folds=40, shuffle=args.shuffle), output_dir=out,
                        phase="bench")
        wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(json.dumps({"wall": wall, "methods": len(files),
                      "timings": [r.timings for r in results], "rss_gb": rss}))


def time_torch(args, work: dict) -> dict:
    """Wall and RSS of the torch reference process, extrapolated to all tasks when only some ran."""
    tasks = sorted(work["n"])
    timed = tasks[:args.torch_tasks] if args.torch_tasks else tasks
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "torch.json"
        cmd = [sys.executable, str(TORCH_SCRIPT), "--annotation_path", str(args.data / "labels"),
               "--submission_file", str(args.data / "submissions" / f"{args.method}.csv"),
               "--k_folds", "40", "--epochs", "10", "--batch_size", "64", "--lr", "1e-3", "--json", str(out)]
        if len(timed) < len(tasks):
            cmd += ["--task_filter", *timed]
        proc = run_process(cmd)
        report = json.loads(out.read_text())
    train = report["timings"]["train"]
    # Per-fold cost grows with a task's training rows: scale the train stage by them.
    scale = sum(work["n_train"].values()) / sum(work["n_train"][t] for t in timed)
    return {"tasks": timed, "wall": proc["wall"], "train": train, "rss_gb": proc["rss_gb"],
            "full_wall": proc["wall"] - train + train * scale, "extrapolated": len(timed) < len(tasks),
            "task_seconds": report["timings"]["tasks"], "results": report["results"],
            "threads": report["threads"], "torch": report["torch"]}


def agreement(jax_scores: dict, torch_scores: dict, k_folds: int) -> list[tuple]:
    """Per task: (task, jax mean, torch mean, difference, z, |z| < 3) for the two runs' mean scores.

    The runs share folds but not initial weights or batch orders, so their means
    differ by noise. z uses the unpaired standard error of the difference of two
    k-fold means; the shared folds make the true error smaller, so the check is
    lenient (it flags biases of several standard errors, not of a fraction of one).
    """
    rows = []
    for task, t in torch_scores.items():
        j = jax_scores[task]
        diff = j["mean_score"] - t["mean_score"]
        se = math.sqrt((j["std_dev"] ** 2 + t["std_dev"] ** 2) / k_folds) or float("inf")
        rows.append((task, j["mean_score"], t["mean_score"], diff, diff / se, abs(diff / se) < 3))
    return rows


# ---------------------------------------------------------------- report


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} s (max {max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data",
                        help="benchmark folder, generated on first use (default: %(default)s)")
    parser.add_argument("--method", default="method_a", help="submission to time (default: method_a)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats; the min is reported (default: 3)")
    parser.add_argument("--torch", action="store_true", help="also time scripts/torch_reference.py (needs torch)")
    parser.add_argument("--torch_tasks", type=int, default=None,
                        help="time torch on the first N tasks only and extrapolate to all (default: all)")
    parser.add_argument("--torch_repeats", type=int, default=1, help="torch process repeats (default: 1)")
    parser.add_argument("--shuffle", choices=("per_fold", "shared"), default="per_fold",
                        help="the config's minibatch shuffle (default: %(default)s, the reference's)")
    parser.add_argument("--xla_step", action="store_true",
                        help="time the pure-XLA minibatch step instead of the native one (NEUCO_JAX_NATIVE=0)")
    parser.add_argument("--_child", choices=("machine", "evaluate", "sweep"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.xla_step:
        os.environ["NEUCO_JAX_NATIVE"] = "0"  # children inherit it (neuco_jax.native.ENV)
    if args._child:
        return {"machine": child_machine, "evaluate": child_evaluate, "sweep": child_sweep}[args._child](args)

    # Everything heavy runs in child processes: a child started by vfork/exec
    # reports at least its parent's peak RSS, so this process must stay small.
    floor = run_process([sys.executable, "-c", "pass"])["rss_gb"]
    date = datetime.date.today().isoformat()
    prep = last_json(run_process(child_cmd("machine", args))["stdout"])
    machine, fig, work = prep["machine"], prep["figures"], prep["work"]
    cores, gemm = machine["cores"], fig["gemm"]
    if prep["generated_s"]:
        print(f"generated the benchmark in {args.data} ({prep['generated_s']:.1f} s)")
    print(f"shuffle: {args.shuffle}; minibatch step: {prep['step']}")
    print(f"{date}: {machine['cpu']}, {cores} cores, {machine['ram_gb']:.1f} GB RAM; "
          f"JAX {machine['jax']} on {machine['device']}; python {platform.python_version()}")
    print(f"load average {os.getloadavg()[0]:.2f}; other processes add noise, so the min of repeats is reported; "
          f"peak RSS of an empty python child: {floor * 1e3:.0f} MB")

    print("\n== machine")
    print(f"copy bandwidth (1 GiB, read+write): {fig['copy_1']:.1f} GB/s on 1 thread, {fig['copy_n']:.1f} on {cores}")
    largest = max(work["n"].values())
    print(f"row gather from the largest task's matrix ({largest} x {work['dim']} float32, "
          f"{largest * work['dim'] * 4 / 1e6:.0f} MB): {fig['gather_1']:.1f} GB/s on 1 thread, "
          f"{fig['gather_n']:.1f} on {cores}")
    print(f"float32 GEMM 2048^3: {gemm['jax']:.0f} GFLOP/s (JAX), {gemm['numpy']:.0f} GFLOP/s (numpy)")

    print("\n== work (40 folds, 10 epochs, batch 64)")
    print(f"{len(work['n'])} tasks, {sum(work['n'].values())} task rows "
          f"({min(work['n'].values())}-{largest} per task), D={work['dim']}")
    print(f"training row visits {work['visits'] / 1e6:.2f} M = {work['bytes'] / 1e9:.1f} GB of rows, "
          f"{work['flops'] / 1e9:.1f} GFLOP; held-out scoring adds {work['test_visits'] / 1e6:.2f} M visits")

    print("\n== neuco_jax")
    labels, submission = args.data / "labels", args.data / "submissions" / f"{args.method}.csv"
    child = run_process(child_cmd("evaluate", args))
    inproc = last_json(child["stdout"])
    stages = {k: [r[k] for r in inproc["runs"]] for k in inproc["runs"][0]}
    for k, v in stages.items():
        print(f"pipeline.evaluate {k:<8} {spread(v)}")
    # Later evaluations in one process reuse the executable: only the first compile is a real one.
    print(f"(one process, {args.repeats} evaluations, the first compiling in {stages['compile'][0]:.2f} s; "
          f"peak RSS {child['rss_gb']:.2f} GB)")
    cli = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            config = Path(out) / "config.yaml"  # the reference's config, plus the shuffle
            config.write_text(CONFIG.read_text() + f"\nshuffle: {args.shuffle}\n")
            cli.append(run_process([sys.executable, "-m", "neuco_jax", "evaluate", "--annotation_path", str(labels),
                                    "--submission_file", str(submission), "--output_dir", str(Path(out) / "results"),
                                    "--config", str(config)]))
    cli_wall, cli_rss = min(r["wall"] for r in cli), max(r["rss_gb"] for r in cli)
    print(f"`python -m neuco_jax evaluate` process wall {spread([r['wall'] for r in cli])}, peak RSS {cli_rss:.2f} GB"
          " (stage times as it prints them; its persistent compilation cache, where it has one, is warm after run 1):")
    for r in cli:  # the stage times the CLI prints, when it prints them
        stage_line = re.search(r"load [\d.]+s.*write [\d.]+s", r["stdout"])
        print("   ", stage_line.group(0) if stage_line else "(no stage times printed)")
    train = min(stages["train"])
    gbs, gflops = work["bytes"] / train / 1e9, work["flops"] / train / 1e9
    print(f"train stage: {gbs:.1f} GB/s of rows = {gbs / fig['copy_n']:.0%} of copy bandwidth, "
          f"{gbs / fig['gather_n']:.0%} of the cache-resident gather ({cores} threads); "
          f"{gflops:.1f} GFLOP/s = {gflops / gemm['jax']:.1%} of JAX GEMM")
    if args.shuffle == "shared":
        print("(shared shuffle: these count row visits; a window of rows is read once for all folds, and its "
              "products run about twice the visits' flops)")

    print("\n== sweep")
    proc = run_process(child_cmd("sweep", args))
    sweep = {**last_json(proc["stdout"]), "process_wall": proc["wall"], "rss_gb": proc["rss_gb"]}
    print(f"sweep of {sweep['methods']} methods: {sweep['wall']:.2f} s in-process "
          f"({sweep['wall'] / sweep['methods']:.2f} s per method; one evaluate process: {cli_wall:.2f} s), "
          f"process wall {sweep['process_wall']:.2f} s, peak RSS {sweep['rss_gb']:.2f} GB")
    for t in {json.dumps(t) for t in sweep["timings"]}:  # the runs of one pass share its timings
        print("   ", ", ".join(f"{k} {v:.2f}s" for k, v in json.loads(t).items()))

    tr = None
    print("\n== torch reference")
    if not args.torch:
        print("skipped: pass --torch")
    elif importlib.util.find_spec("torch") is None:
        print("skipped: torch is not installed (pip install torch)")
    else:
        runs = [time_torch(args, work) for _ in range(args.torch_repeats)]
        tr = min(runs, key=lambda r: r["wall"])
        what = f"first {len(tr['tasks'])} tasks" if tr["extrapolated"] else "all tasks"
        print(f"torch {tr['torch']} ({tr['threads']} threads), {what}: process wall "
              f"{spread([r['wall'] for r in runs])} (train {tr['train']:.1f} s), peak RSS {tr['rss_gb']:.2f} GB")
        print("    per task:", ", ".join(f"{t} {s:.1f}s" for t, s in tr["task_seconds"].items()))
        if tr["extrapolated"]:
            print(f"extrapolated to all tasks by training rows: {tr['full_wall']:.0f} s")
        print(f"torch process / neuco_jax process: {tr['full_wall']:.1f} s / {cli_wall:.2f} s "
              f"= {tr['full_wall'] / cli_wall:.0f}x")
        print(f"{'task':<24} {'neuco_jax':>9} {'torch':>9} {'diff':>8} {'z':>6}")
        for task, j, t, diff, z, ok in agreement(inproc["scores"], tr["results"], 40):
            print(f"{task:<24} {j:>9.4f} {t:>9.4f} {diff:>+8.4f} {z:>+6.1f}  {'agree' if ok else 'DIFFER'}")

    print("\n== for docs/benchmarks.md")
    print("| date | machine | JAX, device | copy GB/s (1 thread / all) | cache-resident row gather GB/s "
          "(1 thread / all) | f32 GEMM GFLOP/s (JAX / numpy) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {date} | {machine['cpu']}, {cores} cores, {machine['ram_gb']:.1f} GB | {machine['jax']}, "
          f"{machine['device']} | {fig['copy_1']:.1f} / {fig['copy_n']:.1f} | {fig['gather_1']:.1f} / "
          f"{fig['gather_n']:.1f} | {gemm['jax']:.0f} / {gemm['numpy']:.0f} |")
    print()
    m = {**{k: min(v) for k, v in stages.items()}, "compile": stages["compile"][0]}
    torch_cells = "- | -" if tr is None else (
        f"{tr['full_wall']:.0f} s{' (extrapolated)' if tr['extrapolated'] else ''} | {tr['full_wall'] / cli_wall:.0f}x")
    print("| date | process wall | load | compile (first) | train | write | peak RSS | train GB/s (% of gather) "
          "| train GFLOP/s (% of GEMM) | torch process wall | torch / neuco_jax |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {date} | {cli_wall:.2f} s | {m['load']:.2f} s | {m['compile']:.2f} s | {m['train']:.2f} s "
          f"| {m['write']:.2f} s | {cli_rss:.2f} GB | {gbs:.1f} ({gbs / fig['gather_n']:.0%}) | {gflops:.1f} "
          f"({gflops / gemm['jax']:.1%}) | {torch_cells} |")
    print(f"\n{sweep['methods']}-method sweep: {sweep['wall']:.2f} s in-process, process wall "
          f"{sweep['process_wall']:.2f} s, peak RSS {sweep['rss_gb']:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
