"""Ranking a phase's teams and publishing it: public leaderboards, private tables, per-team feedback.

Ranking (neuco_jax.leaderboard's rank-then-aggregate, never re-implemented):

1. every accepted submission of the phase is ranked together (rank_runs over
   their runs); each gets a weighted score and an aggregated rank;
2. each team's submission is selected: `best` = its lowest weighted score in
   step 1 (ties: the earlier submission), `latest` = its newest accepted one;
3. the selected submissions, one per team, are ranked together again: that is
   the leaderboard. Its task weights are the spread of Q across the teams, as
   the reference's leaderboard has one run per method.

Everything under `public/<phase>/` names tasks only by their public names
(labels.public_names) and holds no label value; `private/<phase>/` keeps the
real names. Files are written whole (temporary file + rename), after every
table is computed.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from neuco_jax.challenge.ledger import ACCEPTED, Record, iso
from neuco_jax.challenge.spec import Challenge, Phase
from neuco_jax.leaderboard import Q_PREFIX, rank_runs, read_runs, runs_table
from neuco_jax.results import atomic_write_text

PUBLIC_COLUMNS = ["rank", "team", "score", "mean_q", "submissions", "last_submission", "selected_submission"]


def scored(records: list[Record], protocol: str) -> list[Record]:
    """The accepted submissions that have a run under `protocol` (what is ranked)."""
    return [r for r in records if r.status == ACCEPTED and protocol in r.runs]


def rank_submissions(records: list[Record], runs_dir: Path, phase: str, protocol: str, weighting: str):
    """Every scored submission ranked together: rank_runs' table with `experiment` = record id."""
    by_name = {run["run_dir"].name: run for run in read_runs(runs_dir, phase)} if (runs_dir / phase).is_dir() else {}
    rows = [{**by_name[r.runs[protocol]], "experiment": r.id} for r in scored(records, protocol)
            if r.runs[protocol] in by_name]
    table = runs_table(rows)
    return table, rank_runs(table, weighting)


def select(records: list[Record], board: pd.DataFrame, selection: str) -> dict[str, Record]:
    """team -> its selected submission (module docstring, step 2)."""
    by_id = {r.id: r for r in records}
    chosen: dict[str, tuple] = {}  # team -> (sort key, record); the smallest key wins
    for row in board.itertuples(index=False):
        record = by_id[row.experiment]
        stamp = record.time.timestamp()
        key = (-stamp, record.id) if selection == "latest" else (row.weighted_score, stamp, record.id)
        if record.team not in chosen or key < chosen[record.team][0]:
            chosen[record.team] = (key, record)
    return {team: record for team, (_, record) in chosen.items()}


def rank_teams(records: list[Record], runs_dir: Path, phase: str, protocol: str, spec: Challenge):
    """(submission board, team board): rank_runs' tables; the team board's `experiment` is the team."""
    table, board = rank_submissions(records, runs_dir, phase, protocol, spec.weighting)
    chosen = select(records, board, spec.selection)
    picked = table[table["experiment"].isin({r.id for r in chosen.values()})].copy()
    team_of = {r.id: r.team for r in chosen.values()}
    picked["experiment"] = picked["experiment"].map(team_of)
    teams = rank_runs(picked, spec.weighting)
    teams["selected_id"] = teams["experiment"].map({t: r.id for t, r in chosen.items()})
    return board, teams


def _fmt(value, digits: int) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def public_table(teams: pd.DataFrame, records: list[Record], protocol: str, names: dict[str, str] | None):
    """The public leaderboard as a DataFrame (PUBLIC_COLUMNS, then q_<public task name> unless omitted)."""
    mine = {}
    for r in scored(records, protocol):
        mine.setdefault(r.team, []).append(r)
    by_id = {r.id: r for r in records}
    rows = []
    for row in teams.to_dict("records"):
        team = row["experiment"]
        entry = {"rank": int(row["aggregated_rank"]), "team": team, "score": row["weighted_score"],
                 "mean_q": row["mean_score"], "submissions": len(mine.get(team, [])),
                 "last_submission": max(r.submitted_at for r in mine[team]),
                 "selected_submission": by_id[row["selected_id"]].submitted_at}
        if names is not None:
            for task, public in sorted(names.items(), key=lambda kv: kv[1]):
                if Q_PREFIX + task in row:
                    entry[f"q_{public}"] = row[Q_PREFIX + task]
        rows.append(entry)
    columns = PUBLIC_COLUMNS + sorted({c for e in rows for c in e if c.startswith("q_")})
    return pd.DataFrame(rows, columns=columns)


def markdown(table: pd.DataFrame) -> str:
    """The leaderboard as the challenge published it: a Markdown table of rank, team, score and mean Q."""
    lines = ["| rank | team | score | mean Q | submissions |", "| ---: | --- | ---: | ---: | ---: |"]
    for row in table.itertuples(index=False):
        lines.append(f"| {row.rank} | {row.team} | {_fmt(row.score, 3)} | {_fmt(row.mean_q, 2)} | {row.submissions} |")
    return "\n".join(lines) + "\n"


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
          "th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}td.team,th.team{text-align:left}"
          "th{background:#f4f4f4}p.note{color:#555;max-width:50em}")


def page(spec: Challenge, phase: Phase, table: pd.DataFrame, generated: datetime) -> str:
    """A self-contained HTML page of the public leaderboard (inline style, no script, nothing external)."""
    e = html.escape
    head = "".join(f'<th class="{"team" if c == "team" else ""}">{e(c)}</th>' for c in table.columns)
    body = []
    for row in table.to_dict("records"):
        cells = []
        for c, v in row.items():
            text = _fmt(v, 3 if c == "score" else 2) if isinstance(v, float) else str(v)
            cells.append(f'<td class="{"team" if c == "team" else ""}">{e(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    deadline = f" Deadline: {iso(phase.deadline)}." if phase.deadline else ""
    rule = ("each team's best submission (lowest score among all of the phase's submissions)"
            if spec.selection == "best" else "each team's latest valid submission")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(spec.name)}: {e(phase.name)}"
            f"</title><style>{_STYLE}</style></head><body><h1>{e(spec.name)}</h1><h2>Phase {e(phase.name)}</h2>"
            f"<p class=\"note\">Ranked: {rule}. Score: the task-weighted average of the per-task ranks (lower is "
            f"better; NeuCo-Bench's rank-then-aggregate); mean Q: the average of the per-task Q scores.{deadline} "
            f"Updated {iso(generated)}.</p><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody></table></body></html>\n")


def feedback(record: Record, spec: Challenge, board: pd.DataFrame, teams: pd.DataFrame,
             names: dict[str, str] | None) -> dict:
    """What a team is told about one of its submissions, as the challenge's `feedback` rule allows."""
    out = {"file": record.name, "sha256": record.sha256, "submitted_at": record.submitted_at,
           "status": record.status, "reason": record.public_reason, "notes": record.notes}
    if record.duplicate_of:
        out["duplicate_of"] = record.duplicate_of.partition("/")[2]
    row = board[board["experiment"] == record.id]
    if spec.feedback == "status" or row.empty:
        return out
    row = row.iloc[0]
    selected = teams[teams["selected_id"] == record.id]
    out.update(mean_q=_number(row["mean_score"]), rank_among_submissions=int(row["aggregated_rank"]),
               submissions_ranked=len(board), selected=not selected.empty,
               team_rank=int(selected.iloc[0]["aggregated_rank"]) if not selected.empty else None)
    if spec.feedback == "tasks" and names is not None:
        out["task_q"] = {names[c[len(Q_PREFIX):]]: _number(row[c]) for c in board.columns
                         if c.startswith(Q_PREFIX) and c[len(Q_PREFIX):] in names}
    return out


def _number(v) -> float | None:
    return None if v is None or math.isnan(float(v)) else float(v)


def publish(spec: Challenge, phase: Phase, records: list[Record], runs_dir: Path, protocol: str,
            names: dict[str, str] | None, report: bool) -> pd.DataFrame:
    """Rank the phase and write public/, private/ and feedback/ (module docstring); returns the public table."""
    board, teams = rank_teams(records, runs_dir, phase.name, protocol, spec)
    table = public_table(teams, records, protocol, names)
    now = datetime.now(timezone.utc)
    public_dir = spec.root / "public" / phase.name
    private_dir = spec.root / "private" / phase.name
    for folder in (public_dir, private_dir):
        folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(private_dir / "leaderboard_submissions.csv", board.to_csv(index=False))
    atomic_write_text(private_dir / "leaderboard_teams.csv", teams.to_csv(index=False))
    for record in records:
        if record.team and not record.team.startswith("'"):  # teams whose folder name is plain
            folder = spec.root / "feedback" / phase.name / record.team
            folder.mkdir(parents=True, exist_ok=True)
            key = record.id.rpartition("#")[2] if "#" in record.id else record.id.rpartition("@")[2]
            atomic_write_text(folder / f"{key}.json",
                              json.dumps(feedback(record, spec, board, teams, names), indent=1) + "\n")
    atomic_write_text(public_dir / "leaderboard.csv", table.to_csv(index=False))
    atomic_write_text(public_dir / "leaderboard.md", markdown(table))
    atomic_write_text(public_dir / "leaderboard.html", page(spec, phase, table, now))
    if report and not board.empty:
        from neuco_jax.report import write_report
        try:
            write_report(runs_dir, phase.name, weighting=spec.weighting, out=private_dir / "report" / "report.html")
        except Exception as e:  # noqa: BLE001 - the report is a convenience; the leaderboards are written
            warnings.warn(f"{private_dir}: the organisers' report was not written ({e})", stacklevel=2)
    return table
