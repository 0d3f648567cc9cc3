"""The annotation bundle of a phase (for EvalAI and Codabench) and scoring one submission against it.

`neuco-jax challenge pack` writes one zip per phase, what the host uploads as
EvalAI's test annotation file or Codabench's reference data:

    neuco_challenge.json    the phase's rules: name, phase, codename, split, embedding_dim,
                            min_coverage, max_file_bytes, anonymize_tasks, feedback,
                            names (task -> public name), metrics (leaderboard columns)
    config.yaml             the evaluation config, at the challenge's embedding_dim
    labels/                 the phase's hidden label files (labels.write_phase_labels)
    public_ids.txt          every id of the challenge (the coverage rule counts these)

It holds hidden labels: it goes to the platform's private annotation store,
never to participants. `score_submission` scores one submission as
`neuco-jax challenge` would, alone: per-task Q and their mean. It cannot give
the challenge's rank-then-aggregate position, which depends on every other
submission (see the README's EvalAI section).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import warnings
import zipfile
from pathlib import Path

import yaml

from neuco_jax.challenge import inbox
from neuco_jax.challenge.check import Scrubber, check_submission
from neuco_jax.challenge.labels import (aliases, challenge_config, phase_tasks, public_ids, public_names,
                                        write_phase_labels)
from neuco_jax.challenge.run import challenge_lock
from neuco_jax.challenge.spec import load_challenge
from neuco_jax.errors import InputError
from neuco_jax.files import atomic_path

MANIFEST = "neuco_challenge.json"
MEAN_Q = "mean_q"
# What an evaluation_script.zip for EvalAI holds: its worker imports the unpacked folder as a package.
EVALAI_INIT = '''"""EvalAI evaluation script of a neuco-jax challenge: neuco_jax must be installed on the worker."""
from neuco_jax.evalai import evaluate  # noqa: F401
'''


def pack(challenge_dir, phase: str, out, codename: str | None = None, split: str = "test_split",
         evaluation_script=None) -> dict:
    """Write the phase's annotation bundle to `out` (a .zip); returns its manifest.

    Args:
      codename: the EvalAI phase codename the bundle answers to (default: the phase's name).
      split: the dataset split codename the results are reported under.
      evaluation_script: also write EvalAI's evaluation_script.zip there.
    """
    spec = load_challenge(challenge_dir)
    p = spec.phase(phase)
    with challenge_lock(spec.root):
        names = public_names(spec, aliases(spec))
    tasks = phase_tasks(spec, p)
    config = challenge_config(spec)
    shown = None if names is None else {t: names[t] for t in tasks}
    manifest = {
        "format": 1, "name": spec.name, "phase": p.name, "codename": codename or p.name, "split": split,
        "embedding_dim": spec.embedding_dim, "min_coverage": spec.min_coverage,
        "max_file_bytes": spec.max_file_bytes, "anonymize_tasks": spec.anonymize_tasks,
        "feedback": spec.feedback, "names": shown,
        "metrics": [MEAN_Q] + ([] if shown is None else sorted(shown.values())),
    }
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out) as target:
        write_phase_labels(spec, p, Path(tmp) / "labels")
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST, json.dumps(manifest, indent=1))
            z.writestr("config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
            z.writestr("public_ids.txt", "".join(i + "\n" for i in sorted(public_ids(spec))))
            for f in sorted((Path(tmp) / "labels").iterdir()):
                z.write(f, f"labels/{f.name}")
    if evaluation_script is not None:
        with atomic_path(Path(evaluation_script)) as target, zipfile.ZipFile(target, "w") as z:
            z.writestr("__init__.py", EVALAI_INIT)
    return manifest


@dataclasses.dataclass(frozen=True)
class SubmissionScore:
    """metrics: leaderboard column -> value (None for a NaN Q); detail: what the team may see; split: its codename."""

    metrics: dict[str, float | None]
    detail: dict
    split: str


def _number(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def score_submission(bundle, submission, codename: str | None = None) -> SubmissionScore:
    """Check and score one submission against a packed phase (module docstring).

    Args:
      bundle: the bundle zip, or a folder holding its unpacked files.
      submission: the submitted file (any store; .zip / .zarr.zip archives are unpacked safely).
      codename: the phase codename the platform gives; must match the bundle's.

    Raises:
      InputError: the submission breaks a rule; its message names no hidden task and no private path.
    """
    from neuco_jax.config import load_config
    from neuco_jax.data import load_labels
    from neuco_jax.pipeline import evaluate

    bundle, submission = Path(bundle), Path(submission)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if bundle.is_file():
            inbox.unpack(bundle, tmp / "bundle", 1 << 40)  # the host's own file
            bundle = tmp / "bundle"
        if not (bundle / MANIFEST).is_file():
            raise InputError(f"{bundle}: no {MANIFEST}; the annotation file must be what `neuco-jax challenge pack` "
                             f"wrote")
        manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
        if codename is not None and codename != manifest["codename"]:
            raise InputError(f"this phase's annotation file is for phase codename {manifest['codename']!r}, not "
                             f"{codename!r}; upload the bundle packed for this phase (challenge pack --codename)")
        names = manifest["names"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the organiser's label files
            tasks = load_labels(bundle / "labels")
        ids = set((bundle / "public_ids.txt").read_text(encoding="utf-8").split())
        scrub = Scrubber([t.name for t in tasks], names, paths=[tmp, bundle, submission.parent])
        shown_name = submission.name
        size = sum(p.stat().st_size for p in ([submission] if submission.is_file() else submission.rglob("*")))
        if size > manifest["max_file_bytes"]:
            raise InputError(f"{shown_name}: is {size} bytes, over the challenge's limit of {manifest['max_file_bytes']}")
        if submission.is_dir() and inbox.extension(submission.name) != ".zarr":  # a zarr group's files
            (tmp / "submission.zarr").symlink_to(submission.absolute(), target_is_directory=True)
            submission = tmp / "submission.zarr"
        try:
            store = inbox.readable_store(submission, tmp / "work", manifest["max_file_bytes"])
        except InputError as e:
            raise InputError(scrub(f"{shown_name}: {e}")) from None
        verdict = check_submission(store, shown_name, tasks, ids, manifest["embedding_dim"],
                                   manifest["min_coverage"], scrub)
        if not verdict.ok:
            raise InputError(verdict.public_reason) from None
        config = load_config(bundle / "config.yaml")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # about the hidden labels: nothing for a team
            run, = evaluate(store, bundle / "labels", config, output_dir=tmp / "runs", method_name="submission",
                            phase="challenge")
    q = {s.name: s.q_stat for s in run.scores}
    mean = sum(q.values()) / len(q)
    metrics = {MEAN_Q: _number(mean)}
    if names is not None:
        by_name = {names[t]: _number(v) for t, v in q.items()}
        metrics.update({m: by_name[m] for m in manifest["metrics"][1:]})  # the leaderboard's column order
    detail = {"status": "accepted", "notes": list(verdict.notes)}
    if manifest["feedback"] != "status":
        detail["mean_q"] = _number(mean)
    if manifest["feedback"] == "tasks" and names is not None:
        detail["task_q"] = {names[t]: _number(v) for t, v in sorted(q.items(), key=lambda kv: names[kv[0]])}
    detail["ranking"] = ("the challenge ranks teams by rank-then-aggregate over every submission; "
                         "mean_q is this submission's own score")
    return SubmissionScore(metrics, detail, manifest["split"])
