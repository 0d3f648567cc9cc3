"""Challenge mode: a hidden-task leaderboard that an organiser runs alone or plugs into EvalAI / Codabench.

    <challenge_dir>/challenge.yaml                 the rules (neuco_jax.challenge.spec)
    <challenge_dir>/labels/                        hidden <task>__<type>.csv files
    <challenge_dir>/submissions/<phase>/<team>/    the inbox: untrusted files (neuco_jax.challenge.inbox)
    <challenge_dir>/private/<phase>/               ledger, archive, labels, runs, full leaderboards, report
    <challenge_dir>/public/<phase>/                leaderboard.csv / .md / .html, tasks anonymised
    <challenge_dir>/feedback/<phase>/<team>/       one JSON per submission: status, reason, allowed scores

Modules, in the order a run uses them: spec (challenge.yaml), labels (each
phase's private labels, task aliases, the evaluation config), inbox (finding,
copying and unpacking files safely), check (one submission against a phase's
rules), ledger (the record of every submission), run (one incremental run:
lock, intake, one sweep per phase), board (ranking teams and publishing),
bundle (the annotation bundle for EvalAI / Codabench and scoring one
submission against it), demo (a demo challenge from the synthetic benchmark).
"""

from neuco_jax.challenge.run import run_challenge
from neuco_jax.challenge.spec import load_challenge

__all__ = ["load_challenge", "run_challenge"]
