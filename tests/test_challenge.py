"""Challenge mode: `neuco-jax challenge` (intake, one sweep per phase, ranking, publication), EvalAI, Codabench.

The submissions are built from the hidden labels themselves ("oracle" embeddings: each task's
standardised label in one column, plus noise of a chosen size), so their quality order is known
without depending on how well a tiny probe learns the synthetic benchmark.
"""

import csv
import fcntl
import importlib
import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from neuco_jax.challenge import inbox, run_challenge
from neuco_jax.challenge.bundle import EVALAI_INIT
from neuco_jax.challenge.demo import make_demo_challenge, write_submission
from neuco_jax.challenge.ledger import load_ledger
from neuco_jax.challenge.spec import load_challenge
from neuco_jax.cli import main
from neuco_jax.data import load_labels
from neuco_jax.errors import ConfigError, InputError
from neuco_jax.stores import write_embeddings

DIM = 16
PHASE = "dev"
MAX_BYTES = 2_000_000


def _oracle(root: Path, noise: float | None, seed: int):
    """(ids, x (n, DIM)): column t holds task t's standardised label (0 where unlabelled) + noise; None: all noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tasks = load_labels(root / "labels")
    ids = sorted({i for t in tasks for i in t.ids})
    row = {i: k for k, i in enumerate(ids)}
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(ids), DIM))
    if noise is not None:
        for j, task in enumerate(tasks):
            col = np.zeros(len(ids))
            col[[row[i] for i in task.ids]] = (task.labels - task.labels.mean()) / task.labels.std()
            x[:, j] = col + noise * x[:, j]
    return np.array(ids, dtype=object), x.astype(np.float32)


def _submit(root: Path, team: str, name: str, noise, seed: int, phase: str = PHASE, mtime=None) -> Path:
    folder = root / "submissions" / phase / team
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if name.endswith(".zarr.zip"):
        write_embeddings(folder / ".src.csv", *_oracle(root, noise, seed))
        write_submission(folder / ".src.csv", target)
        (folder / ".src.csv").unlink()
    else:
        write_embeddings(target, *_oracle(root, noise, seed))
    if mtime is not None:
        os.utime(target, (mtime, mtime))
    return target


def _set_rule(root: Path, key: str, value: str) -> None:
    text = (root / "challenge.yaml").read_text().splitlines()
    (root / "challenge.yaml").write_text("\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line
                                                   for line in text) + "\n")


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    """A dev phase with three valid teams of known order, a corrupt archive and path tricks, scored once."""
    root = tmp_path_factory.mktemp("challenge") / "demo"
    make_demo_challenge(root, n_ids=600, dim=DIM, phases=())
    # Small batches and a high rate, so that 2 folds of a few hundred rows learn in 15 epochs.
    (root / "config.yaml").write_text("k_folds: 2\nprobe_type: linear\nprobe_params:\n  batch_size: 16\n"
                                      "  epochs: 15\n  learning_rate: 0.02\n")
    _set_rule(root, "max_file_bytes", str(MAX_BYTES))
    t0 = datetime(2025, 4, 1, 12, tzinfo=timezone.utc).timestamp()
    _submit(root, "team_alpha", "alpha.csv", 0.3, 1, mtime=t0)
    _submit(root, "team_beta", "beta.zarr.zip", 1.0, 2, mtime=t0)
    _submit(root, "team_gamma", "gamma.npz", None, 3, mtime=t0)
    broken = root / "submissions" / PHASE / "team_broken"
    broken.mkdir()
    data = (root / "submissions" / PHASE / "team_beta" / "beta.zarr.zip").read_bytes()
    (broken / "broken.zarr.zip").write_bytes(data[: len(data) // 2])
    # Untrusted names: a team folder that is a link to the hidden labels, a link to a label file, a file
    # name with odd characters, a file over the size cap, a file outside any team folder.
    inbox_dir = root / "submissions" / PHASE
    (inbox_dir / "team_link").symlink_to(root / "labels", target_is_directory=True)
    mallory = inbox_dir / "team_mallory"
    mallory.mkdir()
    label_file = next((root / "labels").glob("crops__*.csv"))
    (mallory / "steal.csv").symlink_to(label_file)
    shutil.copyfile(inbox_dir / "team_alpha" / "alpha.csv", mallory / "odd name;rm -rf.csv")
    (mallory / "huge.csv").write_bytes(b"id,0\n" + b"x,1\n" * (MAX_BYTES // 4))
    (inbox_dir / "loose.csv").write_text("id,0\nx,1\n")
    outcome, = run_challenge(root, PHASE, report=False)
    return root, outcome


def _public_rows(root: Path, phase: str = PHASE):
    with open(root / "public" / phase / "leaderboard.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_three_valid_teams_rank_in_their_known_order_and_the_rest_is_rejected(challenge):
    root, outcome = challenge
    assert [r["team"] for r in _public_rows(root)] == ["team_alpha", "team_beta", "team_gamma"]
    assert [r["rank"] for r in _public_rows(root)] == ["1", "2", "3"]
    status = {(r.team, r.name): (r.status, r.public_reason or "") for r in outcome.new}
    assert status[("team_broken", "broken.zarr.zip")][0] == "rejected"
    assert "not a readable zip archive" in status[("team_broken", "broken.zarr.zip")][1]
    assert "symbolic link" in status[("", "team_link")][1]
    assert "symbolic link" in status[("team_mallory", "steal.csv")][1]
    assert "not plain" in status[("team_mallory", ascii("odd name;rm -rf.csv"))][1]
    assert "over the challenge's limit" in status[("team_mallory", "huge.csv")][1]
    assert "not inside a team folder" in status[("", "loose.csv")][1]
    assert len(outcome.scored) == 3  # one sweep, the three valid contents
    md = (root / "public" / PHASE / "leaderboard.md").read_text()
    assert md.splitlines()[0].startswith("| rank | team | score |") and "| 1 | team_alpha |" in md
    page = (root / "public" / PHASE / "leaderboard.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "") and "team_gamma" in page
    # Nothing was read through the links: the archive holds only the three accepted contents.
    assert len(list((root / "private" / PHASE / "archive").iterdir())) == 3
    feedback = json.loads(next((root / "feedback" / PHASE / "team_mallory").glob("*.json")).read_text())
    assert feedback["status"] == "rejected"


def _hidden(root: Path):
    """Every hidden task name, and every label value written with 5 or more characters."""
    names, values = set(), set()
    for path in (root / "labels").glob("*.csv"):
        names.add(path.name.partition("__")[0])
        with open(path, newline="") as f:
            values |= {row["label"] for row in csv.DictReader(f) if len(row["label"]) >= 5}
    return names, values


def test_no_public_or_feedback_file_holds_a_hidden_task_name_or_label_value(challenge):
    root, _ = challenge
    names, values = _hidden(root)
    assert names and values
    files = [p for d in ("public", "feedback") for p in (root / d).rglob("*") if p.is_file()]
    assert len(files) >= 3 + 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in names | values:
            assert secret not in text, f"{path} contains {secret!r}"
    header = list(_public_rows(root)[0])
    assert [c for c in header if c.startswith("q_")] == [f"q_task_{i:02d}" for i in range(1, 12)
                                                          if f"q_task_{i:02d}" in header]
    assert len([c for c in header if c.startswith("q_")]) == 6  # the dev phase's tasks, anonymised


def test_rerun_with_nothing_new_reads_and_scores_nothing(challenge, monkeypatch):
    root, _ = challenge
    import neuco_jax.pipeline

    def no_sweep(*args, **kwargs):
        raise AssertionError("nothing is new: nothing may be scored")

    monkeypatch.setattr(neuco_jax.pipeline, "sweep", no_sweep)
    monkeypatch.setattr(inbox, "copy_hashed", lambda *a, **k: pytest.fail("a known file was read again"))
    before = _public_rows(root)
    outcome, = run_challenge(root, PHASE, report=False)
    assert outcome.new == [] and outcome.scored == []
    assert _public_rows(root) == before


def test_best_keeps_a_better_later_submission_and_latest_a_worse_one(challenge, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(challenge[0], root, symlinks=True)
    before = {r["team"]: r for r in _public_rows(root)}
    later = datetime(2025, 4, 2, 12, tzinfo=timezone.utc).timestamp()
    _submit(root, "team_gamma", "better.csv", 0.0, 7, mtime=later)
    outcome, = run_challenge(root, PHASE, report=False)
    assert len(outcome.scored) == 1
    rows = {r["team"]: r for r in _public_rows(root)}
    assert rows["team_gamma"]["rank"] == "1" and before["team_gamma"]["rank"] == "3"
    assert rows["team_gamma"]["submissions"] == "2"
    assert rows["team_gamma"]["selected_submission"].startswith("2025-04-02T12:00:00")
    # Identical content again, under another name: recorded as a duplicate, not scored again.
    shutil.copyfile(root / "submissions" / PHASE / "team_gamma" / "better.csv",
                    root / "submissions" / PHASE / "team_gamma" / "again.csv")
    outcome, = run_challenge(root, PHASE, report=False)
    assert [r.status for r in outcome.new] == ["duplicate"] and outcome.scored == []
    # Under `latest`, a worse, newer submission replaces the better one in the team's row.
    _set_rule(root, "selection", "latest")
    _submit(root, "team_gamma", "worse.csv", None, 8, mtime=later + 3600)
    run_challenge(root, PHASE, report=False)
    rows = {r["team"]: r for r in _public_rows(root)}
    assert rows["team_gamma"]["rank"] == "3"
    assert rows["team_gamma"]["selected_submission"].startswith("2025-04-02T13:00:00")


def test_daily_limit_and_deadline_reject_with_their_reason(challenge, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(challenge[0], root, symlinks=True)
    _set_rule(root, "max_submissions_per_day", "1")
    day = datetime(2025, 4, 1, 18, tzinfo=timezone.utc).timestamp()  # team_alpha's day
    _submit(root, "team_alpha", "second.csv", 0.2, 9, mtime=day)
    text = (root / "challenge.yaml").read_text().replace("    ids: dev_ids.txt", "    ids: dev_ids.txt\n"
                                                         "    deadline: 2025-04-01T23:59:59Z")
    (root / "challenge.yaml").write_text(text)
    _submit(root, "team_beta", "late.csv", 0.2, 10, mtime=day + 86400)
    outcome, = run_challenge(root, PHASE, report=False)
    reasons = {r.name: r.public_reason for r in outcome.new}
    assert "daily limit" in reasons["second.csv"]
    assert "after the phase's deadline" in reasons["late.csv"]
    assert outcome.scored == []


def test_a_second_run_waits_for_the_lock_or_fails_without_waiting(challenge):
    root, _ = challenge
    with open(root / ".challenge.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another `neuco-jax challenge` run holds"):
            run_challenge(root, PHASE, wait=False)


def test_a_crash_while_scoring_keeps_the_accepted_submission_and_publishes_nothing(challenge, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(challenge[0], root, symlinks=True)
    public = {p: p.read_bytes() for p in (root / "public").rglob("*") if p.is_file()}
    _submit(root, "team_beta", "second.csv", 0.3, 11)
    import neuco_jax.pipeline

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    real = neuco_jax.pipeline.sweep
    monkeypatch.setattr(neuco_jax.pipeline, "sweep", crash)
    with pytest.raises(KeyboardInterrupt):
        run_challenge(root, PHASE, report=False)
    record = next(r for r in load_ledger(root / "private" / PHASE / "submissions.json") if r.name == "second.csv")
    assert record.status == "accepted" and record.runs == {}
    assert {p: p.read_bytes() for p in (root / "public").rglob("*") if p.is_file()} == public
    monkeypatch.setattr(neuco_jax.pipeline, "sweep", real)
    (root / "submissions" / PHASE / "team_beta" / "second.csv").unlink()  # the team deletes it: still scored
    outcome, = run_challenge(root, PHASE, report=False)
    assert outcome.new == [] and len(outcome.scored) == 1
    assert {r["team"]: r["submissions"] for r in _public_rows(root)}["team_beta"] == "2"


def test_challenge_yaml_errors_name_the_key(tmp_path):
    root = tmp_path / "c"
    make_demo_challenge(root, n_ids=200, dim=8, phases=())
    good = (root / "challenge.yaml").read_text()
    for old, new, key in [("selection: best", "selection: worst", "selection"),
                          ("embedding_dim: 8", "embedding_dim: -3", "embedding_dim"),
                          ("anonymize_tasks: true", "anonymize_tasks: maybe", "anonymize_tasks"),
                          ("tasks: all", "tasks: [no_such_task]", "phases.final.tasks"),
                          ("ids: dev_ids.txt", "ids: missing.txt", "phases.dev.ids")]:
        (root / "challenge.yaml").write_text(good.replace(old, new))
        with pytest.raises(ConfigError, match=f"'{key}'") as err:
            spec = load_challenge(root)
            from neuco_jax.challenge.labels import phase_tasks
            for phase in spec.phases.values():
                phase_tasks(spec, phase)
        assert "\n" not in str(err.value)
    (root / "challenge.yaml").write_text(good + "max_submision_per_day: 3\n")
    with pytest.warns(UserWarning, match="did you mean 'max_submissions_per_day'"):
        load_challenge(root)


def test_unpack_refuses_escaping_members_links_and_zip_bombs(tmp_path):
    def archive(name, members):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for member, data in members:
                z.writestr(member, data)
        return path

    with pytest.raises(InputError, match=r"outside the archive"):
        inbox.unpack(archive("a.zip", [("../evil.csv", "x")]), tmp_path / "a", 10**6)
    with pytest.raises(InputError, match="absolute"):
        inbox.unpack(archive("b.zip", [("/etc/evil", "x")]), tmp_path / "b", 10**6)
    link = zipfile.ZipInfo("store.zarr/zarr.json")
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        z.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        inbox.unpack(tmp_path / "c.zip", tmp_path / "c", 10**6)
    with pytest.raises(InputError, match="more than the challenge's limit"):  # 10 MB of zeros, deflated
        inbox.unpack(archive("d.zip", [("big.csv", b"\0" * 10**7)]), tmp_path / "d", 10**6)
    assert not (tmp_path / "evil.csv").exists()


# EvalAI and Codabench ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(challenge, tmp_path_factory):
    """The dev phase packed with the CLI, plus EvalAI's evaluation_script.zip."""
    out = tmp_path_factory.mktemp("bundle")
    assert main(["challenge", "pack", "--challenge_dir", str(challenge[0]), "--phase", PHASE,
                 "--out", str(out / "dev.zip"), "--evaluation_script", str(out / "evaluation_script.zip")]) == 0
    return out / "dev.zip", out / "evaluation_script.zip"


def _evalai_module(script_zip: Path, where: Path):
    """Import the evaluation script as EvalAI's worker does: unpacked into challenge_data/challenge_<id>/."""
    package = where / "challenge_data" / "challenge_7"
    package.mkdir(parents=True)
    (where / "challenge_data" / "__init__.py").write_text("")
    with zipfile.ZipFile(script_zip) as z:
        z.extractall(package)
    sys.path.insert(0, str(where))
    try:
        importlib.invalidate_caches()
        return importlib.import_module("challenge_data.challenge_7")
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n.startswith("challenge_data")]:
            del sys.modules[name]


def test_evalai_worker_contract(challenge, bundle, tmp_path):
    root, _ = challenge
    annotation, script = bundle
    assert zipfile.ZipFile(script).read("__init__.py").decode() == EVALAI_INIT
    module = _evalai_module(script, tmp_path / "compute")
    submission = root / "submissions" / PHASE / "team_alpha" / "alpha.csv"
    output = module.evaluate(str(annotation), str(submission), PHASE,
                             submission_metadata={"participant_team_name": "team_alpha", "id": 1})
    # What the worker does with it: one {split: {column: value}} per result entry; submission_result as JSON.
    assert "result" in output and isinstance(output["result"], list)
    (split, values), = output["result"][0].items()
    assert split == "test_split"
    manifest = json.loads(zipfile.ZipFile(annotation).read("neuco_challenge.json"))
    assert list(values) == manifest["metrics"] and values["mean_q"] > 0
    assert all(isinstance(v, float) for v in values.values())
    text = json.dumps(output)
    names, label_values = _hidden(root)
    assert not any(secret in text for secret in names | label_values)
    # The standalone run scored the same file under the same protocol: the same mean Q.
    board = _public_rows(root)
    assert float(board[0]["mean_q"]) == pytest.approx(values["mean_q"], rel=1e-5)
    # A rejected submission fails with a message (shown to the team) that names no hidden task.
    bad = tmp_path / "narrow.csv"
    ids, x = _oracle(root, 0.1, 1)
    write_embeddings(bad, ids[:50], x[:50])
    with pytest.raises(InputError) as err:
        module.evaluate(str(annotation), str(bad), PHASE, submission_metadata={})
    assert "embeds 50 of the challenge's" in str(err.value)
    assert not any(n in str(err.value) for n in names)
    with pytest.raises(InputError, match="codename"):
        module.evaluate(str(annotation), str(submission), "final")


def test_codabench_scoring_program_reads_ref_and_res_and_writes_scores_json(challenge, bundle, tmp_path):
    root, _ = challenge
    annotation, _ = bundle
    ref, res, out = tmp_path / "input" / "ref", tmp_path / "input" / "res", tmp_path / "output"
    ref.mkdir(parents=True)
    res.mkdir()
    zipfile.ZipFile(annotation).extractall(ref)  # the platform unpacks the reference data and the submission
    with zipfile.ZipFile(root / "submissions" / PHASE / "team_beta" / "beta.zarr.zip") as z:
        z.extractall(res)  # a zarr group's files at the root of res/
    from neuco_jax import codabench
    assert codabench.main([str(tmp_path / "input"), str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    manifest = json.loads((ref / "neuco_challenge.json").read_text())
    assert list(scores) == manifest["metrics"]
    beta = next(r for r in _public_rows(root) if r["team"] == "team_beta")
    assert scores["mean_q"] == pytest.approx(float(beta["mean_q"]), rel=1e-5)
    assert (out / "detailed_results.html").is_file()
    # The module as the platform runs it; two stores in res/: one line on stderr, exit code 1.
    shutil.rmtree(res)
    res.mkdir()
    for name in ("a.csv", "b.npz"):
        write_embeddings(res / name, *_oracle(root, 0.1, 1))
    proc = subprocess.run([sys.executable, "-m", "neuco_jax.codabench", str(tmp_path / "input"), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "exactly one" in proc.stderr, proc.stderr


def test_cli_challenge_run_prints_a_summary(challenge, capsys):
    root, _ = challenge
    assert main(["challenge", "--challenge_dir", str(root), "--phase", PHASE, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "phase dev: 0 new submissions" in out and "0 scored" in out
    assert main(["challenge", "--challenge_dir", str(root), "--phase", "nope"]) == 2
    assert "no phase 'nope'" in capsys.readouterr().err
