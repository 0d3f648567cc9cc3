"""`neuco-jax challenge`: check new submissions, score them in one sweep per phase, republish.

One run, under the challenge's lock (`<challenge_dir>/.challenge.lock`,
fcntl.flock: a second run waits, or fails with `wait=False`), for each phase:

1. the phase's private labels are (re)built, and the protocol id is the hash
   of the evaluation config and those labels: runs live in
   `private/<phase>/runs/<protocol id>/`, so a changed config or label file
   re-scores every accepted submission instead of ranking mixed protocols;
2. the inbox is scanned; files whose size and modification time match a record are
   known and not read again. Each new one is copied into the archive while
   its sha256 is computed, then checked (path rules, size, deadline, daily
   limit, content: check.check_submission) and recorded; the ledger is saved;
3. every accepted submission without a run under the protocol is scored, all
   in ONE pipeline.sweep (content seen before, by any team, is never scored
   twice; a run left by an interrupted sweep is picked up, not redone). If
   the sweep fails, each submission is retried alone so that one bad file
   cannot hold back the others; the ledger is saved again;
4. the phase is ranked and published (neuco_jax.challenge.board).

Nothing in the inbox is modified or deleted. Run twice with nothing new, a
run reads no submission and trains nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from neuco_jax.challenge import board, inbox
from neuco_jax.challenge.check import Scrubber, check_submission
from neuco_jax.challenge.labels import aliases, challenge_config, public_ids, public_names, write_phase_labels
from neuco_jax.challenge.ledger import (ACCEPTED, DUPLICATE, LEDGER_FILE, REJECTED, Record, iso, load_ledger,
                                        save_ledger)
from neuco_jax.challenge.spec import Challenge, Phase, load_challenge
from neuco_jax.config import Config
from neuco_jax.data import labels_fingerprint, load_labels
from neuco_jax.errors import InputError
from neuco_jax.files import atomic_path, remove
from neuco_jax.progress import Progress

LOCK_FILE = ".challenge.lock"


@dataclasses.dataclass(frozen=True)
class PhaseOutcome:
    """What one run did in one phase.

    new: records added (accepted, rejected or duplicate); scored: sha256 of the
    contents trained on in this run (empty when nothing new); leaderboard: the
    public table.
    """

    phase: str
    new: list[Record]
    scored: list[str]
    leaderboard: object
    public_dir: Path


@contextlib.contextmanager
def challenge_lock(root: Path, wait: bool = True):
    """Hold `<root>/.challenge.lock` exclusively (fcntl.flock) for the block."""
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise InputError(f"{path}: another `neuco-jax challenge` run holds the challenge; "
                                 f"wait for it to end and run again") from None
            raise
        yield
    finally:
        os.close(fd)  # releases the lock


def run_challenge(challenge_dir, phase: str | None = None, *, wait: bool = True, quiet: bool = True,
                  report: bool = True, now: datetime | None = None) -> list[PhaseOutcome]:
    """Run the challenge once (module docstring) for one phase or, by default, every phase.

    Args:
      challenge_dir: the organiser's folder with challenge.yaml.
      phase: only this phase.
      wait: wait for another run that holds the lock; False fails at once.
      quiet: no progress bars.
      report: write the organisers' HTML report (private/<phase>/report/) when new runs were scored.
      now: the current time (tests); default the clock's.
    """
    spec = load_challenge(challenge_dir)
    phases = [spec.phase(phase)] if phase is not None else list(spec.phases.values())
    with challenge_lock(spec.root, wait):
        config = challenge_config(spec)
        alias_of = aliases(spec)
        ids = public_ids(spec)
        return [_run_phase(spec, p, config, alias_of, ids, quiet, report, now or datetime.now(timezone.utc))
                for p in phases]


def _sync_labels(spec: Challenge, phase: Phase, folder: Path) -> Path:
    """Rebuild the phase's private labels folder; it is replaced (whole) only when its content changes."""
    staging = folder.with_name(f".{folder.name}.new")
    remove(staging)
    try:
        write_phase_labels(spec, phase, staging)
        if not folder.is_dir() or labels_fingerprint(folder) != labels_fingerprint(staging):
            with atomic_path(folder) as target:
                os.replace(staging, target)
    finally:
        remove(staging)
    return folder


def protocol_id(config: Config, labels_dir: Path) -> str:
    """A short id of what decides a submission's scores: the config and the phase's labels."""
    text = json.dumps({"config": config.to_dict(), "labels": labels_fingerprint(labels_dir)}, sort_keys=True)
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _method(sha: str) -> str:
    return f"s{sha[:16]}"


def _archived(archive: Path, sha: str, name: str) -> Path:
    return archive / (sha + inbox.extension(name))


def _run_phase(spec: Challenge, phase: Phase, config: Config, alias_of: dict[str, str], ids: set[str],
               quiet: bool, report: bool, now: datetime) -> PhaseOutcome:
    private = spec.root / "private" / phase.name
    labels_dir = _sync_labels(spec, phase, private / "labels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the organiser's own label files
        tasks = load_labels(labels_dir)
    protocol = protocol_id(config, labels_dir)
    runs_dir = private / "runs" / protocol
    names = public_names(spec, alias_of)
    scrub = Scrubber(alias_of, names, paths=[spec.root])
    ledger_path = private / LEDGER_FILE
    records = load_ledger(ledger_path)
    work = private / ".work"
    remove(work)  # what an interrupted run left
    work.mkdir(parents=True)
    try:
        known = {(r.team, r.name, r.signature) for r in records}
        entries = [e for e in inbox.scan(spec.root / "submissions" / phase.name, spec.max_file_bytes)
                   if (e.team, e.name, e.signature) not in known]
        new = _intake(spec, phase, entries, records, tasks, ids, scrub, private / "archive", work, now)
        if new:
            records += new
            save_ledger(ledger_path, records)
        done, touched = _score(spec, phase, config, records, labels_dir, runs_dir, protocol, private / "archive",
                               work, quiet)
        if touched:
            save_ledger(ledger_path, records)
        table = board.publish(spec, phase, records, runs_dir, protocol, names,
                              report=report and (bool(done) or not (private / "report" / "report.html").exists()))
    finally:
        remove(work)
    return PhaseOutcome(phase.name, new, done, table, spec.root / "public" / phase.name)


def _intake(spec: Challenge, phase: Phase, entries, records: list[Record], tasks, ids: set[str], scrub: Scrubber,
            archive: Path, work: Path, now: datetime) -> list[Record]:
    """Copy, hash, check and record new inbox entries, oldest first (see the module docstring, step 2)."""
    archive.mkdir(parents=True, exist_ok=True)
    accepted = {r.sha256: r for r in records if r.status == ACCEPTED}  # content -> its first accepted record
    mine = {(r.team, r.sha256): r for r in records if r.status == ACCEPTED}
    per_day = Counter((r.team, r.time.date()) for r in records if r.status == ACCEPTED)
    new = []
    for i, entry in enumerate(sorted(entries, key=lambda e: (e.mtime, e.team, e.name))):
        submitted = min(datetime.fromtimestamp(entry.mtime, timezone.utc), now)
        record = Record(id=f"{entry.team}/{entry.name}@{entry.signature[:12]}", team=entry.team, name=entry.name,
                        signature=entry.signature, sha256=None, size=entry.size, submitted_at=iso(submitted),
                        seen_at=iso(now), status=REJECTED)
        new.append(record)

        def reject(reason: str, public: str | None = None) -> None:
            record.status, record.reason = REJECTED, reason
            record.public_reason = public if public is not None else scrub(reason)

        if entry.problem:
            reject(f"{entry.name}: {entry.problem}")
            continue
        staged = work / f"{i}{inbox.extension(entry.name)}"
        try:
            record.sha256 = inbox.copy_hashed(entry, staged, spec.max_file_bytes)
        except InputError as e:
            reject(f"{entry.name}: {e}")
            continue
        record.id = f"{entry.team}/{entry.name}#{record.sha256[:12]}"
        key = (entry.team, record.sha256)
        if key in mine:
            record.status, record.duplicate_of = DUPLICATE, mine[key].id
            record.public_reason = f"identical to your earlier submission {mine[key].name}; scored once"
            inbox.discard(staged)
            continue
        day = (entry.team, submitted.date())
        if phase.deadline is not None and submitted > phase.deadline:
            reject(f"{entry.name}: submitted {iso(submitted)}, after the phase's deadline {iso(phase.deadline)}")
        elif spec.max_submissions_per_day is not None and per_day[day] >= spec.max_submissions_per_day:
            reject(f"{entry.name}: the team already has {per_day[day]} valid submissions on {day[1]} (UTC), "
                   f"the daily limit")
        elif record.sha256 in accepted:  # another team's identical file: same content, same verdict
            first = accepted[record.sha256]
            record.status, record.notes, record.archive = ACCEPTED, list(first.notes), first.archive
            record.reason = f"identical to {first.id}"  # for organisers only
        else:
            try:
                store = inbox.readable_store(staged, work / f"{i}.unpacked", spec.max_file_bytes)
                verdict = check_submission(store, entry.name, tasks, ids, spec.embedding_dim, spec.min_coverage, scrub)
            except InputError as e:
                verdict = None
                reject(f"{entry.name}: {e}")
            if verdict is not None and not verdict.ok:
                reject(verdict.reason, verdict.public_reason)
                record.notes = list(verdict.notes)
            elif verdict is not None:
                record.status, record.notes = ACCEPTED, list(verdict.notes)
                target = _archived(archive, record.sha256, entry.name)
                if not target.exists():
                    os.replace(staged, target)
                    if entry.name.endswith(".npy"):
                        os.replace(staged.with_name(f"{i}{inbox.SIDECAR}"), target.with_name(
                            record.sha256 + inbox.SIDECAR))
                record.archive = target.name
        if record.status == ACCEPTED:
            accepted.setdefault(record.sha256, record)
            mine[key] = record
            per_day[day] += 1
        inbox.discard(staged)
    return new


def _finished_run(runs_dir: Path, phase: str, sha: str) -> str | None:
    """The complete run folder an earlier (maybe interrupted) sweep left for this content, if any."""
    folder = runs_dir / phase
    found = sorted(folder.glob(f"{_method(sha)}_*/results_summary.json")) if folder.is_dir() else []
    return found[0].parent.name if found else None


def _score(spec: Challenge, phase: Phase, config: Config, records: list[Record], labels_dir: Path, runs_dir: Path,
           protocol: str, archive: Path, work: Path, quiet: bool) -> tuple[list[str], bool]:
    """Score every accepted submission lacking a run under `protocol`.

    Returns the sha256 scored now, and whether any record changed.
    """
    waiting = {}  # sha256 -> records
    for r in records:
        if r.status == ACCEPTED and protocol not in r.runs:
            waiting.setdefault(r.sha256, []).append(r)
    runs = {sha: _finished_run(runs_dir, phase.name, sha) for sha in waiting}
    todo = [sha for sha, run in runs.items() if run is None]
    stores = {}
    for k, sha in enumerate(todo):
        path = archive / waiting[sha][0].archive
        stores[sha] = inbox.readable_store(path, work / f"score{k}", spec.max_file_bytes)

    def one_sweep(shas):
        from neuco_jax.pipeline import sweep  # jax: imported only when there is something to score

        with Progress(quiet=quiet) as progress, warnings.catch_warnings():
            # The phase's own label files (empty labels) are the organiser's, known and on purpose.
            warnings.filterwarnings("ignore", message=re.escape(str(labels_dir)))
            return sweep([stores[s] for s in shas], labels_dir, config, output_dir=runs_dir, phase=phase.name,
                         method_names=[_method(s) for s in shas], write_leaderboard=False, progress=progress)

    if todo:
        try:
            results = one_sweep(todo)
            runs.update({sha: run.run_dir.name for sha, run in zip(todo, results)})
        except Exception as batch_error:  # noqa: BLE001 - find the submission that broke it
            if len(todo) == 1:
                results_of = {todo[0]: batch_error}
            else:
                results_of = {}
                for sha in todo:
                    try:
                        runs[sha] = one_sweep([sha])[0].run_dir.name
                    except Exception as e:  # noqa: BLE001
                        results_of[sha] = e
            for sha, error in results_of.items():
                for r in waiting[sha]:
                    r.status, r.reason = REJECTED, f"{r.name}: could not be scored ({type(error).__name__}: {error})"
                    r.public_reason = f"{r.name}: could not be scored; the organisers have the details"
                runs.pop(sha, None)
    for sha, run in runs.items():
        if run is not None:
            for r in waiting[sha]:
                r.runs[protocol] = run
    return [sha for sha in todo if runs.get(sha) is not None], bool(waiting)
