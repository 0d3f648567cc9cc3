"""The evaluation pipeline: load -> preprocess -> one compiled pass -> scores -> files -> leaderboard.

`sweep` evaluates many submissions (and ablation variants) with the methods
axis in the compiled program; `evaluate` is a sweep of one submission.
Ablation variants are written to their own phase, `<phase>_ablations`, so that
they never change the task weights of the phase's main leaderboard.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import logging
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from neuco_jax import results
from neuco_jax.config import Ablations, Config
from neuco_jax.data import (CONTENT_KEY, Prepared, exclude_fingerprint, file_sha256, labels_fingerprint, load_labels,
                            load_submission, prepare, submission_width)
from neuco_jax.errors import InputError
from neuco_jax.fold_scores import write_fold_scores
from neuco_jax.plan import coverage
from neuco_jax.plots import write_task_plots
from neuco_jax.probes import kind, save_probe
from neuco_jax.probes.folds import GroupPass, TaskFolds, Variant
from neuco_jax.progress import Progress
from neuco_jax.runtime import is_writer
from neuco_jax.scores import TaskScore, task_score

log = logging.getLogger(__name__)

# Methods per compiled pass when the caller does not say: bounds the stacked
# embeddings (methods x rows x dim float32) to about this many bytes.
CHUNK_BYTES = 1 << 30
# Ablation variants go to the phase `<phase>` + this, ranked on their own.
ABLATIONS_SUFFIX = "_ablations"
# The protocol key (neuco_jax.protocol) that each axis of _grid varies.
_AXIS_KEYS = ("probe_params.learning_rate", "embedding_dim", "label_fraction", "probe_params.epochs")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One evaluated run (a method, or one ablation variant of it).

    timings: wall seconds of the stages (load, compile, train, write) of the
    pass that produced it; a sweep's runs share its timings.
    """

    name: str
    run_dir: Path | None  # None in processes other than the first of a multi-process run
    scores: list[TaskScore]
    config: Config
    timings: dict[str, float]
    leaderboard: Path | None = None
    reused: bool = False  # an earlier run of the same embeddings and config (neuco_jax.reuse), not trained


def _grid(config: Config):
    a = config.ablations
    return (a.learning_rates or (config.learning_rate,), a.embedding_dims or (None,),
            a.label_fractions or (config.label_fraction,), a.epochs or (config.epochs,))


def ablation_axes(config: Config) -> list[str]:
    """The protocol keys that the config's ablations vary (axes with more than one value)."""
    return [key for values, key in zip(_grid(config), _AXIS_KEYS) if len(values) > 1]


def _variant_name(method: str, config: Config, lr: float, dim, fraction: float, epochs: int) -> str:
    """`method`, plus `@axis=value` for every ablation axis that has more than one value."""
    lrs, dims, fractions, epoch_points = _grid(config)
    parts = [method]
    for values, key, value in ((lrs, "lr", lr), (dims, "dim", dim), (fractions, "frac", fraction),
                               (epoch_points, "epochs", epochs)):
        if len(values) > 1:
            parts.append(f"{key}={value:g}")
    return "@".join(parts)


def sweep(submission_files, annotation_path, config: Config, *, output_dir="results", phase: str = "results",
          method_names=None, exclude_file=None, chunk_size: int | None = None,
          write_leaderboard: bool | None = None, progress: Progress | None = None,
          loaded: dict | None = None, rerun: bool = False) -> list[RunResult]:
    """Evaluate several submissions, and every ablation variant of each, in one compiled program.

    Each reported run gets its own run folder, exactly as `evaluate` writes it,
    then (with `update_leaderboard`) one leaderboard is rebuilt for the phase.
    With ablations (an axis of more than one value) the variants go to the
    phase `<phase>_ablations`, ranked on its own: they compare protocols by
    design and must not change the task weights of `<phase>`'s leaderboard.
    Each summary records the labels' and exclude list's fingerprints and, for
    variants, the protocol keys they vary (`ablation_axes`): see
    neuco_jax.protocol. When the phase mixes protocols (or another of its runs
    is unreadable) the leaderboard is skipped with a warning; the runs stay.

    Args:
      submission_files: embedding CSVs.
      annotation_path: folder of `<task>__<type>.csv` label files.
      config: the validated config, including its `ablations`.
      output_dir, phase: runs go to `<output_dir>/<phase>/<name>_<timestamp>/`
        (ablation variants: `<output_dir>/<phase>_ablations/...`).
      method_names: one per file; default: the files' stems.
      exclude_file: optional list of ids to drop from every submission.
      chunk_size: methods per compiled pass; more are processed in chunks of
        this size with the same executable. Default: as many as fit in ~1 GiB.
      write_leaderboard: rebuild the phase's leaderboard at the end; default:
        the config's `update_leaderboard`.
      progress: where stage progress is shown (default: nowhere).
      loaded: a dict that keeps every submission read, keyed by its file, the labels folder,
        embedding_dim and exclude file, for later sweeps of the same files under other configs
        (`sweep --configs`); default: each submission is read when its chunk needs it and dropped after.
      rerun: train every method; default: a method whose every variant the phase already holds, of
        the same embeddings (content hash) and config, is not trained again: its runs are reused
        (neuco_jax.reuse) and only the leaderboard is rebuilt.

    Returns:
      One RunResult per (method, ablation variant), methods in the given order.
    """
    files = [Path(f) for f in submission_files]
    if not files:
        raise InputError("no submission files given; pass at least one")
    names = list(method_names) if method_names is not None else [f.stem for f in files]
    if len(names) != len(files):
        raise InputError(f"{len(names)} method names for {len(files)} submission files; give one name per file")
    for name in names:
        results.check_name("method_name", name)
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"method name '{dup}' is used twice; give each submission its own --method_name")
    axes = ablation_axes(config)
    phase = results.check_name("phase", phase) + (ABLATIONS_SUFFIX if axes else "")
    results.check_writable(output_dir, phase)  # an unwritable output_dir fails before any work

    timings = dict.fromkeys(("load", "compile", "train", "write"), 0.0)
    t0 = time.perf_counter()
    tasks = load_labels(annotation_path)
    record = protocol_record(annotation_path, exclude_file, axes)
    valid_ids = {i for t in tasks for i in t.ids}
    lrs, dims, fractions, epoch_points = _grid(config)
    widths = [config.embedding_dim or submission_width(f) for f in files]
    for f, w in zip(files, widths):
        if any(d is not None and d > w for d in dims):
            raise InputError(f"{f}: ablations.embedding_dims asks for {max(d for d in dims if d)} dimensions "
                             f"but the submission has {w}; use dims up to {w}")
    width = max(widths)
    hashes = [file_sha256(f) for f in files]  # what each run records it scored
    # The methods axis of the compiled program: every submission at every embedding dim.
    methods = [(i, d) for i in range(len(files)) for d in dims]
    out: dict[tuple[int, int], RunResult] = {}  # (method, variant) -> run, sorted at the end
    if not rerun:
        out = _reused(methods, names, hashes, config, record, tasks, output_dir, phase)
    todo = [m for m in range(len(methods)) if (m, 0) not in out]  # the methods to train
    chunk_size = chunk_size or max(1, CHUNK_BYTES // (4 * width * max(len(valid_ids), 1)))
    chunk_size = min(chunk_size, max(len(todo), 1))
    timings["load"] += time.perf_counter() - t0

    n_variants = len(lrs) * len(fractions) * len(epoch_points)
    with (progress or Progress(quiet=True)) as bar, bar.stage("load", len(todo)) as loaded_one, \
            bar.stage("compile", -(-len(todo) // chunk_size)) as compiled_one, \
            bar.stage("train", -(-len(todo) // chunk_size)) as trained_one, \
            bar.stage("write", len(todo) * n_variants) as wrote_one:
        plans = {}  # coverage -> what a probe kind plans once: methods covering the same ids share folds, orders, init
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            t0 = time.perf_counter()
            benches: list[tuple[int, Prepared]] = []
            current = {}
            for m in chunk:
                i, d = methods[m]
                key = (files[i].resolve(), Path(annotation_path).resolve(), config.embedding_dim,
                       exclude_file and Path(exclude_file).resolve())
                if key not in current:
                    current = {key: (loaded or {}).get(key) or load_submission(
                        files[i], valid_ids=valid_ids, embedding_dim=config.embedding_dim, exclude_file=exclude_file)}
                    if loaded is not None:
                        loaded[key] = current[key]
                ids, x = current[key]
                bench = prepare(tasks, ids, x[:, :d] if d else x, standardize=config.standardize_embeddings,
                                normalize_labels=config.normalize_labels, task_filter=config.task_filter)
                benches.append((m, bench))
                loaded_one()
            timings["load"] += time.perf_counter() - t0

            for group in score_groups(benches, config, plans, width, chunk_size, timings, compiled_one,
                                      lambda m: names[methods[m][0]], lambda m: methods[m][1]):
                trained_one()
                t0 = time.perf_counter()
                for (m, v), scored in group.items():
                    scored = dataclasses.replace(scored, record={**record, **scored.record,
                                                                 CONTENT_KEY: hashes[methods[m][0]]})
                    # In a multi-process run every process holds all scores; the first writes them.
                    run_dir = write_scored(scored, output_dir, phase, tasks) if is_writer() else None
                    out[m, v] = RunResult(scored.name, run_dir, scored.scores, scored.config, timings)
                    wrote_one()
                timings["write"] += time.perf_counter() - t0

    board = None
    if is_writer() and (config.update_leaderboard if write_leaderboard is None else write_leaderboard):
        t0 = time.perf_counter()
        from neuco_jax.leaderboard import write_leaderboard  # pandas: imported only when needed

        try:
            board = write_leaderboard(output_dir, phase)
        except InputError as e:  # the runs are written; a leaderboard of the phase cannot be
            warnings.warn(f"leaderboard not updated: {e}", stacklevel=2)
        timings["write"] += time.perf_counter() - t0
    log.info("sweep of %d runs (%d reused): %s", len(out), sum(r.reused for r in out.values()),
             ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return [dataclasses.replace(out[key], leaderboard=board, timings=timings) for key in sorted(out)]


def _reused(methods, names, hashes, config: Config, record: dict, tasks, output_dir, phase: str) -> dict:
    """{(method, variant): RunResult} of the methods whose every variant the phase holds already (neuco_jax.reuse)."""
    from neuco_jax import reuse

    runs = reuse.phase_runs(output_dir, phase)
    if not runs:
        return {}
    types = {t.name: t.task_type for t in tasks}
    out = {}
    for m, (i, d) in enumerate(methods):
        found = {}
        for v, variant in enumerate(_variants(config, names[i], d)):
            hit = reuse.find(runs.get(variant.name, []), variant.config, record, hashes[i], types)
            if hit is None:
                break
            found[m, v] = RunResult(variant.name, hit[0], hit[1], variant.config, {}, reused=True)
        else:
            out.update(found)
    return out


@dataclasses.dataclass(frozen=True)
class Scored:
    """One method at one ablation variant, trained and scored, not yet written.

    folds: its TaskFolds per task; stored: its refitted probes (`store_probes`) or None; bench: the
    Prepared submission it was scored on; record: neuco_jax's extra summary keys (protocol
    fingerprints, content hash, selection optimism) that `write_scored` records.
    """

    name: str
    config: Config
    scores: list[TaskScore]
    folds: list[TaskFolds]
    stored: list | None
    bench: Prepared
    record: dict


def protocol_record(annotation_path, exclude_file, axes=()) -> dict:
    """neuco_jax's summary keys that the leaderboard compares besides the config (neuco_jax.protocol)."""
    return {"labels_fingerprint": labels_fingerprint(annotation_path),
            "exclude_fingerprint": exclude_fingerprint(exclude_file),
            **({"ablation_axes": list(axes)} if axes else {})}


def score_groups(benches: list[tuple[int, Prepared]], config: Config, plans: dict, width: int, chunk_size: int,
                 timings: dict, compiled_one, name_of, dim_of):
    """Train and score prepared methods, one compiled pass per group of the same coverage.

    Args:
      benches: [(method index, its Prepared submission)].
      config: the run's config (its ablation grid: one Scored per variant).
      plans: {coverage: what a kind plans once}, kept across calls so that methods of the same
        coverage share folds, batch orders and initial weights.
      width, chunk_size: the padded dim and methods axis of the program (equal shapes: one compile).
      timings, compiled_one: as GroupPass has them.
      name_of, dim_of: a method index's name and its ablation embedding dim (None: all of it).

    Yields:
      Per group, {(method index, variant index): Scored}.
    """
    lrs, _, fractions, _ = _grid(config)
    probe_kind = kind(config.probe_type)
    for cov, group in itertools.groupby(sorted(benches, key=lambda mb: coverage(mb[1])),
                                        key=lambda mb: coverage(mb[1])):
        group = list(group)
        results_of = probe_kind.run_pass(GroupPass(group, config, fractions, lrs, cov, plans, width, chunk_size,
                                                   timings, compiled_one))
        found = {}
        for slot, (m, bench) in enumerate(group):
            for v, variant in enumerate(_variants(config, name_of(m), dim_of(m))):
                folds, stored = results_of(slot, variant, bench)
                scores = [task_score(f.name, f.task_type, f.scores) for f in folds]
                found[m, v] = Scored(variant.name, variant.config, scores, folds, stored, bench, _optimism(folds))
        yield found


def write_scored(scored: Scored, output_dir, phase: str, raw_tasks) -> Path:
    """Write one Scored run as its run folder (results.write_run): result JSONs, fold scores, plots, probes."""
    extras = partial(_write_extras, config=scored.config, folds=scored.folds, stored=scored.stored,
                     bench=scored.bench, raw_tasks=raw_tasks)
    return results.write_run(output_dir, phase, scored.name, scored.scores, scored.config, fill=extras,
                             extensions=scored.record,
                             hyperparameters={f.name: f.hyperparameters for f in scored.folds})


def _optimism(folds: list[TaskFolds]) -> dict:
    """`selection_optimism` for a nested run: per task, the mean over folds of the reference's
    selection (best on the fold's held-out rows) minus the nested one, of the same probes."""
    if not any(f.test_fold_scores is not None for f in folds):
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a task whose folds all failed: NaN
        gaps = {f.name: float(np.nanmean(np.subtract(f.test_fold_scores, f.scores, dtype=np.float64))) for f in folds}
    return {"selection_optimism": {name: None if math.isnan(v) else v for name, v in gaps.items()}}


def _variants(config: Config, method: str, dim):
    lrs, _, fractions, epoch_points = _grid(config)
    for (l, lr), fraction, epochs in itertools.product(enumerate(lrs), fractions, epoch_points):
        name = _variant_name(method, config, lr, dim, fraction, epochs)
        variant_config = dataclasses.replace(
            config, learning_rate=lr, label_fraction=fraction, epochs=epochs,
            embedding_dim=dim or config.embedding_dim, ablations=Ablations())
        yield Variant(l, fraction, epochs, name, variant_config)


def _write_extras(run_dir: Path, *, config: Config, folds: list[TaskFolds], stored, bench: Prepared,
                  raw_tasks) -> None:
    """Fold scores (always), plots (`enable_plots`) and refitted probes (`store_probes`), into a run folder.

    Ridge has no curves, the SVM its curves over candidates; every kind gets its per-fold figures.
    """
    write_fold_scores(run_dir, folds)
    by_name = {p.task: p for p in stored or ()}
    for f in folds:
        if config.enable_plots:
            write_task_plots(run_dir / f.name, f.name, f.task_type, f.train_loss, f.test_loss, f.y_test, f.z_test,
                             metric_rule=f.metric_rule, curve_axis=f.curve_axis)
        if f.name in by_name:
            lo = hi = None
            if config.normalize_labels:  # the label range, so that the stored probe predicts in label units
                raw = next(r for r in raw_tasks if r.name == f.name)
                task = next(t for t in bench.tasks if t.name == f.name)
                kept = raw.labels[np.isin(raw.ids, task.ids)]
                lo, hi = float(kept.min()), float(kept.max())
            save_probe(run_dir / f.name / "probe", dataclasses.replace(by_name[f.name], label_min=lo, label_max=hi))


def evaluate(submission_file, annotation_path, config: Config, *, output_dir="results",
             method_name: str | None = None, phase: str = "results", exclude_file=None,
             progress: Progress | None = None, rerun: bool = False) -> list[RunResult]:
    """Evaluate one submission on every task of a labels folder and write the reference's files.

    Args:
      submission_file: embedding CSV (`id`, then one column per dimension).
      annotation_path: folder of `<task>__<type>.csv` label files.
      config: the validated evaluation config.
      output_dir, phase: results go to `<output_dir>/<phase>/<method>_<timestamp>/`.
      method_name: defaults to the submission file's stem.
      exclude_file: optional list of ids to drop.
      progress: where stage progress is shown (default: nowhere).
      rerun: train even when the phase holds a run of the same embeddings and config (see sweep).

    Returns:
      One RunResult per run written (or reused): a single one, or one per ablation variant.
    """
    submission_file = Path(submission_file)
    return sweep([submission_file], annotation_path, config, output_dir=output_dir, phase=phase,
                 method_names=[method_name or submission_file.stem], exclude_file=exclude_file, progress=progress,
                 rerun=rerun)


def sweep_configs(submission_files, annotation_path, configs: dict[str, Config], *, output_dir="results",
                  phase: str = "results", method_names=None, exclude_file=None, chunk_size: int | None = None,
                  progress: Progress | None = None, resamples: int = 2000, seed: int = 0, rerun: bool = False):
    """Evaluate the same submissions under several configs (probe kinds), one phase each, then their agreement.

    Config `stem` writes the phase `<phase>_<stem>` with its own leaderboard; every submission is read
    once for all configs (one `loaded` dict for every sweep). Then the phases are recorded as siblings
    and their agreement is written to `<output_dir>/leaderboards/agreement/` (neuco_jax.agreement);
    when it cannot be computed (e.g. a phase mixes protocols with earlier runs) it is skipped with a
    warning, and the runs and leaderboards stay.

    Args:
      submission_files, annotation_path, output_dir, method_names, exclude_file, chunk_size, progress, rerun:
        as sweep.
      configs: {stem: Config}, two or more, in the order their phases are compared; none with ablations.
      phase: the phases' common base name.
      resamples, seed: the agreement's fold bootstrap.

    Returns:
      ({phase name: its RunResults}, the agreement's files as agreement.save_agreement returns them, or None).
    """
    if len(configs) < 2:
        raise InputError(f"sweep --configs needs at least two configs to compare probes, got {len(configs)}; "
                         "use --config for a single one")
    phases = {stem: results.check_name("phase", f"{results.check_name('phase', phase)}_{stem}") for stem in configs}
    for stem, config in configs.items():
        if ablation_axes(config):
            raise InputError(f"config {stem!r} has ablations ({', '.join(ablation_axes(config))}); sweep --configs "
                             "compares probes, one phase per config: remove its ablations block, or run it with "
                             "--config")
    loaded: dict = {}
    runs = {phases[stem]: sweep(submission_files, annotation_path, config, output_dir=output_dir,
                                phase=phases[stem], method_names=method_names, exclude_file=exclude_file,
                                chunk_size=chunk_size, write_leaderboard=True, progress=progress, loaded=loaded,
                                rerun=rerun)
            for stem, config in configs.items()}
    if not is_writer():
        return runs, None
    from neuco_jax import agreement  # pandas and matplotlib: imported only when needed

    agreement.write_siblings(output_dir, phase, list(runs))
    try:
        found = agreement.agreement(output_dir, list(runs), resamples=resamples, seed=seed)
    except InputError as e:
        warnings.warn(f"agreement not written: {e}", stacklevel=2)
        return runs, None
    return runs, agreement.save_agreement(found, output_dir)
