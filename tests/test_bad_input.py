"""Bad input, case by case: the typed error (or warning) from the API, and one line with exit code 2 from the CLI.

Every CLI error must leave nothing behind: the output folder does not exist afterwards.
No case trains a probe; the file runs in a few seconds.
"""

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from neuco_jax import pipeline, results
from neuco_jax.cli import main
from neuco_jax.config import Config, load_config
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.errors import ConfigError, InputError
from neuco_jax.leaderboard import collect_runs
from neuco_jax.scores import task_score
from neuco_jax.stores import write_embeddings

CONFIG = "k_folds: 2\nprobe_params: {batch_size: 4, epochs: 1}\n"
CROPS_IDS = [f"id{i:02d}" for i in range(20)]  # classification, labels alternate 0, 1
BIOMASS_IDS = [f"id{i:02d}" for i in range(24)]  # regression, labels 0, 0.5, 1, ...
LABEL_IDS = set(BIOMASS_IDS)
DIM = 3


def write_labels(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def label_text(ids, labels) -> str:
    return "id,label\n" + "".join(f"{i},{v}\n" for i, v in zip(ids, labels))


GOOD_LABELS = {
    "crops__classification.csv": label_text(CROPS_IDS, [i % 2 for i in range(len(CROPS_IDS))]),
    "biomass__regression.csv": label_text(BIOMASS_IDS, [i / 2 for i in range(len(BIOMASS_IDS))]),
}


def submission_text(ids, x, header=None) -> str:
    header = header or "id," + ",".join(str(j) for j in range(x.shape[1]))
    return header + "\n" + "".join(f"{i}," + ",".join(f"{v:g}" for v in row) + "\n" for i, row in zip(ids, x))


def good_x(n=len(BIOMASS_IDS), dim=DIM) -> np.ndarray:
    return np.arange(n * dim, dtype=np.float32).reshape(n, dim) / 4  # exact in float32 and in "%g" text


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    return write_labels(tmp_path_factory.mktemp("labels"), GOOD_LABELS)


@pytest.fixture(scope="module")
def good_submission(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sub") / "good.csv"
    path.write_text(submission_text(BIOMASS_IDS, good_x()))
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cli_error(tmp_path, capsys, labels, submission, config=CONFIG, extra=(), out=None) -> str:
    """Run `evaluate` expecting bad input: exit 2, one 'error: ' line, no traceback, nothing written."""
    out = out or tmp_path / "out"
    config_path = config if isinstance(config, Path) else write(tmp_path, "config.yaml", config)
    capsys.readouterr()
    code = main(["evaluate", "--annotation_path", str(labels), "--submission_file", str(submission),
                 "--output_dir", str(out), "--config", str(config_path), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not out.exists()
    return err


def assert_names(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# Submissions ----------------------------------------------------------------------------------

LINES = submission_text(BIOMASS_IDS, good_x()).splitlines(keepends=True)  # header + 24 rows

SUBMISSION_ERRORS = {
    # id: (file text, config embedding_dim, fragments of the message besides the file's path)
    "no_id_column": ("key" + LINES[0][2:] + "".join(LINES[1:]), None, ["no 'id' column", "must be named 'id'"]),
    "empty_file": ("", None, ["the file is empty"]),
    "header_only": (LINES[0], None, ["no rows below the header"]),
    "conflicting_rows": ("".join(LINES) + "id03,9,9,9\n", None,
                         ["id 'id03'", "line 5", "line 26", "different values"]),
    "inf": ("".join(LINES[:4]) + "id03,1,inf,2\n" + "".join(LINES[5:]), None, ["line 5", "column '1'", "inf"]),
    "beyond_float32": ("".join(LINES[:3]) + "id02,1,2,1e40\n" + "".join(LINES[4:]), None,
                       ["line 4", "column '2'", "inf"]),
    "semicolons": ("".join(LINES).replace(",", ";"), None, ["single column", "semicolon-separated"]),
    "ragged_long": ("".join(LINES[:6]) + "id05,1,2,3,4\n" + "".join(LINES[7:]), None,
                    ["line 7", "5 fields", "header has 4"]),
    "ragged_short": ("".join(LINES[:9]) + "id08,1\n" + "".join(LINES[10:]), None,
                     ["line 10", "2 fields", "header has 4"]),
    "more_dims": ("".join(LINES), 2, ["3 embedding columns", "embedding_dim is 2"]),
    "no_overlap": (submission_text([f"zz{i}" for i in range(5)], good_x(5)), None,
                   ["none of its 5 ids", "'zz0'", "is an id of the labels"]),
}


@pytest.mark.parametrize("case", SUBMISSION_ERRORS)
def test_submission_errors(case, labels, tmp_path, capsys):
    text, dim, fragments = SUBMISSION_ERRORS[case]
    sub = write(tmp_path, "sub.csv", text)
    with pytest.raises(InputError) as raised:
        load_submission(sub, valid_ids=LABEL_IDS, embedding_dim=dim)
    assert_names(str(raised.value), str(sub), *fragments)
    err = cli_error(tmp_path, capsys, labels, sub, CONFIG + (f"embedding_dim: {dim}\n" if dim else ""))
    assert_names(err, str(sub), *fragments)


def test_duplicated_identical_rows_keep_the_first(tmp_path):
    x = good_x()
    sub = write(tmp_path, "sub.csv", "".join(LINES[:3]) + LINES[2] + "".join(LINES[3:]) + LINES[5])
    with pytest.warns(UserWarning, match=r"2 ids on more than one row with identical values "
                                         r"\(first: 'id01' on line 3 and line 4\); the first row of each is kept"):
        ids, got = load_submission(sub, valid_ids=LABEL_IDS)
    assert ids.tolist() == BIOMASS_IDS
    np.testing.assert_array_equal(got, x)


def test_non_numeric_cells_become_zero_with_a_count(tmp_path):
    sub = write(tmp_path, "sub.csv", "".join(LINES[:2]) + "id01,abc,1,2\n" + "id02,3,?,NA\n" + "".join(LINES[4:]))
    with pytest.warns(UserWarning, match=r"2 non-numeric cells read as missing.*"
                                         r"first: line 3, column '0': 'abc'"):
        ids, x = load_submission(sub, valid_ids=LABEL_IDS)
    assert ids.tolist() == BIOMASS_IDS
    np.testing.assert_array_equal(x[1], [0, 1, 2])
    np.testing.assert_array_equal(x[2], [3, 0, 0])  # NA is missing, not counted, and also 0
    np.testing.assert_array_equal(x[3:], good_x()[3:])


def test_low_overlap_warns_with_counts_per_task(tmp_path):
    folder = write_labels(tmp_path / "labels", {
        "crops__classification.csv": label_text([f"id{i:02d}" for i in range(40)], [i % 2 for i in range(40)]),
        "biomass__regression.csv": label_text([f"id{i:02d}" for i in range(60)], range(60)),
    })
    covered = [f"id{i:02d}" for i in [*range(18), *range(40, 45)]]
    sub = write(tmp_path, "sub.csv", submission_text(covered, good_x(len(covered))))
    tasks = load_labels(folder)
    ids, x = load_submission(sub, valid_ids={i for t in tasks for i in t.ids})
    with pytest.warns(UserWarning, match=r"covers less than 50% of the labelled ids of 2 task\(s\) "
                                         r"\(biomass 23/60, crops 18/40 ids\)"):
        bench = prepare(tasks, ids, x)
    assert [len(t.ids) for t in bench.tasks] == [23, 18]


def test_ids_with_whitespace_are_stripped_and_still_matched(labels, tmp_path):
    text = "".join(LINES).replace("id01,", " id01,").replace("id05,", "id05\t,")
    sub = write(tmp_path, "sub.csv", text)
    with pytest.warns(UserWarning, match=r"2 ids with surrounding whitespace.*first: ' id01' on line 3"):
        ids, x = load_submission(sub, valid_ids=LABEL_IDS)
    assert ids.tolist() == BIOMASS_IDS
    bench = prepare(load_labels(labels), ids, x)
    assert [t.ids.tolist() for t in bench.tasks] == [BIOMASS_IDS, CROPS_IDS]


# Labels ---------------------------------------------------------------------------------------

CROPS = GOOD_LABELS["crops__classification.csv"]
LABEL_ERRORS = {
    # id: (files replacing the good ones, fragments of the message)
    "unknown_type": ({"crops__segmentation.csv": CROPS},
                     ["crops__segmentation.csv", "unknown task type 'segmentation'"]),
    "no_double_underscore": ({"crops.csv": CROPS}, ["crops.csv", "<task_name>__<task_type>.csv"]),
    "non_numeric": ({"crops__classification.csv": CROPS.replace("id02,0", "id02,zero")},
                    ["crops__classification.csv", "line 4", "non-numeric label 'zero'"]),
    "outside_0_1": ({"crops__classification.csv": CROPS.replace("id03,1", "id03,2")},
                    ["crops__classification.csv", "line 5", "label 2", "must be 0 or 1"]),
    "single_class": ({"crops__classification.csv": label_text(CROPS_IDS, [1] * 20)},
                     ["crops__classification.csv", "every label is 1", "needs both classes"]),
    "constant_regression": ({"biomass__regression.csv": label_text(BIOMASS_IDS, [0.5] * 24)},
                            ["biomass__regression.csv", "every label is 0.5", "labels that vary"]),
    "one_row": ({"crops__classification.csv": label_text(["id00"], [1])},
                ["crops__classification.csv", "1 labelled row", "at least 2"]),
    "few_regression_rows": ({"biomass__regression.csv": label_text(BIOMASS_IDS[:5], range(5))},
                            ["task 'biomass'", "biomass__regression.csv", "only 5 labelled rows", "at least 11"]),
    "duplicated_id": ({"crops__classification.csv": CROPS + "id04,1\n"},
                      ["crops__classification.csv", "id 'id04'", "line 6", "line 22"]),
    "empty_folder": (None, ["no *.csv label files found"]),
}


@pytest.mark.parametrize("case", LABEL_ERRORS)
def test_label_errors(case, good_submission, tmp_path, capsys):
    files, fragments = LABEL_ERRORS[case]
    folder = tmp_path / "labels"
    if files is None:
        folder.mkdir()
    else:
        replaced = {name.split("__")[0].removesuffix(".csv") for name in files}
        write_labels(folder, {**{k: v for k, v in GOOD_LABELS.items() if k.split("__")[0] not in replaced}, **files})
    with pytest.raises(InputError) as raised:
        prepare(load_labels(folder), *load_submission(good_submission, valid_ids=LABEL_IDS))
    assert_names(str(raised.value), str(folder), *fragments)
    err = cli_error(tmp_path, capsys, folder, good_submission)
    assert_names(err, str(folder), *fragments)


# Config ---------------------------------------------------------------------------------------

CONFIG_ERRORS = {
    # id: (YAML text, fragments of the message)
    "k_folds_string": ("k_folds: '5'\n", ["'k_folds'", "got '5'", "an integer >= 2"]),
    "k_folds_bool": ("k_folds: true\n", ["'k_folds'", "got True", "an integer >= 2"]),
    "k_folds_float": ("k_folds: 2.5\n", ["'k_folds'", "got 2.5", "an integer >= 2"]),
    "batch_size_float": ("k_folds: 2\nprobe_params: {batch_size: 4.5}\n",
                         ["'probe_params.batch_size'", "got 4.5", "a positive integer"]),
    "learning_rate_string": ("k_folds: 2\nprobe_params: {learning_rate: fast}\n",
                             ["'probe_params.learning_rate'", "got 'fast'", "a positive number"]),
    "probe_params_list": ("k_folds: 2\nprobe_params: [1, 2]\n", ["'probe_params'", "got [1, 2]", "a mapping"]),
    "flag_string": ("k_folds: 2\nstandardize_embeddings: maybe\n",
                    ["'standardize_embeddings'", "got 'maybe'", "true or false"]),
    "task_filter_string": ("k_folds: 2\ntask_filter: crops\n", ["'task_filter'", "got 'crops'", "a list"]),
    "k_folds_1": ("k_folds: 1\n", ["'k_folds'", "got 1", "an integer >= 2"]),
    "k_folds_missing": ("seed: 3\n", ["'k_folds' is missing"]),
    "epochs_0": ("k_folds: 2\nprobe_params: {epochs: 0}\n", ["'probe_params.epochs'", "got 0", "a positive integer"]),
    "batch_size_negative": ("k_folds: 2\nprobe_params: {batch_size: -4}\n",
                            ["'probe_params.batch_size'", "got -4", "a positive integer"]),
    "learning_rate_0": ("k_folds: 2\nprobe_params: {learning_rate: 0}\n",
                        ["'probe_params.learning_rate'", "got 0", "a positive finite number"]),
    "learning_rate_negative": ("k_folds: 2\nprobe_params: {learning_rate: -0.1}\n",
                               ["'probe_params.learning_rate'", "got -0.1", "a positive finite number"]),
    "not_a_mapping": ("- k_folds\n- 2\n", ["expected a YAML mapping", "got list"]),
    "scalar": ("just text\n", ["expected a YAML mapping", "got str"]),
    "empty": ("", ["the config file is empty", "'k_folds'"]),
    "invalid_yaml": ("k_folds: [2\n", ["not valid YAML"]),
    "key_twice": ("k_folds: 2\nseed: 1\nk_folds: 3\n", ["key 'k_folds' is given twice (line 3)"]),
    "nested_key_twice": ("k_folds: 2\nprobe_params:\n  epochs: 1\n  epochs: 2\n",
                         ["key 'epochs' is given twice (line 4)"]),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_config_errors(case, labels, good_submission, tmp_path, capsys):
    text, fragments = CONFIG_ERRORS[case]
    path = write(tmp_path, "config.yaml", text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert_names(str(raised.value), str(path), *fragments)
    err = cli_error(tmp_path, capsys, labels, good_submission, path)
    assert_names(err, str(path), *fragments)


def test_python_object_tags_are_refused(labels, good_submission, tmp_path, capsys):
    marker = tmp_path / "executed"
    path = write(tmp_path, "config.yaml", f"k_folds: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 1 \(could not determine a constructor for the tag "
                                          r"'tag:yaml.org,2002:python/object/apply:os.system'\)"):
        load_config(path)
    err = cli_error(tmp_path, capsys, labels, good_submission, path)
    assert_names(err, str(path), "not valid YAML", "python/object/apply:os.system")
    assert not marker.exists()


@pytest.mark.parametrize("text, key, closest", [
    ("k_folds: 2\nk_fold: 3\n", "k_fold", "k_folds"),
    ("k_folds: 2\nstandardise_embeddings: false\n", "standardise_embeddings", "standardize_embeddings"),
    ("k_folds: 2\nprobe_params: {batch_size: 4, epoch: 1}\n", "probe_params.epoch", "epochs"),
])
def test_unknown_keys_warn_with_the_closest_valid_key(text, key, closest, tmp_path):
    path = write(tmp_path, "config.yaml", text)
    with pytest.warns(UserWarning, match=rf"{re.escape(str(path))}: unknown .*key '{re.escape(key)}' is ignored"
                                         rf".*did you mean '{closest}'\?"):
        config = load_config(path)
    assert config.k_folds == 2 and config.epochs == 10 and config.standardize_embeddings


# Output ---------------------------------------------------------------------------------------

def test_unwritable_output_dir_fails_before_any_work(labels, good_submission, tmp_path, capsys, monkeypatch):
    blocker = write(tmp_path, "a_file", "not a folder")
    out = blocker / "out"

    def no_loading(*args, **kwargs):
        raise AssertionError("labels were loaded before the output folder was checked")

    monkeypatch.setattr(pipeline, "load_labels", no_loading)
    with pytest.raises(InputError) as raised:
        pipeline.evaluate(good_submission, labels, load_config(write(tmp_path, "c.yaml", CONFIG)), output_dir=out)
    assert_names(str(raised.value), str(out / "results"), f"cannot write results under {blocker}", "--output_dir")
    err = cli_error(tmp_path, capsys, labels, good_submission, out=out)
    assert_names(err, str(out / "results"), str(blocker))
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("flag", ["method_name", "phase"])
@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "/abs"])
def test_names_that_leave_the_output_dir_are_rejected(flag, name, labels, good_submission, tmp_path, capsys):
    config = load_config(write(tmp_path, "c.yaml", CONFIG))
    out = tmp_path / "out"
    with pytest.raises(InputError) as raised:
        pipeline.evaluate(good_submission, labels, config, output_dir=out, **{flag: name})
    fragments = [f"{flag} {name!r}", "must be a plain folder name", f"--{flag}"]
    assert_names(str(raised.value), *fragments)
    assert not out.exists()
    err = cli_error(tmp_path, capsys, labels, good_submission, extra=[f"--{flag}", name])
    assert_names(err, *fragments)


def test_leaderboard_skips_an_incomplete_run(tmp_path, capsys):
    out = tmp_path / "out"
    scores = [task_score("crops", "classification", np.array([0.5, 0.7]))]
    done = results.write_run(out, "dev", "good", scores, Config(k_folds=2), stamp="20260101_000000")
    broken = out / "dev" / "crashed_20260101_000001"
    broken.mkdir()
    match = rf"skipping incomplete run {re.escape(str(broken))}: it has no results_summary.json"
    with pytest.warns(UserWarning, match=match):
        runs = collect_runs(out, "dev")
    assert runs["experiment"].tolist() == [done.name]
    capsys.readouterr()
    with pytest.warns(UserWarning, match=match):
        code = main(["leaderboard", "--output_dir", str(out), "--phase", "dev"])
    assert code == 0
    printed = capsys.readouterr().out
    assert done.name in printed and "crashed" not in printed
    (board,) = (out / "leaderboards" / "dev").glob("leaderboard_*.csv")
    assert "crashed" not in board.read_text()


# Properties -----------------------------------------------------------------------------------

HEX_IDS = st.lists(st.tuples(st.text("0123456789abcdef", min_size=1, max_size=12),
                             st.sampled_from(["", ".zarr", ".zarr.zip"])),
                   min_size=1, max_size=20, unique_by=lambda t: t[0])


@st.composite
def submissions(draw):
    ids = draw(HEX_IDS)
    dim = draw(st.integers(1, 5))
    x = draw(arrays(np.float32, (len(ids), dim), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
    return [base + suffix for base, suffix in ids], [base for base, _ in ids], x


@settings(max_examples=25, deadline=None)
@given(sub=submissions(), ext=st.sampled_from([".csv", ".parquet"]))
def test_written_submissions_load_back_exactly(sub, ext):
    raw_ids, clean, x = sub
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sub{ext}"
        write_embeddings(path, np.array(raw_ids, dtype=object), x)
        ids, got = load_submission(path)
    assert ids.tolist() == clean
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got.view(np.uint32), x.view(np.uint32))  # bit for bit, -0.0 included


EXTRA_IDS = ["zz0", "zz1", "zz2", "zz3"]  # not in the labels: dropped, but part of no task


@settings(max_examples=25, deadline=None)
@given(x=arrays(np.float32, (len(BIOMASS_IDS) + len(EXTRA_IDS), DIM),
                # Without subnormals: a std below float32's smallest subnormal would make every value inf.
                elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)),
       order=st.permutations(range(len(BIOMASS_IDS) + len(EXTRA_IDS))))
def test_row_order_of_the_submission_does_not_change_what_is_scored(labels, x, order):
    ids = np.array(BIOMASS_IDS + EXTRA_IDS)
    tasks = load_labels(labels)
    benches = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in (("file_order.csv", np.arange(len(ids))), ("permuted.csv", np.array(order))):
            path = Path(tmp) / name
            write_embeddings(path, ids[rows], x[rows])
            benches.append(prepare(tasks, *load_submission(path, valid_ids=LABEL_IDS)))
    a, b = benches
    # (raw - mean) / std in float32: a mean or std rounded differently moves each value by a few ulps of max|raw| / std.
    tol = 8 * float(np.finfo(np.float32).eps) * (1 + float(np.abs(x).max()) / a.std)
    assert np.isfinite(a.x).all() and np.isfinite(b.x).all()
    for ta, tb, ra, rb, task in zip(a.tasks, b.tasks, a.rows, b.rows, tasks):
        assert ta.ids.tolist() == tb.ids.tolist() == task.ids.tolist()  # label order, every id covered
        np.testing.assert_array_equal(ta.labels, tb.labels)
        np.testing.assert_allclose(a.x[ra], b.x[rb], rtol=0, atol=tol)
