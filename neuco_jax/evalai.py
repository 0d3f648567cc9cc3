"""EvalAI evaluation script: `evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs)`.

EvalAI's worker unpacks the host's evaluation_script.zip as a Python package,
imports it and calls its `evaluate` with the path of the phase's annotation
file (here: the bundle of `neuco-jax challenge pack`), the path of the
participant's file, the phase codename and `submission_metadata=...`. It
stores `result` (a list of `{<split codename>: {<leaderboard column>: value}}`)
in the leaderboard and `submission_result` (as JSON) for the participant; an
exception marks the submission failed, with the traceback as its stderr.

What one submission can honestly report: its mean Q (`mean_q`) and its Q per
task under the challenge's public task names (or no per-task columns when
`anonymize_tasks: omit`). The challenge's true ranking is rank-then-aggregate
over every team's submission: no single evaluation can compute it. EvalAI
orders its leaderboard by one column (`mean_q`); the organiser publishes the
aggregated-rank leaderboard with `neuco-jax challenge` from the downloaded
submissions (README, "On EvalAI").
"""

from __future__ import annotations

import warnings


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    """Score one submission for EvalAI (module docstring).

    Returns:
      {"result": [{<split>: {"mean_q": ..., "<task name>": ...}}], "submission_result": {...}}
      where values are floats (None for a task whose every fold failed).

    Raises:
      neuco_jax.errors.InputError: the submission breaks a rule; the message, which EvalAI
        shows the participant, names no hidden task and no private path.
    """
    from neuco_jax.challenge.bundle import score_submission

    meta = kwargs.get("submission_metadata") or {}
    with warnings.catch_warnings():
        # EvalAI shows stderr to the participant, and warnings may name hidden label files; what a
        # team may see of them, check_submission has put into the notes, scrubbed.
        warnings.simplefilter("ignore")
        score = score_submission(test_annotation_file, user_submission_file, phase_codename)
    for note in score.detail.get("notes", []):
        print(f"note: {note}")
    team = meta.get("participant_team_name") if isinstance(meta, dict) else None
    print(f"scored {'the submission of ' + str(team) if team else 'the submission'}: mean Q {score.metrics['mean_q']}")
    return {"result": [{score.split: score.metrics}], "submission_result": score.detail}
