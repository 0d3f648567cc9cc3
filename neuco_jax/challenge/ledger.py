"""The record of every submission of a phase: `<challenge_dir>/private/<phase>/submissions.json`.

One record per version of a file in the inbox (a file replaced by new content
is a new record). The ledger, not the inbox, is what is ranked: an accepted
submission stays ranked (its copy is kept in the archive) even if the team
deletes or replaces its file. It is rewritten whole (temporary file + rename)
after submissions are checked and again after they are scored, so a crash
leaves either the old ledger or the new one; accepted submissions without a
score for the current protocol are scored by the next run.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

from neuco_jax.errors import InputError
from neuco_jax.results import atomic_write_text

LEDGER_FILE = "submissions.json"
ACCEPTED, REJECTED, DUPLICATE = "accepted", "rejected", "duplicate"


@dataclasses.dataclass
class Record:
    """One submission.

    id: `<team>/<name>#<first 12 hex digits of sha256>` (`@<signature>` when it was never read);
    signature: inbox.Entry.signature of the version it was read from;
    submitted_at: the file's modification time, or the time it was first seen if that is earlier (UTC, ISO 8601);
    status: accepted, rejected or duplicate (the same team's identical file, scored once);
    reason / public_reason: why it was rejected, for organisers / for the team;
    archive: the kept copy under private/<phase>/archive/ (accepted ones only);
    runs: protocol id -> run folder name under private/<phase>/runs/<protocol id>/<phase>/.
    """

    id: str
    team: str
    name: str
    signature: str
    sha256: str | None
    size: int
    submitted_at: str
    seen_at: str
    status: str
    reason: str | None = None
    public_reason: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    archive: str | None = None
    runs: dict[str, str] = dataclasses.field(default_factory=dict)
    duplicate_of: str | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.submitted_at)


def iso(moment: datetime) -> str:
    """A UTC time as ISO 8601 with seconds, e.g. 2025-04-30T23:59:59+00:00."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def load_ledger(path: Path) -> list[Record]:
    if not path.exists():
        return []
    try:
        return [Record(**item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: the submission ledger is damaged ({e}); restore it from a backup "
                         f"(it is rewritten whole on every run, never edited in place)") from None


def save_ledger(path: Path, records: list[Record]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([dataclasses.asdict(r) for r in records], indent=1))
