"""In-process scoring: embeddings as arrays in, scores out, in the caller's process, compiled once.

    bench = neuco_jax.Benchmark("data/labels", "configs/linear.yaml")
    result = bench.score(ids, embeddings)            # (N, D) numpy or JAX array
    result.tasks["biomass_mean"].q, result.overall_q
    bench.write(result, "results", "validation")     # a run folder, as `evaluate` writes it

The labels, the folds, every probe kind's plan and the compiled program are built on the first
call and reused by every later call of the same shapes, so a research loop pays for training
only. The scores are those `evaluate` gives for the same embeddings in a file: the same
preprocessing, folds, initial weights and batch orders, the same compiled pass
(neuco_jax.pipeline.score_groups). A JAX array stays on its device: it is checked, filtered,
standardised and stacked there (the linear, kNN and MLP probes train on it in place; ridge and the
SVM fit on host arrays and fetch it once).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np

from neuco_jax.config import Config, config_from_dict, default_config, load_config
from neuco_jax.data import (CONTENT_KEY, Prepared, array_sha256, clean_ids, load_labels, prepare,
                            read_exclude_ids)
from neuco_jax.errors import ConfigError, InputError
from neuco_jax.pipeline import Scored, ablation_axes, protocol_record, score_groups, write_scored
from neuco_jax.results import method_name
from neuco_jax.scores import overall

# Probe kinds that train on a device array as it is; the others get a host copy.
ON_DEVICE = ("linear", "knn", "mlp")


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """One task of a Result: the reference's mean, population std and Q over its folds."""

    name: str
    task_type: str
    mean: float
    std: float
    q: float
    fold_scores: np.ndarray  # (k_folds,) held-out R^2 or F1, NaN where the fold failed
    hyperparameters: dict  # the result JSON's, e.g. the epochs or the k chosen per fold

    @property
    def failed_folds(self) -> int:
        return int(np.isnan(self.fold_scores).sum())


@dataclasses.dataclass(frozen=True)
class Result:
    """One scored method: `tasks[name]` per task, the summary's overall scores, the call's timings."""

    method_name: str
    tasks: dict[str, TaskResult]
    overall_q: float  # the mean of the tasks' Q, results_summary.json's overall_q_score
    overall_acc: float  # the mean of the tasks' mean scores
    config: Config
    timings: dict[str, float]  # seconds of the call's stages: prepare, compile, train
    scored: Scored = dataclasses.field(repr=False)
    _content: object = dataclasses.field(repr=False, default=None)  # a hash, or a function that computes it

    @property
    def content_hash(self) -> str:
        """"sha256:<hex>" of the ids, dtype, shape and bytes of the array scored (what a run records)."""
        return self._content() if callable(self._content) else self._content


class Benchmark:
    """A labels folder and a config, ready to score embeddings given as arrays (module docstring).

    Args:
      annotation_path: folder of `<task>__<type>.csv` label files.
      config: a Config, the path of a YAML config, a dict of config keys, or None (the packaged linear
        config, as `neuco-jax config` prints it: the reference's defaults).
        Its ablations block must be empty: a Benchmark scores one protocol (run ablations with sweep).
      exclude_file: optional text file of ids to drop from every submission, one per line.
    """

    def __init__(self, annotation_path, config: Config | str | Path | dict | None = None, *, exclude_file=None):
        self.annotation_path = Path(annotation_path)
        self.config = _as_config(config)
        if ablation_axes(self.config):
            raise ConfigError(f"config has ablations ({', '.join(ablation_axes(self.config))}); a Benchmark scores "
                              "one protocol: remove the ablations block, or run them with `neuco-jax sweep`")
        self.exclude_file = exclude_file
        self.tasks = load_labels(annotation_path)
        self._raw_tasks = self.tasks
        self._exclude = read_exclude_ids(exclude_file) if exclude_file is not None else set()
        self.record = protocol_record(annotation_path, exclude_file)  # the leaderboard's protocol fingerprints
        self._valid = {i for t in self.tasks for i in t.ids}
        self._plans: dict = {}  # every probe kind's plan per coverage, kept across calls

    def score(self, ids, embeddings, *, method_name: str | None = None) -> Result:
        """Score one method's embeddings: ids (a sequence of str, one per row) and an (N, D) array.

        Rows are matched to the labels by id as a submission file's are (ids lose surrounding
        whitespace and a trailing .zarr/.zarr.zip; rows of excluded or unlabelled ids are dropped).
        D may be below the config's embedding_dim (zero-padded, as a file is), not above.

        Raises:
          InputError: one line naming the problem: ids and rows of different lengths, a duplicated
            id, an array that is not 2-D or wider than embedding_dim, NaN or infinity, no id of the labels.
        """
        return self.score_many([(ids, embeddings)], method_names=[method_name or "method"])[0]

    def score_many(self, submissions, *, method_names=None) -> list[Result]:
        """Score several methods in one compiled pass (the methods axis of a sweep).

        Args:
          submissions: a sequence of (ids, embeddings) pairs, or a {method_name: (ids, embeddings)} dict.
          method_names: one per pair (default: method_0, method_1, ...); not with a dict.

        Returns:
          One Result per method, in the given order. Methods of the same width and ids share one
          program; calling again with the same shapes reuses it.
        """
        if isinstance(submissions, dict):
            if method_names is not None:
                raise InputError("score_many got a dict and method_names; the dict's keys are the names")
            method_names, submissions = list(submissions), list(submissions.values())
        submissions = list(submissions)
        if not submissions:
            raise InputError("score_many got no embeddings; pass at least one (ids, embeddings) pair")
        names = list(method_names) if method_names is not None else [f"method_{i}" for i in range(len(submissions))]
        if len(names) != len(submissions):
            raise InputError(f"{len(names)} method names for {len(submissions)} embeddings; give one name each")
        if len(set(names)) != len(names):
            raise InputError(f"method name {next(n for n in names if names.count(n) > 1)!r} is used twice; "
                             "give each method its own name")
        timings = dict.fromkeys(("prepare", "compile", "train"), 0.0)
        t0 = time.perf_counter()
        config = self.config
        checked = [self._checked(ids, x, name) for name, (ids, x) in zip(names, submissions)]
        benches = [(m, self._prepare(ids, x)) for m, (ids, x, _) in enumerate(checked)]
        width = max(b.x.shape[1] for _, b in benches)
        timings["prepare"] = time.perf_counter() - t0
        stages = {"load": 0.0, "compile": 0.0, "train": 0.0}
        found = {}
        for group in score_groups(benches, config, self._plans, width, len(benches), stages, lambda: None,
                                  names.__getitem__, lambda m: None):
            found.update({m: scored for (m, _), scored in group.items()})
        timings["prepare"] += stages["load"]
        timings["compile"], timings["train"] = stages["compile"], stages["train"]
        out = []
        for m, name in enumerate(names):
            scored = found[m]
            q, acc = overall(scored.scores)
            hyper = {f.name: f.hyperparameters for f in scored.folds}
            tasks = {s.name: TaskResult(s.name, s.task_type, s.mean_score, s.std_dev, s.q_stat, s.fold_scores,
                                        hyper[s.name]) for s in scored.scores}
            out.append(Result(name, tasks, q, acc, scored.config, timings, scored, checked[m][2]))
        return out

    def leaderboard(self, results, *, output_dir=None, phase: str | None = None, weighting: str = "std"):
        """Rank results by rank-then-aggregate over their tasks' Q, as `neuco-jax leaderboard` does.

        Args:
          results: Results of this Benchmark (each a method).
          output_dir, phase: also rank the newest complete run of each method already written there
            (a method of the same name in `results` replaces it).
          weighting: "std" (the reference's task weights) or "uniform".

        Returns:
          The leaderboard DataFrame (neuco_jax.leaderboard.rank_runs), best first.
        """
        from neuco_jax.leaderboard import read_runs, rank_runs, runs_table  # pandas: only when asked

        runs = [{"experiment": r.method_name, "q": {t: v.q for t, v in r.tasks.items()},
                 "acc": {t: v.mean for t, v in r.tasks.items()}, "overall_q": r.overall_q,
                 "overall_acc": r.overall_acc, **_protocol(r, self.record)} for r in results]
        if (output_dir is None) != (phase is None):
            raise InputError("leaderboard: give both output_dir and phase to rank written runs too, or neither")
        if output_dir is not None:
            mine = {r.method_name for r in results}
            runs = [run for run in read_runs(output_dir, phase, latest=True)
                    if method_name(run["run_dir"].name) not in mine] + runs
        return rank_runs(runs_table(runs), weighting)

    def write(self, result: Result, output_dir="results", phase: str = "results", *,
              update_leaderboard: bool | None = None) -> Path:
        """Write a Result as the run folder `evaluate` writes (`<output_dir>/<phase>/<method>_<stamp>/`),
        recording its content hash, so that it joins the phase's leaderboard, `compare` and `report`.

        update_leaderboard: rebuild the phase's leaderboard after it (default: the config's key).
        """
        scored = dataclasses.replace(result.scored,
                                     record={**self.record, **result.scored.record, CONTENT_KEY: result.content_hash})
        run_dir = write_scored(scored, output_dir, phase, self._raw_tasks)
        if self.config.update_leaderboard if update_leaderboard is None else update_leaderboard:
            from neuco_jax.leaderboard import write_leaderboard

            try:
                write_leaderboard(output_dir, phase)
            except InputError as e:  # the run is written; a leaderboard of the phase cannot be
                warnings.warn(f"leaderboard not updated: {e}", stacklevel=2)
        return run_dir

    def _checked(self, ids, x, name: str):
        """(clean ids, x kept rows, content hash or a function computing it): the checks a file gets."""
        where = f"embeddings {name!r}"
        on_device = _is_jax(x)
        if not on_device:
            x = np.asarray(x)
        if x.ndim != 2:
            raise InputError(f"{where}: expected an (N, D) array, got shape {tuple(x.shape)}")
        ids = np.asarray(list(ids), dtype=object)
        if len(ids) != x.shape[0]:
            raise InputError(f"{where}: {len(ids)} ids for {x.shape[0]} rows; give one id per row")
        if not len(ids):
            raise InputError(f"{where}: no rows (shape {tuple(x.shape)}); pass at least one embedding")
        if not all(isinstance(i, str) for i in ids):
            bad = next(i for i in ids if not isinstance(i, str))
            raise InputError(f"{where}: ids must be strings, got {type(bad).__name__} {bad!r}")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise InputError(f"{where}: dtype {x.dtype} is not a real number type; pass float32 embeddings")
        dim = self.config.embedding_dim
        if x.shape[1] == 0 or (dim is not None and x.shape[1] > dim):
            raise InputError(f"{where}: {x.shape[1]} dimensions but embedding_dim is {dim}; "
                             f"raise embedding_dim in the config or pass at most {dim} columns" if x.shape[1]
                             else f"{where}: no dimensions (shape {tuple(x.shape)})")
        content = _hash_later(ids, x) if on_device else array_sha256(ids, x)
        stripped = np.asarray([i.strip() for i in ids], dtype=object)
        if (stripped != ids).any():
            r = int(np.argmax(stripped != ids))
            warnings.warn(f"{where}: ids with surrounding whitespace, which is stripped before matching the labels "
                          f"(first: {ids[r]!r} at row {r})", stacklevel=4)
        ids = clean_ids(_pa_strings(stripped))
        if len(set(ids)) != len(ids):
            seen = {}
            r = next(r for r, i in enumerate(ids) if seen.setdefault(i, r) != r)
            raise InputError(f"{where}: id {ids[r]!r} is on rows {seen[ids[r]]} and {r}; give each id one row")
        keep = np.fromiter((i not in self._exclude and i in self._valid for i in ids), bool, len(ids))
        if not keep.any():
            example = f" (e.g. {min(self._valid)!r})" if self._valid else ""
            raise InputError(f"{where}: none of its {len(ids)} ids (e.g. {ids[0]!r}) is an id of the labels{example}"
                             f"{' outside the exclude file' if self._exclude else ''}; pass the label files' ids")
        rows = np.flatnonzero(keep)
        x = x[rows] if len(rows) < len(ids) else x
        if on_device:
            import jax
            import jax.numpy as jnp

            x = x.astype(jnp.float32)
            finite = bool(jax.device_get(jnp.isfinite(x).all()))
        else:
            x = np.asarray(x, np.float32)
            finite = bool(np.isfinite(x).all())
        if not finite:
            bad = np.argwhere(~np.isfinite(np.asarray(_fetch(x))))[0]
            raise InputError(f"{where}: row {rows[bad[0]]} (id {ids[rows[bad[0]]]!r}), column {bad[1]} holds "
                             f"{_fetch(x[bad[0], bad[1]])}; embeddings must be finite (a file's empty cells read "
                             f"as 0, an array's NaN is an error)")
        if dim is not None and x.shape[1] < dim:  # zero-padded on the right, as a narrower file is
            pad = ((0, 0), (0, dim - x.shape[1]))
            x = jnp.pad(x, pad) if on_device else np.pad(x, pad)
        return ids[rows], x, content

    def _prepare(self, ids, x) -> Prepared:
        """prepare()'s join and scaling; a device array is standardised on its device."""
        config = self.config
        if not _is_jax(x):
            return prepare(self.tasks, ids, x, standardize=config.standardize_embeddings,
                           normalize_labels=config.normalize_labels, task_filter=config.task_filter)
        mean, std = 0.0, 1.0
        if config.standardize_embeddings:
            mean, std = _moments(x)
            x = _scaled(x, mean, std)
        if config.probe_type not in ON_DEVICE:
            x = np.asarray(_fetch(x))
        bench = prepare(self.tasks, ids, x, standardize=False, normalize_labels=config.normalize_labels,
                        task_filter=config.task_filter)  # without standardising, prepare only joins ids
        return dataclasses.replace(bench, mean=mean, std=std)


def _as_config(config) -> Config:
    if config is None:  # the packaged sample config, as `neuco-jax config` prints it
        return default_config("linear")
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def _protocol(result: Result, record: dict) -> dict:
    """What the leaderboard's protocol check reads of a run (neuco_jax.protocol.protocol_of)."""
    from neuco_jax.protocol import protocol_of

    summary = {"config": result.config.to_dict(), **record}
    return {"config": summary["config"], "protocol": protocol_of(summary), "ablation_axes": (),
            "selection_optimism": {}}


def _is_jax(x) -> bool:
    return type(x).__module__.startswith("jax")


def _fetch(x):
    """A device array's value on the host (an explicit transfer); numpy passes through."""
    if _is_jax(x):
        import jax

        return jax.device_get(x)
    return x


def _hash_later(ids, x):
    """array_sha256 of a device array, computed (one transfer) only when a run is written."""
    cache = []

    def content():
        if not cache:
            cache.append(array_sha256(ids, np.asarray(_fetch(x))))
        return cache[0]

    return content


def _moments(x) -> tuple[float, float]:
    """The global mean and std of a device array in float64 on its device, as prepare takes them on the host."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        mean, std = jax.device_get((jnp.mean(x, dtype=jnp.float64), jnp.std(x, dtype=jnp.float64)))
    return float(mean), float(std) or 1.0


def _scaled(x, mean: float, std: float):
    """(x - mean) / std on x's device, rounded as numpy rounds it: XLA turns a division by a scalar
    into a product with its reciprocal (a last-bit difference on about one value in six), not a
    division by an array of it."""
    import jax
    import jax.numpy as jnp

    return jax.lax.div(x - mean, jnp.full(x.shape, std, x.dtype))


def _pa_strings(ids):
    import pyarrow as pa

    return pa.array(list(ids), pa.string())

