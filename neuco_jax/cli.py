"""`neuco-jax`: evaluate, sweep, leaderboard, compare, agreement, report, convert, embed, validate, demo, config.

`evaluate` takes the reference's flags unchanged (`python main.py ...` becomes
`neuco-jax evaluate ...`). Bad input ends with one line on stderr and exit code 2;
Ctrl-C with one line and exit code 130, leaving no half-written file or folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path

from neuco_jax import __version__
from neuco_jax.config import PROBE_TYPES
from neuco_jax.errors import NeucoError
from neuco_jax.progress import Progress

DEFAULT_DEMO_DIR = "neuco_demo"
INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate one embedding submission (the reference's main.py)",
                       description="Evaluate one embedding submission on every task of a labels folder; "
                                   "writes <output_dir>/<phase>/<method>_<timestamp>/ as NeuCo-Bench does.")
    p.add_argument("--submission_file", type=Path, required=True,
                   help="submission: .csv (id, then one column per dimension), .parquet, .npz, .npy or .zarr")
    p.add_argument("--method_name", default=None, help="run name (default: the submission file's stem)")
    _run_flags(p)


def _run_flags(p, configs: bool = False) -> None:
    """The flags evaluate and sweep share with the reference's main.py; `configs`: sweep's --configs too."""
    p.add_argument("--annotation_path", type=Path, required=True,
                   help="folder of <task>__<type>.csv label files (columns id,label)")
    p.add_argument("--output_dir", type=Path, default=Path("results/"), help="results root folder (default: results/)")
    which = p.add_mutually_exclusive_group() if configs else p
    which.add_argument("--config", type=Path, default=Path("config.yaml"),
                       help="reference-style YAML config file (default: config.yaml); "
                            "`neuco-jax config > config.yaml` writes the default one")
    if configs:
        which.add_argument("--configs", type=Path, nargs="+", default=None, metavar="CONFIG",
                           help="two or more configs (probe kinds): every submission is evaluated under each, "
                                "into the phase <phase>_<config file stem> with its own leaderboard, then their "
                                "agreement is written to <output_dir>/leaderboards/agreement/")
    p.add_argument("--phase", default="results", help="phase folder grouping runs (default: results)")
    p.add_argument("--exclude_file", type=Path, default=None, help="text file of ids to drop, one per line")
    p.add_argument("--rerun", action="store_true",
                   help="train every method even when the phase holds a complete run of the same embeddings "
                        "(content hash) under the same config; default: such runs are reused, not trained again")


def _sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="evaluate many submissions (and ablation variants) in one compiled pass",
                       description="Evaluate several submissions against one labels folder in one compiled "
                                   "program; each method (and each variant of the config's `ablations`) gets "
                                   "its own run folder, then the phase's leaderboard is rebuilt.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--submissions", type=Path, nargs="+", help="submission files (any store format)")
    src.add_argument("--submissions_dir", type=Path,
                     help="a folder: every submission in it (.csv, .parquet, .npz, .npy, .zarr) is evaluated")
    p.add_argument("--method_names", nargs="+", default=None, help="one name per submission (default: file stems)")
    _run_flags(p, configs=True)
    p.add_argument("--chunk_size", type=int, default=None,
                   help="methods per compiled pass (default: as many as fit in about 1 GiB)")


def _leaderboard_parser(sub) -> None:
    p = sub.add_parser("leaderboard", help="rank every complete run of a phase",
                       description="Rebuild <output_dir>/leaderboards/<phase>/leaderboard_<timestamp>.csv "
                                   "from every results_summary.json of the phase (rank-then-aggregate).")
    _phase_flags(p, "rank")
    _selection_flags(p)


def _phase_flags(p, verb: str) -> None:
    """The flags leaderboard, compare and report share: which phase, and how its tasks are weighted."""
    p.add_argument("--output_dir", type=Path, default=Path("results/"), help="results root folder (default: results/)")
    p.add_argument("--phase", default="results", help=f"phase to {verb} (default: results)")
    p.add_argument("--weighting", choices=("std", "uniform"), default="std",
                   help="task weights: std of each task's Q across runs (reference, default) "
                        "or uniform (plain average rank)")


def _selection_flags(p) -> None:
    """The flags leaderboard and report share: which runs of the phase are ranked."""
    p.add_argument("--latest", action="store_true",
                   help="rank only the newest complete run of each method (default: every run, as the reference)")
    p.add_argument("--allow_mixed_protocols", action="store_true",
                   help="rank runs scored under different protocols (config keys that change scores, label "
                        "files, exclude list) together, marked by a protocol column; by default that is an error")


def _compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="rank intervals and paired tests: which differences of a phase are real",
                       description="Write ranks_<timestamp>.csv (rank and weighted-score intervals, P(first)), "
                                   "pairs_<timestamp>.csv (paired differences per task and overall, Holm-adjusted "
                                   "tests) and cd_<timestamp>.{png,svg} (critical-difference diagram) to "
                                   "<output_dir>/leaderboards/<phase>/, from every run's fold scores: the runs "
                                   "were scored on the same folds, so their fold scores are paired.")
    _phase_flags(p, "compare")
    p.add_argument("--runs", nargs="+", default=None, metavar="RUN",
                   help="compare only these runs: run folder names, or method names with one run each "
                        "(default: every complete run)")
    _bootstrap_flags(p, "level of every interval; pairs are significant when their Holm-adjusted p-value is "
                        "below 1 - confidence (default: 0.95)")
    _selection_flags(p)


def _bootstrap_flags(p, confidence_help: str) -> None:
    """The flags compare and agreement share: the intervals' level and the fold bootstrap's size and seed."""
    p.add_argument("--confidence", type=float, default=0.95, help=confidence_help)
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed; the same seed, the same files (default: 0)")


def _agreement_parser(sub) -> None:
    p = sub.add_parser("agreement", help="how alike phases scored with different probes rank the same methods",
                       description="Match the newest run of each method by name across two or more phases scored "
                                   "on the same folds (e.g. the phases of sweep --configs) and write, to "
                                   "<output_dir>/leaderboards/agreement/, agreement_<timestamp>.csv (Kendall's "
                                   "tau-b and Spearman's rho between each pair of leaderboards, with fold-bootstrap "
                                   "intervals, and whether the top method is the same), ranks_by_probe_<timestamp>"
                                   ".csv (each method's rank and rank interval per phase) and slope_<timestamp>"
                                   ".{png,svg}.")
    p.add_argument("--output_dir", type=Path, default=Path("results/"), help="results root folder (default: results/)")
    p.add_argument("--phases", nargs="+", required=True, metavar="PHASE", help="two or more phases to compare")
    p.add_argument("--weighting", choices=("std", "uniform"), default="std",
                   help="task weights of every leaderboard, as for leaderboard (default: std)")
    _bootstrap_flags(p, "level of every interval (default: 0.95)")


def _report_parser(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a phase",
                       description="Write <output_dir>/reports/<phase>/report.html (figures embedded, no external "
                                   "files) with the leaderboard and its rank intervals, which runs differ "
                                   "significantly (overall and per task against a baseline), a critical-difference "
                                   "diagram, per-task Q and scores with their spread over folds, a task x run rank "
                                   "heatmap, the selection optimism of nested runs and each run's config; the "
                                   "figures are also saved as PNG beside it.")
    _phase_flags(p, "report")
    p.add_argument("--out", type=Path, default=None,
                   help="HTML file to write (default: <output_dir>/reports/<phase>/report.html); PNGs go beside it")
    p.add_argument("--baseline", default=None, metavar="RUN",
                   help="run (folder name, or a method name with one run) the per-task paired differences are "
                        "taken against (default: the top-ranked run)")
    _selection_flags(p)


def _data_parsers(sub) -> None:
    p = sub.add_parser("convert", help="convert an embedding store to another format",
                       description="Read embeddings (CSV, Parquet, .npz, .npy + .ids.txt, zarr v3 group) and write "
                                   "them in the format of OUT's extension.")
    p.add_argument("source", type=Path, help="input store")
    p.add_argument("target", type=Path, help="output store: a .csv, .parquet, .npz or .npy file, or a .zarr folder")

    p = sub.add_parser("embed", help="embed SSL4EO-S12-downstream-style datacubes with a baseline or your encoder",
                       description="Stream <data_root>/<modality>/part-*/<id>.zarr.zip cubes through a jitted "
                                   "baseline encoder (mean, random, pca) or your own package.module:callable, "
                                   "and write a submission. The callable gets each batch as x: (batch, time, "
                                   "channels, y, x) float32, channels the bands of each modality in turn in "
                                   "--modalities order (S2 values + 1000), or with --per_modality a dict "
                                   "{modality: (batch, time, band, y, x) float32}, keys sorted; it returns "
                                   "(batch, dim) numbers, numpy or JAX. If jax.jit can trace it, it runs "
                                   "jitted; otherwise (numpy, torch) it is called as is on numpy arrays.")
    p.add_argument("--data_root", type=Path, required=True, help="folder holding s1/, s2l1c/, s2l2a/")
    p.add_argument("--output", type=Path, required=True,
                   help="submission file to write (a folder for .zarr); its extension picks the format")
    p.add_argument("--encoder", default="mean", metavar="{mean,random,pca,package.module:callable}",
                   help="a baseline, or a callable imported from the current folder, PYTHONPATH or an "
                        "installed package (default: mean)")
    p.add_argument("--embedding_dim", type=int, default=None,
                   help="embedding size: default 1024 for the baselines; a callable's own output width, "
                        "which the value, if given, must equal")
    p.add_argument("--per_modality", action="store_true",
                   help="give the callable {modality: (batch, time, band, y, x)} instead of one concatenated array")
    p.add_argument("--modalities", nargs="+", default=None, help="subset of s1 s2l1c s2l2a (default: all)")
    p.add_argument("--seasons", nargs="+", default=None, help="subset of spring summer autumn winter")
    p.add_argument("--batch_size", type=int, default=16, help="locations per batch (default: 16)")
    p.add_argument("--threads", type=int, default=4, help="reader threads (default: 4)")
    p.add_argument("--pca_sample", type=int, default=256, help="locations the PCA is fitted on (default: 256)")
    p.add_argument("--seed", type=int, default=0, help="for random and the PCA sample (default: 0)")

    p = sub.add_parser("validate", help="check a submission against a labels folder before evaluating it",
                       description="Report ids covered per task, duplicates, non-numeric / NaN / inf cells and "
                                   "the dimension; exit code 1 when a problem would block or corrupt scoring.")
    p.add_argument("submission", type=Path, help="submission (any store format)")
    p.add_argument("--annotation_path", type=Path, required=True, help="folder of <task>__<type>.csv files")
    p.add_argument("--embedding_dim", type=int, default=None, help="expected dimension")


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="generate a synthetic benchmark with known ranking, evaluate it, rank it",
                       description="Write a realistic synthetic SSL4EO-S12-downstream-like benchmark (11 tasks, "
                                   "~13k ids, D=1024) with submissions of known quality, evaluate each at the "
                                   "reference's sample config (k_folds 40, batch_size 64, epochs 10, learning_rate "
                                   "0.001) and print the leaderboard, checking the known order.")
    p.add_argument("--output_dir", "--out", dest="out", metavar="DIR", type=Path, default=Path(DEFAULT_DEMO_DIR),
                   help=f"folder for the generated data/ and results/ (default: {DEFAULT_DEMO_DIR})")
    p.add_argument("--n_ids", type=int, default=13260, help="number of locations (default: 13260)")
    p.add_argument("--dim", type=int, default=1024, help="embedding dimension (default: 1024)")
    p.add_argument("--methods", type=int, default=3, help="methods of graded quality besides the random baseline")
    p.add_argument("--k_folds", type=int, default=40, help="folds per task (default: 40, the reference's)")
    p.add_argument("--epochs", type=int, default=10,
                   help="epochs per probe (default: 10, the reference's sample config; "
                   "the 2025 challenge used 20)")


def _config_parser(sub) -> None:
    p = sub.add_parser("config", help="print the default config (neuco-jax config > config.yaml)",
                       description="Print the reference's default config for a probe type, a commented YAML file: "
                                   "`neuco-jax config > config.yaml` writes the file evaluate reads by default.")
    p.add_argument("probe_type", nargs="?", choices=PROBE_TYPES, default="linear",
                   help="probe type (default: linear)")


def _challenge_parser(sub) -> None:
    p = sub.add_parser("challenge", help="run a hidden-task challenge: score new submissions, publish leaderboards",
                       description="run (default): check and score every new submission under "
                                   "<challenge_dir>/submissions/<phase>/<team>/ (one sweep per phase, nothing scored "
                                   "twice) and publish public/<phase>/leaderboard.{csv,md,html}, private/ and "
                                   "feedback/. pack: write a phase's annotation bundle for EvalAI or Codabench. "
                                   "demo: write a demo challenge folder from the synthetic benchmark.")
    p.add_argument("action", nargs="?", choices=("run", "pack", "demo"), default="run",
                   help="run (default), pack or demo")
    p.add_argument("--challenge_dir", type=Path, required=True, help="the organiser's folder with challenge.yaml")
    p.add_argument("--phase", default=None, help="run: only this phase (default: all); pack: the phase to pack")
    p.add_argument("--no_wait", action="store_true",
                   help="run: fail at once if another challenge run holds the folder (default: wait for it)")
    p.add_argument("--out", type=Path, default=None, help="pack: the annotation bundle to write (.zip)")
    p.add_argument("--codename", default=None, help="pack: the platform's phase codename (default: the phase)")
    p.add_argument("--split", default="test_split", help="pack: the dataset split codename (default: test_split)")
    p.add_argument("--evaluation_script", type=Path, default=None,
                   help="pack: also write EvalAI's evaluation_script.zip here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuco-jax", description=__doc__.splitlines()[0])
    parser.add_argument("--cache_dir", default=None,
                        help="persistent compilation cache: a folder, or 'off' (default: $NEUCO_JAX_CACHE_DIR, "
                             "else ~/.cache/neuco_jax/xla); repeat runs of the same shapes skip compiling")
    parser.add_argument("--version", action="version", version=f"neuco-jax {__version__}")
    parser.add_argument("--quiet", action="store_true", help="no progress display on stderr")
    multi = parser.add_argument_group("several processes or hosts (jax.distributed); the first process writes files")
    multi.add_argument("--distributed", action="store_true",
                       help="join a multi-process run detected from the environment (TPU pod, SLURM, Open MPI)")
    multi.add_argument("--coordinator_address", default=None, help="host:port of process 0, same for all")
    multi.add_argument("--num_processes", type=int, default=None, help="number of processes")
    multi.add_argument("--process_id", type=int, default=None, help="this process's id, 0..num_processes-1")
    sub = parser.add_subparsers(dest="command", required=True)
    _evaluate_parser(sub)
    _sweep_parser(sub)
    _leaderboard_parser(sub)
    _compare_parser(sub)
    _agreement_parser(sub)
    _report_parser(sub)
    _data_parsers(sub)
    _demo_parser(sub)
    _config_parser(sub)
    _challenge_parser(sub)
    for p in sub.choices.values():  # --quiet after the subcommand too; SUPPRESS keeps one given before it
        p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress display on stderr")
    return parser


def _print_runs(runs) -> None:
    if len(runs) == 1:
        print(f"{'task':<24} {'type':<14} {'mean_score':>10} {'std_dev':>8} {'q_stat':>8}")
        for s in runs[0].scores:
            print(f"{s.name:<24} {s.task_type:<14} {s.mean_score:>10.4f} {s.std_dev:>8.4f} {s.q_stat:>8.2f}")
    for run in runs:
        if run.run_dir is not None:
            print(f"results: {run.run_dir}" + (" (reused)" if run.reused else ""))
    reused = sum(run.reused for run in runs)
    if reused:
        print(f"reused {reused} run(s) of the same embeddings and config, trained {len(runs) - reused} "
              f"(--rerun trains them all)")
    print("wall time: " + ", ".join(f"{k} {v:.2f}s" for k, v in runs[0].timings.items()))
    if runs[0].leaderboard is not None:
        print(f"leaderboard: {runs[0].leaderboard}")


def cmd_evaluate(args) -> int:
    from neuco_jax.config import load_config
    from neuco_jax.pipeline import evaluate

    config = load_config(args.config)
    with Progress(quiet=args.quiet) as progress:
        runs = evaluate(args.submission_file, args.annotation_path, config, output_dir=args.output_dir,
                        method_name=args.method_name, phase=args.phase, exclude_file=args.exclude_file,
                        progress=progress, rerun=args.rerun)
    _print_runs(runs)
    return 0


def cmd_sweep(args) -> int:
    from neuco_jax.config import load_config
    from neuco_jax.errors import InputError
    from neuco_jax.pipeline import sweep, sweep_configs
    from neuco_jax.stores import FORMATS

    if args.configs is not None:
        stems = [path.stem for path in args.configs]
        twice = next((stem for stem in stems if stems.count(stem) > 1), None)
        if twice is not None:
            raise InputError(f"--configs: two configs share the file stem {twice!r}, which names the phase "
                             f"{args.phase}_{twice}; rename one of them")
        configs = {stem: load_config(path) for stem, path in zip(stems, args.configs)}
    else:
        config = load_config(args.config)
    files = args.submissions
    if args.submissions_dir is not None:
        files = sorted(p for p in args.submissions_dir.iterdir()
                       if p.suffix in FORMATS and not p.name.startswith("."))
        if not files:
            raise InputError(f"{args.submissions_dir}: no submissions ({', '.join(FORMATS)}) found; "
                             f"check --submissions_dir")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise InputError(f"--chunk_size {args.chunk_size}: expected a positive integer")
    if args.configs is not None:
        with Progress(quiet=args.quiet) as progress:
            by_phase, paths = sweep_configs(files, args.annotation_path, configs, output_dir=args.output_dir,
                                            phase=args.phase, method_names=args.method_names,
                                            exclude_file=args.exclude_file, chunk_size=args.chunk_size,
                                            progress=progress, rerun=args.rerun)
        for phase, runs in by_phase.items():
            print(f"phase {phase}:")
            _print_runs(runs)
        for kind, path in (paths or {}).items():
            print(f"{kind}: {path}")
        return 0
    with Progress(quiet=args.quiet) as progress:
        runs = sweep(files, args.annotation_path, config, output_dir=args.output_dir, phase=args.phase,
                     method_names=args.method_names, exclude_file=args.exclude_file, chunk_size=args.chunk_size,
                     write_leaderboard=True, progress=progress, rerun=args.rerun)
    _print_runs(runs)
    return 0


def cmd_leaderboard(args) -> int:
    from neuco_jax.leaderboard import collect_runs, format_leaderboard, rank_runs, save_leaderboard

    board = rank_runs(collect_runs(args.output_dir, args.phase, args.latest, args.allow_mixed_protocols),
                      args.weighting)
    if "protocol" in board.columns:
        warnings.warn(f"ranked runs of {board['protocol'].nunique()} different protocols together "
                      f"(--allow_mixed_protocols): their ranks are not comparable; see the protocol column")
    print(format_leaderboard(board))
    path = save_leaderboard(board, args.output_dir, args.phase)
    if path is not None:
        print(f"leaderboard: {path}")
    return 0


def cmd_compare(args) -> int:
    from neuco_jax.compare import compare, format_comparison, save_comparison

    comparison = compare(args.output_dir, args.phase, runs=args.runs, confidence=args.confidence,
                         resamples=args.resamples, seed=args.seed, weighting=args.weighting, latest=args.latest,
                         allow_mixed_protocols=args.allow_mixed_protocols)
    if "protocol" in comparison.ranks.columns:
        warnings.warn(f"compared runs of {comparison.ranks['protocol'].nunique()} different protocols "
                      f"(--allow_mixed_protocols): fold j of one is not fold j of another; see the protocol column")
    print(format_comparison(comparison))
    for kind, path in save_comparison(comparison, args.output_dir).items():
        print(f"{kind}: {path}")
    return 0


def cmd_agreement(args) -> int:
    from neuco_jax.agreement import agreement, format_agreement, save_agreement

    result = agreement(args.output_dir, args.phases, resamples=args.resamples, seed=args.seed,
                       confidence=args.confidence, weighting=args.weighting)
    print(format_agreement(result))
    for kind, path in save_agreement(result, args.output_dir).items():
        print(f"{kind}: {path}")
    return 0


def cmd_report(args) -> int:
    from neuco_jax.report import write_report

    print(write_report(args.output_dir, args.phase, weighting=args.weighting, out=args.out, latest=args.latest,
                       allow_mixed_protocols=args.allow_mixed_protocols, baseline=args.baseline))
    return 0


def cmd_convert(args) -> int:
    from neuco_jax.stores import convert

    convert(args.source, args.target)
    print(f"wrote {args.target}")
    return 0


def cmd_embed(args) -> int:
    from neuco_jax.embed import embed

    with Progress(quiet=args.quiet) as progress:
        path = embed(args.data_root, args.output, encoder=args.encoder, dim=args.embedding_dim,
                     per_modality=args.per_modality, modalities=args.modalities, seasons=args.seasons,
                     batch_size=args.batch_size, threads=args.threads, pca_sample=args.pca_sample,
                     seed=args.seed, progress=progress)
    print(f"wrote {path}")
    return 0


def cmd_validate(args) -> int:
    from neuco_jax.validate import validate

    report = validate(args.submission, args.annotation_path, embedding_dim=args.embedding_dim)
    print(report.text())
    return 1 if report.blocking else 0


def cmd_config(args) -> int:
    from neuco_jax.config import default_config_text

    sys.stdout.write(default_config_text(args.probe_type))
    return 0


def cmd_challenge(args) -> int:
    from neuco_jax.errors import InputError

    if args.action == "demo":
        from neuco_jax.challenge.demo import make_demo_challenge
        if args.challenge_dir.exists():
            raise InputError(f"{args.challenge_dir}: exists; choose a new folder for the demo challenge")
        demo = make_demo_challenge(args.challenge_dir)
        print(f"demo challenge in {demo.root}; known order: {' > '.join(demo.expected_order)}; "
              f"{demo.broken}'s file is corrupt")
        return 0
    if args.action == "pack":
        from neuco_jax.challenge.bundle import pack
        if args.phase is None or args.out is None:
            raise InputError("challenge pack needs --phase and --out (the annotation bundle to write)")
        manifest = pack(args.challenge_dir, args.phase, args.out, codename=args.codename, split=args.split,
                        evaluation_script=args.evaluation_script)
        print(f"wrote {args.out} (phase {manifest['phase']}, codename {manifest['codename']}, split "
              f"{manifest['split']}); leaderboard labels: {manifest['metrics']}")
        return 0
    from neuco_jax.challenge import run_challenge

    for outcome in run_challenge(args.challenge_dir, args.phase, wait=not args.no_wait, quiet=args.quiet):
        counts = {s: sum(r.status == s for r in outcome.new) for s in ("accepted", "rejected", "duplicate")}
        print(f"phase {outcome.phase}: {len(outcome.new)} new submissions ("
              + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"), {len(outcome.scored)} scored")
        for r in outcome.new:
            if r.status == "rejected":
                print(f"  rejected {r.id}: {r.reason}")
        print(f"  leaderboard: {outcome.public_dir / 'leaderboard.md'}")
    return 0


def cmd_demo(args) -> int:
    from neuco_jax.config import Config
    from neuco_jax.leaderboard import format_leaderboard, rank_runs, read_runs, runs_table, save_leaderboard
    from neuco_jax.pipeline import sweep
    from neuco_jax.synthetic import make_benchmark

    t0 = time.perf_counter()
    bench = make_benchmark(args.out / "data", n_ids=args.n_ids, dim=args.dim, n_methods=args.methods)
    print(f"synthetic benchmark in {args.out / 'data'} ({time.perf_counter() - t0:.1f}s)")
    config = Config(k_folds=args.k_folds, epochs=args.epochs)
    output_dir = args.out / "results"
    with warnings.catch_warnings(), Progress(quiet=args.quiet) as progress:
        _ignore_warnings_about(args.out / "data")  # the quirks of the files it generated are on purpose
        runs = sweep(list(bench.submissions.values()), bench.labels_dir, config, output_dir=output_dir,
                     method_names=list(bench.submissions), phase="demo", progress=progress,
                     rerun=True)  # the demo shows the training pass every time
    method_of = {run.run_dir.name: run.name for run in runs}  # this invocation's runs
    print(f"evaluated {len(runs)} submissions in one pass: "
          + ", ".join(f"{k} {v:.2f}s" for k, v in runs[0].timings.items()))
    # Earlier demos in the same folder share the phase, maybe with other settings: rank only this
    # invocation's runs (what `leaderboard --phase demo --latest` ranks while the methods stay the same).
    board = rank_runs(runs_table([r for r in read_runs(output_dir, "demo") if r["run_dir"].name in method_of]))
    print(format_leaderboard(board))
    print(f"leaderboard: {save_leaderboard(board, output_dir, 'demo')}")
    order = [method_of[e] for e in board["experiment"]]
    if order == bench.expected_order:
        print(f"known order recovered: {' > '.join(order)}")
        return 0
    print(f"known order NOT recovered: expected {' > '.join(bench.expected_order)}, got {' > '.join(order)}",
          file=sys.stderr)
    return 1


def _ignore_warnings_about(folder: Path) -> None:
    """Silence the warnings that name a file under `folder` (data the command generated itself)."""
    prefixes = {str(folder), str(folder.resolve())}
    warnings.filterwarnings("ignore", message="|".join(re.escape(p + os.sep) for p in prefixes))


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `neuco-jax` console script; returns the exit code.

    Ctrl-C (KeyboardInterrupt) ends any command with one line on stderr and exit
    code 130: every file and folder is staged under a hidden name and renamed
    into place when complete, and the staging is removed on the way out.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.formatwarning = _one_line_warnings
    commands = {"evaluate": cmd_evaluate, "sweep": cmd_sweep, "leaderboard": cmd_leaderboard,
                "compare": cmd_compare, "agreement": cmd_agreement, "report": cmd_report, "convert": cmd_convert,
                "embed": cmd_embed, "validate": cmd_validate, "demo": cmd_demo, "config": cmd_config,
                "challenge": cmd_challenge}
    try:
        from neuco_jax.runtime import enable_compilation_cache, initialize_distributed
        enable_compilation_cache(args.cache_dir)
        if args.distributed or args.coordinator_address:
            initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
        return commands[args.command](args)
    except NeucoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was left", file=sys.stderr)
        if argv is None:  # the process's own command: end it now
            _exit_now(INTERRUPTED)
        return INTERRUPTED


def _exit_now(code: int) -> None:
    """Exit without waiting for compiled work still running on XLA's threads.

    The interrupted program keeps running on its threads, and JAX's exit
    handler waits for it (up to the whole training pass); everything of ours
    was cleaned up while the KeyboardInterrupt unwound.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
