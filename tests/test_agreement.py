"""Agreement between probes (neuco_jax.agreement, sweep --configs, the report's section), on real small phases:
the synthetic benchmark under a linear and a ridge probe, and a benchmark built here whose best method is
readable only non-linearly, under linear and kNN / MLP probes. Checked against scipy and against the
leaderboard and compare files the runs wrote."""

import contextlib
import importlib.util
import io
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from neuco_jax import pipeline
from neuco_jax.agreement import PAIR_COLUMNS, agreement, kendall_tau_b, sibling_phases, spearman_rho
from neuco_jax.cli import main
from neuco_jax.compare import compare
from neuco_jax.config import PROBE_TYPES, Config, config_from_dict
from neuco_jax.report import write_report
from neuco_jax.report_figures import AGREEMENT_CAPTION, AGREEMENT_FIGURE
from neuco_jax.synthetic import hex_ids, make_benchmark, write_csv

K = 5
TASKS = ["biomass_mean", "clouds_reg", "heatisland_mean", "landcover_forest"]  # the clearest of the benchmark
LINEAR_YAML = f"""\
k_folds: {K}
probe_type: linear
probe_params: {{batch_size: 16, epochs: 20, learning_rate: 0.01}}
task_filter: {TASKS}
"""
RIDGE_YAML = f"""\
k_folds: {K}
probe_type: ridge
task_filter: {TASKS}
"""
PHASES = ["dev_linear", "dev_ridge"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """`neuco-jax sweep --configs linear.yaml ridge.yaml --phase dev` of method_a > method_b > method_c >
    random_baseline, counting the submissions read."""
    root = tmp_path_factory.mktemp("agreement")
    bench = make_benchmark(root / "data", n_ids=1000, dim=32, n_methods=3)
    configs = []
    for name, text in (("linear", LINEAR_YAML), ("ridge", RIDGE_YAML)):
        configs.append(root / f"{name}.yaml")
        configs[-1].write_text(text)
    reads = []
    original = pipeline.load_submission

    def counted(path, **kwargs):
        reads.append(Path(path).name)
        return original(path, **kwargs)

    out, stdout = root / "results", io.StringIO()
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(), contextlib.redirect_stdout(stdout):
        warnings.simplefilter("ignore")  # the synthetic labels' empty cells
        mp.setattr(pipeline, "load_submission", counted)
        code = main(["--quiet", "sweep", "--annotation_path", str(bench.labels_dir), "--submissions",
                     *map(str, bench.submissions.values()), "--method_names", *bench.submissions,
                     "--output_dir", str(out), "--phase", "dev", "--configs", *map(str, configs)])
    assert code == 0
    return {"root": root, "out": out, "bench": bench, "configs": configs, "reads": reads, "stdout": stdout.getvalue()}


def leaderboard_ranks(out, phase):
    """{method: aggregated rank} from the phase's newest leaderboard CSV (method: the folder name less its stamp)."""
    board = pd.read_csv(sorted((out / "leaderboards" / phase).glob("leaderboard_*.csv"))[-1])
    return {e.rsplit("_", 2)[0]: int(r) for e, r in zip(board["experiment"], board["aggregated_rank"])}


def copy_phase(src_out, phase, dst_out, new_phase=None, edit=None):
    """Copies a phase's run folders to dst_out/new_phase; edit(run_dir) may change each copy."""
    target = dst_out / (new_phase or phase)
    shutil.copytree(src_out / phase, target)
    for run_dir in sorted(target.iterdir()):
        if edit is not None:
            edit(run_dir)
    return target


def edit_summary(run_dir, change):
    path = run_dir / "results_summary.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_sweep_configs_writes_one_phase_per_config_and_the_agreement_reading_each_submission_once(swept):
    out, bench = swept["out"], swept["bench"]
    assert sorted(swept["reads"]) == sorted(p.name for p in bench.submissions.values())  # once for both configs
    for phase in PHASES:
        assert len(list((out / phase).iterdir())) == len(bench.submissions)
        assert sorted(leaderboard_ranks(out, phase)) == sorted(bench.submissions)
    folder = out / "leaderboards" / "agreement"
    kinds = {p.name.rsplit("_", 2)[0] if p.name.startswith(("agreement", "ranks", "slope")) else p.name
             for p in folder.iterdir()}
    assert kinds == {"agreement", "ranks_by_probe", "slope", "siblings_dev.json"}
    assert json.loads((folder / "siblings_dev.json").read_text()) == {"base": "dev", "phases": PHASES}
    assert sibling_phases(out, "dev_ridge") == PHASES and sibling_phases(out, "dev") == []
    printed = {line.split(": ", 1)[0]: Path(line.split(": ", 1)[1]) for line in swept["stdout"].splitlines()
               if line.split(":")[0] in ("agreement", "ranks_by_probe", "slope_png", "slope_svg")}
    assert set(printed) == {"agreement", "ranks_by_probe", "slope_png", "slope_svg"}
    assert printed["slope_png"].read_bytes().startswith(b"\x89PNG") and b"<svg" in printed["slope_svg"].read_bytes()
    table = pd.read_csv(printed["agreement"])
    assert list(table.columns) == PAIR_COLUMNS and len(table) == 1


def test_tau_and_rho_are_scipys_on_the_leaderboards_ranks_and_linear_and_ridge_agree(swept):
    out = swept["out"]
    result = agreement(out, PHASES, resamples=400, seed=3)
    (row,) = result.pairs.itertuples(index=False)
    linear, ridge = (leaderboard_ranks(out, p) for p in PHASES)
    methods = sorted(linear)
    a, b = [linear[m] for m in methods], [ridge[m] for m in methods]
    assert (row.phase_a, row.phase_b, row.n_methods) == (*PHASES, len(methods))
    assert row.kendall_tau == pytest.approx(sps.kendalltau(a, b).statistic, abs=1e-12)
    assert row.spearman_rho == pytest.approx(sps.spearmanr(a, b).statistic, abs=1e-12)
    assert row.kendall_tau_ci_low <= row.kendall_tau <= row.kendall_tau_ci_high
    assert row.spearman_ci_low <= row.spearman_rho <= row.spearman_ci_high
    # Methods of known quality: both probes find the order (at most one neighbouring swap), and the top.
    assert row.kendall_tau >= 2 / 3 and row.top1_same
    assert linear["random_baseline"] == ridge["random_baseline"] == 4 and linear["method_a"] == ridge["method_a"] == 1


def test_ranks_by_probe_hold_the_leaderboard_ranks_compares_intervals_and_the_largest_change(swept):
    out = swept["out"]
    result = agreement(out, PHASES, resamples=400, seed=3)
    table = result.ranks.set_index("method")
    boards = {p: leaderboard_ranks(out, p) for p in PHASES}
    for phase in PHASES:
        ranks = compare(out, phase, resamples=400, seed=3, latest=True).ranks.set_index("method")
        for method, rank in boards[phase].items():
            assert table.loc[method, f"rank_{phase}"] == rank
            assert table.loc[method, f"rank_ci_low_{phase}"] == ranks.loc[method, "rank_ci_low"]
            assert table.loc[method, f"rank_ci_high_{phase}"] == ranks.loc[method, "rank_ci_high"]
    for method, row in table.iterrows():
        ranks = [boards[p][method] for p in PHASES]
        assert row["max_rank_change"] == max(ranks) - min(ranks)
        lo, hi = ([row[f"rank_ci_{s}_{p}"] for p in PHASES] for s in ("low", "high"))
        assert row["moved"] == (hi[0] < lo[1] or hi[1] < lo[0])
    assert set(result.moves["method"]) == set(table.index[table["moved"]])


def test_the_same_folds_are_resampled_in_both_phases(swept, tmp_path):
    """A phase and a copy of it: with the same resampled folds every resample ranks them alike, so tau's
    interval is exactly 1 (resampling each phase's folds independently would scatter it below)."""
    copy_phase(swept["out"], "dev_linear", tmp_path)
    copy_phase(swept["out"], "dev_linear", tmp_path, "dev_linear_again")
    result = agreement(tmp_path, ["dev_linear", "dev_linear_again"], resamples=300, seed=5)
    (row,) = result.pairs.itertuples(index=False)
    assert (row.kendall_tau, row.kendall_tau_ci_low, row.kendall_tau_ci_high) == (1, 1, 1)
    assert (row.spearman_rho, row.spearman_ci_low, row.spearman_ci_high) == (1, 1, 1)
    assert (result.ranks["max_rank_change"] == 0).all() and result.moves.empty
    a, b = result.by_phase
    np.testing.assert_array_equal(a.draws, b.draws)
    assert not (tmp_path / "leaderboards").exists()  # agreement() computes; save_agreement writes


def test_methods_are_matched_by_name_newest_run_first_and_missing_ones_left_blank(swept, tmp_path):
    out = swept["out"]
    copy_phase(out, "dev_linear", tmp_path)
    ridge = copy_phase(out, "dev_ridge", tmp_path)
    baseline = next(ridge.glob("random_baseline_*"))
    # An older run of method_a scoring like the random baseline: --latest semantics keep the newer one.
    old = ridge / "method_a_20000101_000000"
    shutil.copytree(baseline, old)
    edit_summary(old, lambda s: {**s, "experiment": old.name})
    shutil.rmtree(ridge / baseline.name.replace("random_baseline", "method_c"))
    result = agreement(tmp_path, PHASES, resamples=200)
    (row,) = result.pairs.itertuples(index=False)
    assert row.n_methods == 3
    table = result.ranks.set_index("method")
    assert pd.isna(table.loc["method_c", "rank_dev_ridge"]) and table.loc["method_c", "max_rank_change"] == 0
    assert table.loc["method_a", "rank_dev_ridge"] == 1


def test_tau_b_and_rho_with_ties_against_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, size=(2, 60, 7))  # (draws, methods), many ties
    a[0] = 2  # every method tied: no tau, no rho
    tau, rho = kendall_tau_b(a, b), spearman_rho(a, b)
    assert np.isnan(tau[0]) and np.isnan(rho[0])
    for i in range(1, len(a)):
        assert tau[i] == pytest.approx(sps.kendalltau(a[i], b[i]).statistic, abs=1e-12)
        assert rho[i] == pytest.approx(sps.spearmanr(a[i], b[i]).statistic, abs=1e-12)


def agreement_files(out):
    folder = out / "leaderboards" / "agreement"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def unshared_methods(run_dir):
    target = run_dir.with_name("other_" + run_dir.name)
    run_dir.rename(target)
    edit_summary(target, lambda s: {**s, "experiment": target.name})


def other_seed(run_dir):
    edit_summary(run_dir, lambda s: {**s, "config": {**s["config"], "seed": 7}})


def other_held_out_rows(run_dir):
    path = run_dir / "fold_scores.csv"
    lines = path.read_text().splitlines()
    n_test = lines[0].split(",").index("n_test")
    rows = [line.split(",") for line in lines[1:]]
    path.write_text("\n".join([lines[0], *(",".join(r[:n_test] + [str(int(r[n_test]) + 1)] + r[n_test + 1:])
                                           for r in rows)]) + "\n")


@pytest.mark.parametrize("phases, edit, message", [
    (["dev_linear"], None, "agreement needs at least two phases"),
    (["dev_linear", "dev_linear"], None, "phase 'dev_linear' is given twice"),
    (["dev_linear", "nothing"], None, "nothing: phase folder not found"),
    (["dev_linear", "other"], unshared_methods, r"share 0 method\(s\) by name"),
    (["dev_linear", "other"], other_seed, r"results_summary.json and .*results_summary.json: seed 42 / 7"),
    (["dev_linear", "other"], other_held_out_rows, r"fold_scores.csv: task '\w+' has 5 folds holding out \d+ rows, "
                                                   r"but .*fold_scores.csv has 5 holding out \d+"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(swept, tmp_path, capsys, phases, edit, message):
    out = swept["out"]
    copy_phase(out, "dev_linear", tmp_path)
    copy_phase(out, "dev_ridge", tmp_path, "other", edit)
    code = main(["agreement", "--output_dir", str(tmp_path), "--phases", *phases, "--resamples", "50"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert agreement_files(tmp_path) == []


def test_cli_agreement_prints_the_table_and_writes_its_files(swept, tmp_path, capsys):
    copy_phase(swept["out"], "dev_linear", tmp_path)
    copy_phase(swept["out"], "dev_ridge", tmp_path)
    assert main(["agreement", "--output_dir", str(tmp_path), "--phases", *PHASES, "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "tau" in out and "moved beyond their 95% rank intervals" in out
    names = agreement_files(tmp_path)
    assert [n.rsplit("_", 2)[0] for n in names] == ["agreement", "ranks_by_probe", "slope", "slope"]
    assert pd.read_csv(tmp_path / "leaderboards" / "agreement" / names[1])["method"].tolist()[-1] == "random_baseline"


@pytest.mark.parametrize("flags, message", [
    (["--configs", "{linear}"], "needs at least two configs"),
    (["--configs", "{linear}", "{linear}"], "two configs share the file stem 'linear'"),
    (["--configs", "{linear}", "{ablations}"], "config 'ablations' has ablations"),
])
def test_sweep_configs_bad_input_is_one_line_before_any_work(swept, tmp_path, capsys, flags, message):
    ablations = tmp_path / "ablations.yaml"
    ablations.write_text(LINEAR_YAML + "ablations: {learning_rates: [0.01, 0.1]}\n")
    paths = {"linear": swept["configs"][0], "ablations": ablations}
    bench = swept["bench"]
    code = main(["sweep", "--annotation_path", str(bench.labels_dir), "--submissions",
                 str(bench.submissions["method_a"]), str(bench.submissions["method_b"]),
                 "--output_dir", str(tmp_path / "out"), *(f.format(**paths) for f in flags)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_sweep_config_and_configs_are_mutually_exclusive(swept, capsys):
    bench = swept["bench"]
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--annotation_path", str(bench.labels_dir), "--submissions", str(bench.submissions["method_a"]),
              "--config", str(swept["configs"][0]), "--configs", *map(str, swept["configs"])])
    assert exit_.value.code == 2 and "not allowed with argument --config" in capsys.readouterr().err


def test_report_of_a_sibling_phase_shows_the_agreement(swept, tmp_path):
    out = swept["out"]
    page = write_report(out, "dev_ridge", out=tmp_path / "report.html", resamples=200)
    text = page.read_text()
    assert 'id="agreement-section"' in text and 'id="rank-moves"' in text
    table = text[text.index('<table id="agreement">'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 2 and "dev_linear" in table and "dev_ridge" in table  # header and one pair
    assert f'alt="{AGREEMENT_CAPTION}"' in text
    assert (tmp_path / AGREEMENT_FIGURE).read_bytes().startswith(b"\x89PNG")
    # The same phase elsewhere, without the sibling record of sweep --configs: no agreement section.
    copy_phase(out, "dev_ridge", tmp_path / "alone")
    assert 'id="agreement-section"' not in write_report(tmp_path / "alone", "dev_ridge", resamples=50).read_text()


def test_a_sibling_phase_that_is_gone_leaves_a_note_in_the_report(swept, tmp_path):
    out = swept["out"]
    copy_phase(out, "dev_linear", tmp_path)
    shutil.copytree(out / "leaderboards" / "agreement", tmp_path / "leaderboards" / "agreement")
    text = write_report(tmp_path, "dev_linear", resamples=50).read_text()
    assert 'id="no-agreement"' in text and "dev_ridge: phase folder not found" in text


def make_nonlinear_benchmark(root, n=800, dim=8, seed=0):
    """Three regression tasks on a 2-d latent state z (n, 2), label_t = z . w_t + 0.2 noise, and four methods:

    linear_good, linear_fair, linear_poor: z @ mix (2, dim) plus noise of std 0.3, 1 and 2.5: linearly
      readable, of graded quality under any probe;
    xor_method: (z_1 s_1, s_1, z_2 s_2, s_2, 0, ...) + 0.05 noise, with random signs s = +-1. A label is
      w_1 (z_1 s_1) s_1 + w_2 (z_2 s_2) s_2: products of two coordinates, each uncorrelated with the label
      (E[z_1 s_1 label] = w_1 E[z_1^2] E[s_1] = 0), so a linear probe reads nothing (R^2 about 0), while
      neighbours in the embedding share the signs and z (kNN), and an MLP can form the products.

    Returns:
      (labels folder, {method: submission CSV}).
    """
    rng = np.random.default_rng(seed)
    ids = hex_ids(rng, n)
    z = rng.standard_normal((n, 2))
    labels = root / "labels"
    labels.mkdir(parents=True)
    for t in range(3):
        w = rng.standard_normal(2)
        write_csv(labels / f"task_{t}__regression.csv",
                  {"id": ids, "label": z @ (w / np.linalg.norm(w)) + 0.2 * rng.standard_normal(n)})
    mix = rng.standard_normal((2, dim))
    methods = {name: z @ mix + noise * rng.standard_normal((n, dim))
               for name, noise in (("linear_good", 0.3), ("linear_fair", 1.0), ("linear_poor", 2.5))}
    s = rng.choice([-1.0, 1.0], size=(n, 2))
    products = np.column_stack([z[:, 0] * s[:, 0], s[:, 0], z[:, 1] * s[:, 1], s[:, 1]])  # (n, 4)
    methods["xor_method"] = np.pad(products, ((0, 0), (0, dim - 4))) + 0.05 * rng.standard_normal((n, dim))
    (root / "submissions").mkdir()
    files = {}
    for name, emb in methods.items():
        files[name] = root / "submissions" / f"{name}.csv"
        write_csv(files[name], {"id": ids, **{str(j): emb[:, j].astype(np.float32) for j in range(dim)}})
    return labels, files


NONLINEAR = {
    "knn": {"k_folds": K, "probe_type": "knn", "probe_params": {"k_list": [5, 15]}},
    "mlp": {"k_folds": K, "probe_type": "mlp",
            "probe_params": {"hidden_dims": [64], "batch_size": 32, "epochs": 30, "learning_rate": 0.01}},
}


def available(kind):
    """Skip a probe kind that neuco_jax does not have (yet)."""
    return pytest.mark.skipif(kind not in PROBE_TYPES or importlib.util.find_spec(f"neuco_jax.probes.{kind}") is None,
                              reason=f"probe_type {kind} is not available")


@pytest.mark.parametrize("kind", [pytest.param(k, marks=available(k)) for k in NONLINEAR])
def test_a_method_readable_only_non_linearly_ranks_higher_under_a_non_linear_probe(tmp_path, kind):
    labels, files = make_nonlinear_benchmark(tmp_path / "data")
    configs = {"linear": Config(k_folds=K, batch_size=16, epochs=20, learning_rate=0.01),
               kind: config_from_dict(NONLINEAR[kind])}
    out = tmp_path / "results"
    _, paths = pipeline.sweep_configs(list(files.values()), labels, configs, output_dir=out, phase="nl",
                                      method_names=list(files), resamples=500)
    linear, other = "nl_linear", f"nl_{kind}"
    table = pd.read_csv(paths["ranks_by_probe"]).set_index("method")
    xor = table.loc["xor_method"]
    assert xor[f"rank_{linear}"] == 4 and xor[f"rank_{other}"] < 4
    assert xor[f"rank_ci_high_{other}"] < xor[f"rank_ci_low_{linear}"] and xor["moved"]
    assert xor["max_rank_change"] == xor[f"rank_{linear}"] - xor[f"rank_{other}"]
    graded = ["linear_good", "linear_fair", "linear_poor"]
    for phase in (linear, other):  # the linearly readable methods keep their order under both probes
        assert list(table.loc[graded, f"rank_{phase}"].sort_values().index) == graded
    (row,) = pd.read_csv(paths["agreement"]).itertuples(index=False)
    assert row.kendall_tau < 1 and row.kendall_tau_ci_low < 1
    text = write_report(out, linear, resamples=200).read_text()
    moves = text[text.index('id="rank-moves"'):]
    assert "xor_method" in moves[:moves.index("</p>")]
