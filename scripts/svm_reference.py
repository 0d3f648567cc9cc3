"""Parity and speed of `neuco-jax evaluate` with probe_type svm against the reference NeuCo-Bench's own SVM code.

Generates demo-sized synthetic data (`neuco_jax.synthetic.make_benchmark`, as
`neuco-jax demo` does: 13,260 ids, 11 tasks, D=1024), writes the reference's
sample SVM config (`configs/sample_config_svm.yaml`, which `neuco-jax config
svm` prints) reduced to a budget (`--k_folds`, `--n_iter`, `--tasks`), and runs
on the same submission and labels:

- the reference: its `benchmark/main.py` (`evaluate` -> `cross_validate` ->
  `SVMHPOptimizer`: skopt's BayesSearchCV over scikit-learn SVC/SVR), from a
  checkout extracted with `git archive` out of a bare mirror, as a process
  of `--torch_python` (a virtual environment with the reference's
  requirements: torch, scikit-learn, scikit-optimize, pandas, pyyaml,
  matplotlib; not a neuco_jax dependency). A small wrapper around its
  `SVMHPOptimizer.train` (in this script's child program, the reference's
  files untouched) records each task's wall time and BayesSearchCV's
  per-candidate mean fit and score times;
- neuco_jax: `python -m neuco_jax evaluate` as a process, `--repeats` times.

Both write per-fold scores (`output_fold_results: true`). Folds are the same
ShuffleSplit(k, test_size=0.1, random_state=42) of the same rows in both, so
besides each task's mean +- std (population std over folds, as both report)
it prints the unpaired z = (mean_ours - mean_ref) / sqrt((sd_ours^2 + sd_ref^2) / k)
and the paired view: the mean of the per-fold differences over its standard
error. The candidates differ (skopt's sequential random-forest search against
neuco_jax's batched GP rounds; see the README), so parity is on the task means
within noise, not fold by fold.

Wall times are of whole processes (imports, loading, compiling, writing).

    python scripts/svm_reference.py                                    # 10 folds, 12 candidates, crops + random_cls
    python scripts/svm_reference.py --k_folds 10 --n_iter 12 --tasks crops random_cls --repeats 2
    python scripts/svm_reference.py --skip_reference --repeats 3       # neuco_jax only
    python scripts/svm_reference.py --skip_ours                        # the reference only

`--json FILE` writes everything measured.

Expect hours, not minutes, at the sample config's space on demo-sized data and
2 CPU cores: libsvm needs up to ~500,000 SMO steps per fit there, and so does
neuco_jax's batched solver (see docs/benchmarks.md, "SVM probe against the
reference's own SVM code", and scripts/svm_lockstep.py for a bounded
measurement of where the time goes). `--fit_sample TASK ...` times the
reference's per-fit cost alone (fold 0, the first `--fit_candidates`
candidates of an earlier run's `--json`).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF_GIT = Path("/work/.mirror/embed2scale+NeuCo-Bench/repo")
TORCH_PYTHON = Path("/work/torchvenv/bin/python")

# Runs inside --torch_python with the reference's benchmark/ folder first on sys.path: wraps
# SVMHPOptimizer.train to record per-task times and BayesSearchCV's per-candidate fit / score
# times, then runs the reference's own main() with the given argv.
REF_DRIVER = r"""
import json, sys, time
bench_dir, stats_path, *argv = sys.argv[1:]
sys.path.insert(0, bench_dir)
t_import = time.perf_counter()
import evaluation.probes.svm as ref_svm
import main as ref_main
import_s = time.perf_counter() - t_import
stats = {"import_s": import_s, "tasks": {}}
_train = ref_svm.SVMHPOptimizer.train

def train(self, *args, **kwargs):
    t0 = time.perf_counter()
    out = _train(self, *args, **kwargs)
    cv = self.opt.cv_results_
    stats["tasks"][self.task_name] = {
        "seconds": time.perf_counter() - t0,
        "rows": int(len(self.y)),
        "folds": int(self.splitter.get_n_splits()),
        "candidates": [{k: (v.item() if hasattr(v, "item") else v) for k, v in p.items()}
                       for p in cv["params"]],
        "mean_fit_time": [float(v) for v in cv["mean_fit_time"]],
        "mean_score_time": [float(v) for v in cv["mean_score_time"]],
    }
    return out

ref_svm.SVMHPOptimizer.train = train
sys.argv = ["main.py", *argv]
t0 = time.perf_counter()
ref_main.main()
stats["main_s"] = time.perf_counter() - t0
open(stats_path, "w").write(json.dumps(stats))
"""


# Runs inside --torch_python: the reference's own loading (get_annotations, load_submission, label
# min-max) and, per task, fold 0 of its ShuffleSplit; fits the given candidates with scikit-learn's
# SVC / SVR as BayesSearchCV does (fit on the fold's training rows, then its two scorers on the held-out
# and, for return_train_score, the training rows) and times each fit and scoring.
REF_FITS = r"""
import json, sys, time
import numpy as np
bench_dir, out_path, labels, submission, spec = sys.argv[1:]
sys.path.insert(0, bench_dir)
from data.embeddings import load_submission
from data.labels import get_annotations
from pathlib import Path
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score
from sklearn.model_selection import ShuffleSplit
from sklearn.svm import SVC, SVR
spec = json.loads(spec)
ann = get_annotations(Path(labels))
sub, _ = load_submission(Path(submission), set(ann["id"]))
merged = ann.merge(sub, on="id").dropna(subset=["embedding"])
out = {}
for task, group in merged.groupby("task_name"):
    if task not in spec["tasks"]:
        continue
    y = group["label"].to_numpy()
    y = (y - y.min()) / (y.max() - y.min())
    x = np.stack(group["embedding"].to_numpy())
    regression = group["task_type"].iloc[0] in ("regression", "regr")
    if not regression:
        y = np.where(y == 0, -1.0, y)
    train, test = next(ShuffleSplit(n_splits=spec["k_folds"], test_size=0.1, random_state=42).split(x))
    rows = []
    for params in spec["regression" if regression else "classification"]:
        model = (SVR if regression else SVC)(**params)
        t0 = time.perf_counter()
        model.fit(x[train], y[train])
        t1 = time.perf_counter()
        for idx in (test, train):
            f = model.predict(x[idx])
            (r2_score(y[idx], f), mean_squared_error(y[idx], f)) if regression else \
                (f1_score(y[idx], f), accuracy_score(y[idx], f))
        rows.append({"params": params, "fit_s": t1 - t0, "score_s": time.perf_counter() - t1,
                     "n_support": int(model.n_support_.sum()) if hasattr(model, "n_support_") else None})
        print(task, rows[-1], flush=True)
    out[task] = {"rows": int(len(y)), "n_train": int(len(train)), "regression": bool(regression), "fits": rows}
open(out_path, "w").write(json.dumps(out))
"""


def extract_reference(git_dir: Path, dest: Path) -> str:
    """`git archive HEAD` of the reference into dest (replaced); returns the commit."""
    commit = subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    stamp = dest / ".commit"
    if stamp.exists() and stamp.read_text() == commit:
        return commit
    archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "HEAD", "benchmark", "configs"], check=True,
                             capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    stamp.write_text(commit)
    return commit


def ensure_data(folder: Path) -> None:
    from neuco_jax.synthetic import make_benchmark

    if not (folder / "ground_truth.json").exists():
        make_benchmark(folder, n_methods=3)


def reduced_config(ref_root: Path, k_folds: int, n_iter: int, tasks: list[str] | None) -> dict:
    """The reference's configs/sample_config_svm.yaml with the budget reduced and per-fold scores kept."""
    import yaml

    config = yaml.safe_load((ref_root / "configs" / "sample_config_svm.yaml").read_text())
    config["k_folds"] = k_folds
    config["probe_params"]["opt_params"]["n_iter"] = n_iter
    config["task_filter"] = tasks
    config["output_fold_results"] = True
    return config


def run_dir_of(output_dir: Path, phase: str) -> Path:
    runs = sorted(p for p in (output_dir / phase).iterdir() if p.is_dir())
    if len(runs) != 1:
        raise RuntimeError(f"expected one run folder in {output_dir / phase}, found {runs}")
    return runs[0]


def fold_scores(run_dir: Path, tasks: list[str]) -> dict[str, np.ndarray]:
    """Per-fold scores of each task from `<task>/<task>_result.json`'s q_t (both programs write it)."""
    out = {}
    for task in tasks:
        result = json.loads((run_dir / task / f"{task}_result.json").read_text())
        out[task] = np.asarray(result["q_t"], np.float64)
    return out


def timed(cmd: list[str], env=None, log: Path | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"{cmd[0]} ... exited {proc.returncode}")
    return wall


def compare(ref: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for task in ref:
        a, b = ours[task], ref[task]
        k = len(a)
        unpaired = math.sqrt((np.nanstd(a) ** 2 + np.nanstd(b) ** 2) / k)
        d = a - b
        paired_se = np.nanstd(d, ddof=1) / math.sqrt(k)
        rows.append({"task": task, "k": k, "ref_mean": float(np.nanmean(b)), "ref_std": float(np.nanstd(b)),
                     "ours_mean": float(np.nanmean(a)), "ours_std": float(np.nanstd(a)),
                     "diff": float(np.nanmean(a) - np.nanmean(b)),
                     "z_unpaired": float((np.nanmean(a) - np.nanmean(b)) / unpaired) if unpaired > 0 else 0.0,
                     "paired_mean": float(np.nanmean(d)), "paired_se": float(paired_se),
                     "t_paired": float(np.nanmean(d) / paired_se) if paired_se > 0 else 0.0})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/neuco_svm_reference/data"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/neuco_svm_reference"))
    ap.add_argument("--method", default="method_a")
    ap.add_argument("--k_folds", type=int, default=10)
    ap.add_argument("--n_iter", type=int, default=12)
    ap.add_argument("--tasks", nargs="+", default=["crops", "random_cls"],
                    help="task names (the demo data has one classification task, random_cls)")
    ap.add_argument("--repeats", type=int, default=1, help="neuco_jax evaluate processes (min is reported)")
    ap.add_argument("--ref_repeats", type=int, default=1)
    ap.add_argument("--ref_git", type=Path, default=REF_GIT)
    ap.add_argument("--torch_python", type=Path, default=TORCH_PYTHON)
    ap.add_argument("--skip_reference", action="store_true")
    ap.add_argument("--skip_ours", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--fit_sample", nargs="+", default=None, metavar="TASK",
                    help="instead of the runs: time the reference's per-fit cost (fold 0) on these tasks, fitting "
                         "the first --fit_candidates candidates of each kind from --candidates_from (a --json "
                         "of an earlier reference run)")
    ap.add_argument("--fit_candidates", type=int, default=4)
    ap.add_argument("--candidates_from", type=Path, default=None)
    args = ap.parse_args()

    import yaml

    work = args.work
    ensure_data(args.data)
    ref_root = work / "reference"
    commit = extract_reference(args.ref_git, ref_root)
    config = reduced_config(ref_root, args.k_folds, args.n_iter, args.tasks)
    config_path = work / f"svm_k{args.k_folds}_n{args.n_iter}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    submission = args.data / "submissions" / f"{args.method}.csv"
    labels = args.data / "labels"
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    report = {"date": datetime.date.today().isoformat(), "machine": machine(), "reference_commit": commit,
              "config": config, "method": args.method}
    common = ["--annotation_path", str(labels), "--submission_file", str(submission), "--config", str(config_path),
              "--method_name", args.method]

    if args.fit_sample:
        earlier = json.loads(args.candidates_from.read_text())["reference"]["stats"]["tasks"]
        spec = {"tasks": args.fit_sample, "k_folds": args.k_folds, "regression": [], "classification": []}
        for t, s in earlier.items():
            kind = "regression" if any("epsilon" in p for p in s["candidates"]) else "classification"
            spec[kind] = [{k: int(v) if k == "degree" else v for k, v in p.items()}
                          for p in s["candidates"][:args.fit_candidates]]
        driver = work / "ref_fits.py"
        driver.write_text(REF_FITS)
        out = work / f"ref_fits_{stamp}.json"
        wall = timed([str(args.torch_python), str(driver), str(ref_root / "benchmark"), str(out), str(labels),
                      str(submission), json.dumps(spec)], log=work / f"ref_fits_{stamp}.log")
        fits = json.loads(out.read_text())
        for t, f in fits.items():
            fit = [r["fit_s"] for r in f["fits"]]
            score = [r["score_s"] for r in f["fits"]]
            print(f"{t}: {f['rows']} rows ({f['n_train']} training), {len(fit)} fits: fit "
                  f"{', '.join(f'{v:.2f}' for v in fit)} s (mean {np.mean(fit):.2f}), "
                  f"score mean {np.mean(score):.2f} s")
        print(f"process {wall:.1f} s")
        if args.json:
            args.json.write_text(json.dumps({**report, "fit_sample": fits, "process_s": wall}, indent=1))
        return 0

    ref_scores = ours_scores = None
    if not args.skip_reference:
        driver = work / "ref_driver.py"
        driver.write_text(REF_DRIVER)
        walls, stats = [], None
        for r in range(args.ref_repeats):
            out = work / f"ref_{stamp}_{r}"
            stats_path = out / "stats.json"
            out.mkdir(parents=True)
            env = {**os.environ, "MPLBACKEND": "Agg"}
            walls.append(timed([str(args.torch_python), str(driver), str(ref_root / "benchmark"), str(stats_path),
                                *common, "--output_dir", str(out), "--phase", "svm"], env=env, log=out / "log.txt"))
            stats = json.loads(stats_path.read_text())
            ref_scores = fold_scores(run_dir_of(out, "svm"), args.tasks)
            print(f"reference process {r + 1}: {walls[-1]:.1f} s (import {stats['import_s']:.1f} s; "
                  + ", ".join(f"{t} {s['seconds']:.1f} s" for t, s in stats["tasks"].items()) + ")", flush=True)
        fits = {t: {"rows": s["rows"], "fits": len(s["mean_fit_time"]) * s["folds"],
                    "fit_s_per_fit": float(np.mean(s["mean_fit_time"])),
                    "score_s_per_fit": float(np.mean(s["mean_score_time"])),
                    "fit_s_range": [float(np.min(s["mean_fit_time"])), float(np.max(s["mean_fit_time"]))],
                    "task_s": s["seconds"]} for t, s in stats["tasks"].items()}
        for t, f in fits.items():
            print(f"  {t}: {f['rows']} rows, {f['fits']} fits: mean fit {f['fit_s_per_fit']:.2f} s "
                  f"(per-candidate means {f['fit_s_range'][0]:.2f}-{f['fit_s_range'][1]:.2f} s), "
                  f"mean score (held-out + training rows) {f['score_s_per_fit']:.2f} s; task {f['task_s']:.1f} s")
        report["reference"] = {"process_s": walls, "stats": stats, "per_fit": fits}

    if not args.skip_ours:
        walls = []
        for r in range(args.repeats):
            out = work / f"ours_{stamp}_{r}"
            walls.append(timed([sys.executable, "-m", "neuco_jax", "--quiet", "evaluate", *common,
                                "--output_dir", str(out), "--phase", "svm"], log=out.with_suffix(".log")))
            ours_scores = fold_scores(run_dir_of(out, "svm"), args.tasks)
            print(f"neuco_jax process {r + 1}: {walls[-1]:.1f} s", flush=True)
            print("  " + out.with_suffix(".log").read_text().strip().splitlines()[-1][:300])
        report["ours"] = {"process_s": walls}

    if ref_scores is not None and ours_scores is not None:
        rows = compare(ref_scores, ours_scores)
        report["parity"] = rows
        report["speedup"] = min(report["reference"]["process_s"]) / min(report["ours"]["process_s"])
        print(f"\n{args.k_folds} folds x {args.n_iter} candidates, {args.method}; reference {commit[:7]}")
        print("| task | rows | reference mean ± std | neuco_jax mean ± std | diff | z (unpaired) | "
              "paired diff ± se |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            n = report["reference"]["per_fit"][r["task"]]["rows"]
            print(f"| {r['task']} | {n:,} | {r['ref_mean']:.4f} ± {r['ref_std']:.4f} | {r['ours_mean']:.4f} ± "
                  f"{r['ours_std']:.4f} | {r['diff']:+.4f} | {r['z_unpaired']:+.2f} | "
                  f"{r['paired_mean']:+.4f} ± {r['paired_se']:.4f} |")
        ref_s, ours_s = min(report["reference"]["process_s"]), min(report["ours"]["process_s"])
        print(f"\nwhole process: reference {ref_s:.1f} s, neuco_jax {ours_s:.1f} s (min of "
              f"{len(report['ours']['process_s'])}: {', '.join(f'{w:.1f}' for w in report['ours']['process_s'])}); "
              f"speedup {ref_s / ours_s:.1f}x")
    elif ours_scores is not None:
        for task, s in ours_scores.items():
            print(f"{task}: neuco_jax {np.nanmean(s):.4f} ± {np.nanstd(s):.4f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({model}), {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
