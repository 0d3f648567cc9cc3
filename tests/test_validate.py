"""`neuco-jax validate` on hand-made submissions, counted independently."""

import pytest

from neuco_jax.cli import main
from neuco_jax.validate import validate


@pytest.fixture
def labels(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "crops__regression.csv").write_text("id,label\na,1\nb,2\nc,3\nd,4\n")
    (folder / "clouds__cls.csv").write_text("id,label\nc,1\nd,0\ne,1\n")
    return folder


def test_clean_submission_passes_with_coverage_per_task(labels, tmp_path):
    sub = tmp_path / "s.csv"
    sub.write_text("id,0,1\na.zarr.zip,1,2\nb,3,4\nc,5,6\nd.zarr,7,8\ne,9,10\n")
    report = validate(sub, labels, embedding_dim=2)
    assert not report.blocking, report.text()
    assert report.coverage == [("clouds", 3, 3), ("crops", 4, 4)]
    assert report.counts["ids with a .zarr/.zarr.zip suffix"] == 2
    assert report.dim == 2 and report.rows == 5


def test_counts_bad_cells_duplicates_and_missing_ids(labels, tmp_path):
    sub = tmp_path / "s.csv"
    sub.write_text("id,0,1\n"
                   "a,1,oops\n"      # non-numeric
                   "b,nan,4\n"       # NaN
                   "b,nan,4\n"       # identical duplicate
                   "c,,6\n")         # empty cell: NaN
    report = validate(sub, labels)
    assert report.counts["non-numeric cells"] == 1
    assert report.counts["NaN cells"] == 3
    assert report.counts["duplicated ids"] == 1
    assert report.coverage == [("clouds", 1, 3), ("crops", 3, 4)]
    assert not report.blocking
    assert any("identical rows" in n for n in report.notes)
    assert any("'crops': 1 of 4" in n for n in report.notes)


@pytest.mark.parametrize("rows, dim, message", [
    ("a,1,2\na,1,3\nc,1,1\n", None, "different rows"),
    ("a,1,inf\nc,1,1\n", None, "infinite values"),
    ("a,1,2\nc,1,1\n", 1, "2 dimensions but embedding_dim is 1"),
    ("a,1,2\nb,1,1\n", None, "task 'clouds': none of its 3"),
])
def test_blocking_problems_exit_1(labels, tmp_path, capsys, rows, dim, message):
    sub = tmp_path / "s.csv"
    sub.write_text("id,0,1\n" + rows)
    args = ["validate", str(sub), "--annotation_path", str(labels)] + (["--embedding_dim", str(dim)] if dim else [])
    assert main(args) == 1
    out = capsys.readouterr().out
    assert message in out and "blocking problems found" in out


def test_missing_id_column_is_an_input_error(labels, tmp_path, capsys):
    sub = tmp_path / "s.csv"
    sub.write_text("key,0\na,1\n")
    assert main(["validate", str(sub), "--annotation_path", str(labels)]) == 2
    assert "no 'id' column" in capsys.readouterr().err


def test_convert_command_then_validate_a_zarr_store(labels, tmp_path, capsys):
    sub = tmp_path / "s.csv"
    sub.write_text("id,0,1\na,1,2\nb,3,4\nc,5,nan\nd,7,8\ne,9,10\n")
    assert main(["convert", str(sub), str(tmp_path / "s.zarr")]) == 0
    report = validate(tmp_path / "s.zarr", labels)
    assert report.coverage == [("clouds", 3, 3), ("crops", 4, 4)]
    assert report.counts["NaN cells"] == 1 and not report.blocking
