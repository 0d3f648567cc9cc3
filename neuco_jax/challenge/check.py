"""Whether one submission can be scored in a phase, and what a team may be told about it.

`check_submission` reads a store exactly as the sweep will (data.load_submission,
then the join of data.prepare), so a submission it accepts cannot stop the
phase's sweep; it adds the challenge's rules: the embedding_dim cap and the
share of the labelled ids a submission must embed.

Teams must learn nothing about the hidden tasks from a rejection. `Scrubber`
rewrites any text meant for a team: hidden task names become their public
aliases (or "a task"), the organiser's paths disappear. Problems found while
joining a submission to the labels (a task left with too few rows or one
label value) get one generic public reason: their exact text names a task or
a label value.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

from neuco_jax.data import Task, load_submission, prepare
from neuco_jax.errors import InputError

JOIN_PROBLEM = ("the ids it embeds leave some task with too few labelled rows (or a single label value) "
                "to be scored; embed every id of the challenge")


class Scrubber:
    """Rewrites text for teams: task names -> aliases (or "a task"), private paths -> nothing."""

    def __init__(self, tasks, aliases: dict[str, str] | None = None, paths=()):
        self.aliases = aliases or {}
        # Longest first, so that a task whose name contains another's is replaced whole; '_' counts as a
        # boundary too, since label files are named <task>__<type>.csv.
        names = sorted(set(tasks), key=len, reverse=True)
        self._tasks = re.compile("|".join(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])" for n in names)) \
            if names else None
        self._paths = sorted({str(p) for p in paths for p in (Path(p), Path(p).resolve())}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for p in self._paths:
            text = text.replace(p + "/", "").replace(p, "")
        if self._tasks is not None:
            text = self._tasks.sub(lambda m: self.aliases.get(m.group(0), "a task"), text)
        return text


@dataclasses.dataclass(frozen=True)
class Verdict:
    """reason: the full problem, for organisers; public_reason: what the team is told; notes: public warnings."""

    ok: bool
    reason: str | None = None
    public_reason: str | None = None
    notes: tuple[str, ...] = ()
    rows: int = 0


def check_submission(store: Path, shown_name: str, tasks: list[Task], public_ids: set[str], embedding_dim: int,
                     min_coverage: float, scrub: Scrubber) -> Verdict:
    """Check one submission store against a phase's tasks and the challenge's rules.

    Args:
      store: a readable store (archives already unpacked).
      shown_name: the name the team submitted it under; replaces `store`'s path in messages.
      tasks: the phase's tasks (data.load_labels of its labels folder).
      public_ids: every id of the challenge (those the teams must embed).
      embedding_dim: the cap on the number of dimensions.
      min_coverage: share of `public_ids` the submission must embed, in (0, 1].
      scrub: how text for the team is cleaned.
    """
    def public(text: str) -> str:
        return scrub(text.replace(str(store), shown_name))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ids, x = load_submission(store, valid_ids=public_ids, embedding_dim=embedding_dim)
        except InputError as e:
            return Verdict(False, str(e), public(str(e)))
        except Exception as e:  # noqa: BLE001 - untrusted bytes can break a reader in ways it does not foresee
            text = f"{shown_name}: cannot be read ({type(e).__name__}); check that it opens with neuco-jax validate"
            return Verdict(False, f"{text}: {e}", text)
        notes = tuple(public(str(w.message)) for w in caught)
    covered = len(ids)  # ids are unique once load_submission has dropped repeated rows
    if covered < min_coverage * len(public_ids):
        missing = min(public_ids.difference(ids))
        text = (f"{shown_name}: embeds {covered} of the challenge's {len(public_ids)} ids "
                f"({covered / len(public_ids):.1%}; e.g. {missing!r} is missing); the rules require "
                f"{min_coverage:.0%}")
        return Verdict(False, text, text, notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # coverage was checked above; prepare's warning names tasks
            prepare(tasks, ids, x, standardize=False, normalize_labels=False)
    except InputError as e:
        return Verdict(False, str(e), f"{shown_name}: {JOIN_PROBLEM}", notes)
    return Verdict(True, notes=notes, rows=covered)
