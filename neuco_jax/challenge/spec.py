"""challenge.yaml: the organiser's rules, one typed and validated object.

    name: EarthVision 2025 embedding challenge
    labels: labels                  # hidden <task>__<type>.csv, relative to the challenge folder
    config: config.yaml             # any `neuco-jax evaluate` config
    embedding_dim: 1024             # the cap: more columns are rejected, fewer zero-padded
    anonymize_tasks: true           # true: task_01...; false: real names; omit: no per-task column
    selection: best                 # per team: best (lowest weighted rank) or latest
    max_submissions_per_day: 5      # valid submissions per team, phase and UTC day (null: no limit)
    max_file_bytes: 1073741824      # larger files (or unzipped archives) are rejected unread
    min_coverage: 1.0               # share of the labelled ids a submission must embed
    feedback: score                 # what a team's feedback shows: status, score or tasks
    weighting: std                  # task weights of the ranking: std (reference) or uniform
    phases:
      dev: {tasks: [crops, clouds_reg], ids: dev_ids.txt, deadline: 2025-04-30T23:59:59Z}
      final: {tasks: all}

Unknown keys warn (naming the closest known one); a bad value fails in one
line naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import warnings
from datetime import date, datetime, timezone
from pathlib import Path

from neuco_jax.errors import ConfigError
from neuco_jax.scores import WEIGHTINGS

SPEC_FILE = "challenge.yaml"
SELECTIONS = ("best", "latest")
FEEDBACK = ("status", "score", "tasks")
ANONYMIZE = (True, False, "omit")
DEFAULT_MAX_FILE_BYTES = 1 << 30
_TOP_KEYS = {"name", "labels", "config", "embedding_dim", "anonymize_tasks", "selection",
             "max_submissions_per_day", "max_file_bytes", "min_coverage", "feedback", "weighting", "phases"}
_PHASE_KEYS = {"tasks", "ids", "deadline"}
# Phase and team names become folder names: the same rule for both (neuco_jax.challenge.inbox).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase: which hidden tasks (None: all) and ids (None: all) it scores, until when."""

    name: str
    tasks: tuple[str, ...] | None
    ids: Path | None
    deadline: datetime | None  # timezone-aware, UTC


@dataclasses.dataclass(frozen=True)
class Challenge:
    """A validated challenge.yaml; paths are absolute."""

    root: Path
    name: str
    labels: Path
    config: Path
    embedding_dim: int
    anonymize_tasks: bool | str
    selection: str
    max_submissions_per_day: int | None
    max_file_bytes: int
    min_coverage: float
    feedback: str
    weighting: str
    phases: dict[str, Phase]

    def phase(self, name: str) -> Phase:
        if name not in self.phases:
            raise ConfigError(f"{self.root / SPEC_FILE}: no phase {name!r}; phases: {', '.join(self.phases)}")
        return self.phases[name]


def _fail(key: str, value, expected: str):
    raise ConfigError(f"challenge.yaml key '{key}': got {value!r}, expected {expected}")


def _warn_unknown(keys, known, where: str, source: Path) -> None:
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            warnings.warn(f"{source}: unknown key '{where}{key}' is ignored{hint}", stacklevel=3)


def _positive_int(raw: dict, key: str, default, allow_null: bool = False):
    value = raw.get(key, default)
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        _fail(key, value, "a positive integer" + (" or null" if allow_null else ""))
    return value


def _choice(raw: dict, key: str, default, choices) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or value not in choices:
        _fail(key, value, "one of " + ", ".join(map(str, choices)))
    return value


def _path(root: Path, raw, key: str, kind: str) -> Path:
    if not isinstance(raw, str) or not raw:
        _fail(key, raw, f"the path of a {kind}, relative to the challenge folder")
    path = (root / raw).absolute()
    exists = path.is_dir() if kind == "folder" else path.is_file()
    if not exists:
        raise ConfigError(f"challenge.yaml key '{key}': {path} is not an existing {kind}; fix the path")
    return path


def _deadline(value, key: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):  # a bare date: the end of that day
        moment = datetime(value.year, value.month, value.day, 23, 59, 59)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            _fail(key, value, "an ISO 8601 date-time such as 2025-04-30T23:59:59Z")
    else:
        _fail(key, value, "an ISO 8601 date-time such as 2025-04-30T23:59:59Z")
    # A time without a zone is UTC, as EvalAI's phase dates are.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _phase(root: Path, name, raw) -> Phase:
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        _fail("phases", name, "phase names of letters, digits, '_', '.', '-' (they become folder names)")
    where = f"phases.{name}"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(where, raw, "a mapping with tasks, ids, deadline")
    _warn_unknown(raw, _PHASE_KEYS, where + ".", root / SPEC_FILE)
    tasks = raw.get("tasks", "all")
    if tasks == "all":
        tasks = None
    elif (not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t for t in tasks)
          or len(set(tasks)) != len(tasks)):
        _fail(f"{where}.tasks", tasks, "all, or a list of distinct task names")
    ids = raw.get("ids")
    ids = None if ids is None else _path(root, ids, f"{where}.ids", "file")
    return Phase(name=name, tasks=tuple(tasks) if tasks else None, ids=ids,
                 deadline=_deadline(raw.get("deadline"), f"{where}.deadline"))


def challenge_from_dict(raw, root: Path) -> Challenge:
    """Validate a parsed challenge.yaml; `root` is the challenge folder its paths are relative to."""
    source = root / SPEC_FILE
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a YAML mapping of challenge keys, got {type(raw).__name__}")
    _warn_unknown(raw, _TOP_KEYS, "", source)
    for key in ("name", "labels", "config", "embedding_dim", "phases"):
        if key not in raw:
            raise ConfigError(f"{source}: required key '{key}' is missing (see `neuco-jax challenge demo` for an example)")
    if not isinstance(raw["name"], str) or not raw["name"].strip():
        _fail("name", raw["name"], "a non-empty string")
    coverage = raw.get("min_coverage", 1.0)
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 < coverage <= 1:
        _fail("min_coverage", coverage, "a number in (0, 1]")
    anonymize = raw.get("anonymize_tasks", True)
    if anonymize not in ANONYMIZE or (not isinstance(anonymize, bool) and anonymize != "omit"):
        _fail("anonymize_tasks", anonymize, "true (task_01...), false (real names) or omit")
    phases = raw["phases"]
    if not isinstance(phases, dict) or not phases:
        _fail("phases", phases, "a mapping of phase names to {tasks, ids, deadline}")
    return Challenge(
        root=root.absolute(), name=raw["name"].strip(),
        labels=_path(root, raw["labels"], "labels", "folder"),
        config=_path(root, raw["config"], "config", "file"),
        embedding_dim=_positive_int(raw, "embedding_dim", None),
        anonymize_tasks=anonymize,
        selection=_choice(raw, "selection", "best", SELECTIONS),
        max_submissions_per_day=_positive_int(raw, "max_submissions_per_day", None, allow_null=True),
        max_file_bytes=_positive_int(raw, "max_file_bytes", DEFAULT_MAX_FILE_BYTES),
        min_coverage=float(coverage),
        feedback=_choice(raw, "feedback", "score", FEEDBACK),
        weighting=_choice(raw, "weighting", "std", WEIGHTINGS),
        phases={name: _phase(root, name, value) for name, value in phases.items()},
    )


def load_challenge(challenge_dir) -> Challenge:
    """Read and validate `<challenge_dir>/challenge.yaml` (safe YAML, duplicate keys refused)."""
    import yaml

    from neuco_jax.config import _UniqueKeyLoader

    root = Path(challenge_dir)
    path = root / SPEC_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the challenge file ({getattr(e, 'strerror', None) or e}); "
                          f"write one (see `neuco-jax challenge demo`) or fix --challenge_dir") from None
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where} ({str(e).splitlines()[0]})") from None
    finally:
        loader.dispose()
    try:
        return challenge_from_dict(raw, root)
    except ConfigError as e:
        raise ConfigError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") from None
