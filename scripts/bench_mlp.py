"""Time the MLP probe (`probe_type: mlp`) on demo-sized data against this machine's float32 matmul rate.

Data: `neuco_jax.synthetic.make_benchmark` at the demo's size (13,260 ids, 11 tasks, D=1024;
the folder scripts/bench.py uses). Config: the packaged MLP config (neuco_jax/configs/mlp.yaml:
40 folds, hidden [256], gelu, 10 epochs, batch 64, lr 1e-3), i.e. 440 MLPs per method.

1. the machine: float32 GEMM (JAX, jit, 4096^3, best of five), measured before and
   after the evaluations (other processes on a shared machine move it);
2. `pipeline.evaluate` of one method with the MLP config, then with the linear probe's
   (Config(k_folds=40), the reference's defaults), each in a child process (stage timings
   load, compile, train, write), `--repeats` times in one process each, the min reported;
3. the train stage's work, counted from the rows each task joins: per fold and epoch, every
   training row costs a forward pass (2 x sum of fan_in x fan_out flops), the weight gradients
   (the same) and the input gradients of every layer but the first; every held-out row (and,
   with `selection: nested`, every validation row) one forward pass. The train stage's GFLOP/s
   against the GEMM rate: the work is matrix products (the minibatch's rows of each fold
   against that fold's weights).

Ends with markdown rows for docs/benchmarks.md.

    python scripts/bench_mlp.py [--data /tmp/neuco_bench_data] [--repeats 1] [--task_filter t1 t2] [--skip_linear]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bench import ensure_data, gemm_rates, last_json, lscpu, machine_info, run_process

ROOT = Path(__file__).resolve().parents[1]
MLP_CONFIG = ROOT / "neuco_jax" / "configs" / "mlp.yaml"
GEMM_N = 4096
GEMM_REPEATS = 5  # the best of five: the machine's rate when other processes leave it alone


def load_config(args):
    import dataclasses

    from neuco_jax.config import Config, load_config as read

    config = read(MLP_CONFIG) if args.probe == "mlp" else Config(k_folds=40)
    return dataclasses.replace(config, task_filter=tuple(args.task_filter) if args.task_filter else None)


def count_flops(labels: Path, submission: Path, config) -> dict:
    """The train stage's flops for one method (see the module docstring), from the rows each task joins."""
    from neuco_jax.data import load_labels, load_submission, prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic labels' skipped empty rows
        tasks = load_labels(labels)
    ids, x = load_submission(submission, valid_ids={i for t in tasks for i in t.ids})
    bench = prepare(tasks, ids, x, task_filter=config.task_filter)
    widths = (x.shape[1], *config.mlp.hidden_dims, 1)
    products = [a * b for a, b in zip(widths[:-1], widths[1:])]
    forward = 2 * sum(products)
    train_row = 2 * forward + 2 * sum(products[1:])
    scored = 2 if config.selection == "nested" else 1  # held-out rows, and the validation split's as many
    rows = visits = 0
    for r in bench.rows:
        n_test = math.ceil(0.1 * len(r))
        n_train = len(r) - n_test * (2 if config.selection == "nested" else 1)
        visits += config.k_folds * config.epochs * n_train
        rows += config.k_folds * config.epochs * n_test * scored
    return {"tasks": len(bench.tasks), "dim": x.shape[1], "train_visits": visits, "scored_rows": rows,
            "flops": visits * train_row + rows * forward, "train_row_flops": train_row}


def child_evaluate(args) -> int:
    """In a fresh process: `pipeline.evaluate` `repeats` times with the probe's config; prints JSON."""
    from neuco_jax.pipeline import evaluate

    config = load_config(args)
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = evaluate(args.data / "submissions" / f"{args.method}.csv", args.data / "labels", config,
                              output_dir=out, phase="bench")[0]
            runs.append({**result.timings, "total": time.perf_counter() - t0})
    scores = {s.name: {"mean": s.mean_score, "std": s.std_dev} for s in result.scores}
    print(json.dumps({"runs": runs, "scores": scores}))
    return 0


def child_gemm(args) -> int:
    print(json.dumps(gemm_rates(GEMM_REPEATS, GEMM_N)))
    return 0


def child_cmd(args, mode: str, probe: str = "mlp") -> list[str]:
    return [sys.executable, __file__, "--_child", mode, "--probe", probe, "--data", str(args.data), "--method",
            args.method, "--repeats", str(args.repeats), *(["--task_filter", *args.task_filter] if args.task_filter
                                                          else [])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "neuco_bench_data",
                        help="benchmark folder, generated on first use (default: %(default)s)")
    parser.add_argument("--method", default="method_a", help="submission to time (default: method_a)")
    parser.add_argument("--repeats", type=int, default=1, help="timing repeats; the min is reported (default: 1)")
    parser.add_argument("--task_filter", nargs="+", default=None, help="only these tasks (the config's task_filter)")
    parser.add_argument("--skip_linear", action="store_true", help="do not time the linear probe")
    parser.add_argument("--probe", choices=("mlp", "linear"), default="mlp", help=argparse.SUPPRESS)
    parser.add_argument("--_child", choices=("evaluate", "gemm"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        return {"evaluate": child_evaluate, "gemm": child_gemm}[args._child](args)

    ensure_data(args.data, 1)
    machine = machine_info()
    date = datetime.date.today().isoformat()
    print(f"{date}: {machine['cpu']} ({lscpu()}), {machine['cores']} cores, {machine['ram_gb']:.1f} GB; "
          f"JAX {machine['jax']} on {machine['device']}; load average {os.getloadavg()[0]:.2f}")
    config = load_config(args)
    labels, submission = args.data / "labels", args.data / "submissions" / f"{args.method}.csv"
    work = count_flops(labels, submission, config)
    print(f"work: {work['tasks']} tasks, D={work['dim']}, hidden {list(config.mlp.hidden_dims)}: "
          f"{work['train_visits'] / 1e6:.2f} M training row visits x {work['train_row_flops'] / 1e6:.2f} MFLOP, "
          f"{work['scored_rows'] / 1e6:.2f} M scored rows: {work['flops'] / 1e12:.2f} TFLOP")

    gemm = [last_json(run_process(child_cmd(args, "gemm"))["stdout"])["jax"]]
    print(f"float32 GEMM {GEMM_N}^3 (JAX): {gemm[0]:.1f} GFLOP/s", flush=True)
    results = {}
    for probe in ("mlp",) if args.skip_linear else ("mlp", "linear"):
        child = run_process(child_cmd(args, "evaluate", probe))
        out = last_json(child["stdout"])
        stages = {k: min(r[k] for r in out["runs"]) for k in out["runs"][0]}
        results[probe] = {**out, "stages": stages, "rss_gb": child["rss_gb"]}
        print(f"{probe}: pipeline.evaluate " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
              + f"; peak RSS {child['rss_gb']:.2f} GB", flush=True)
        print("    mean scores: " + ", ".join(f"{t} {s['mean']:.3f}" for t, s in out["scores"].items()), flush=True)
    gemm.append(last_json(run_process(child_cmd(args, "gemm"))["stdout"])["jax"])
    print(f"float32 GEMM {GEMM_N}^3 (JAX), after: {gemm[1]:.1f} GFLOP/s")

    train = results["mlp"]["stages"]["train"]
    rate = work["flops"] / train / 1e9
    print(f"\nMLP train stage: {rate:.1f} GFLOP/s = {rate / max(gemm):.0%}-{rate / min(gemm):.0%} of the GEMM rate "
          f"({min(gemm):.1f}-{max(gemm):.1f} GFLOP/s)")
    m = results["mlp"]["stages"]
    line = (f"| {date} | {rate:.1f} GFLOP/s | {min(gemm):.1f}-{max(gemm):.1f} GFLOP/s | "
            f"{rate / max(gemm):.0%}-{rate / min(gemm):.0%} | {m['total']:.1f} s (load {m['load']:.1f}, compile "
            f"{m['compile']:.1f}, train {m['train']:.1f}, write {m['write']:.2f}) |")
    if "linear" in results:
        lin = results["linear"]["stages"]
        line += f" {lin['total']:.1f} s (train {lin['train']:.1f}) | {m['total'] / lin['total']:.0f}x |"
    print("\n| date | MLP train GFLOP/s | f32 GEMM (before-after) | share | MLP evaluate | linear evaluate | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
