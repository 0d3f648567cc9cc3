"""probe_type svm's config: the reference's sample config loads; each of its checks is a one-line ConfigError."""

import subprocess
from pathlib import Path

import pytest
import yaml

from neuco_jax.config import SVMParams, config_from_dict, default_config_text, load_config
from neuco_jax.errors import ConfigError

REFERENCE = Path("/work/.mirror/embed2scale+NeuCo-Bench/repo")
SAMPLE = {  # the reference's configs/sample_config_svm.yaml
    "k_folds": 40, "probe_type": "svm",
    "probe_params": {
        "C_start_end": [0.001, 1000], "epsilon_list": [0.01, 0.05, 0.1, 0.5], "kernel_degree_list": [2, 3],
        "kernel_gamma_start_end": [0.0001, 10], "kernel_coef0_start_end": [-1, 2],
        "opt_params": {"n_iter": 50, "n_jobs": 1, "n_points": 1,
                       "optimizer_kwargs": {"base_estimator": "RF", "n_initial_points": 5}, "verbose": 1}},
    "embedding_dim": None, "standardize_embeddings": True, "normalize_labels": True, "enable_plots": False,
    "update_leaderboard": False, "store_probes": False, "task_filter": None,
}


def _with(**probe):
    raw = {**SAMPLE, "probe_params": {**SAMPLE["probe_params"], **probe}}
    raw["probe_params"] = {k: v for k, v in raw["probe_params"].items() if v is not None}
    return raw


def test_the_shipped_svm_config_holds_the_reference_samples_keys_and_values():
    raw = yaml.safe_load(default_config_text("svm"))
    assert {k: v for k, v in raw.items() if k != "store_models"} == {k: v for k, v in SAMPLE.items()
                                                                    if k != "store_probes"}
    config = config_from_dict(raw)
    assert config.probe_type == "svm" and config.k_folds == 40
    assert config.svm == SVMParams(C_start_end=(0.001, 1000.0), kernel_degree_list=(2, 3),
                                   kernel_gamma_start_end=(1e-4, 10.0), kernel_coef0_start_end=(-1.0, 2.0),
                                   epsilon_list=(0.01, 0.05, 0.1, 0.5), n_iter=50, n_points=1, n_initial_points=5,
                                   opt_params=SAMPLE["probe_params"]["opt_params"])


@pytest.mark.skipif(not REFERENCE.exists(), reason="the reference's snapshot is not on this machine")
def test_the_reference_sample_file_loads_as_is(tmp_path):
    text = subprocess.run(["git", "-C", str(REFERENCE), "show", "HEAD:configs/sample_config_svm.yaml"],
                          capture_output=True, text=True, check=True).stdout
    (tmp_path / "svm.yaml").write_text(text)
    assert load_config(tmp_path / "svm.yaml") == config_from_dict(yaml.safe_load(default_config_text("svm")))


def test_to_dict_records_probe_params_in_the_references_layout():
    config = config_from_dict(SAMPLE)
    probe = config.to_dict()["probe_params"]
    assert {k: v for k, v in probe.items() if k != "device"} == SAMPLE["probe_params"]
    assert config_from_dict(config.to_dict()) == config
    minimal = config_from_dict(_with(kernel_gamma_start_end=None, kernel_coef0_start_end=None, epsilon_list=None,
                                     opt_params=None, kernel_degree_list=2))
    assert minimal.svm.kernel_degree_list == (2,) and minimal.svm.kernel_gamma_start_end is None
    assert set(minimal.to_dict()["probe_params"]) == {"C_start_end", "kernel_degree_list", "device"}


def test_single_values_and_degree_one_without_gamma_or_coef0_load():
    config = config_from_dict(_with(kernel_degree_list=[1, 2], kernel_gamma_start_end=None,
                                    kernel_coef0_start_end=None, epsilon_list=0.1))
    assert config.svm.kernel_degree_list == (1, 2) and config.svm.epsilon_list == (0.1,)


OPT = SAMPLE["probe_params"]["opt_params"]


@pytest.mark.parametrize("raw, key", [
    ({"k_folds": 5, "probe_type": "svm", "probe_params": {"C_start_end": [1, 2]}}, "probe_params.kernel_degree_list"),
    ({"k_folds": 5, "probe_type": "svm", "probe_params": {"kernel_degree_list": [2]}}, "probe_params.C_start_end"),
    (_with(opt_params={**OPT, "cv": 5}), "probe_params.opt_params.cv"),
    (_with(opt_params={**OPT, "scoring": "r2"}), "probe_params.opt_params.scoring"),
    (_with(kernel_degree_list=[2, 2.5]), "probe_params.kernel_degree_list"),
    (_with(kernel_degree_list="2"), "probe_params.kernel_degree_list"),
    (_with(kernel_degree_list=[]), "probe_params.kernel_degree_list"),
    (_with(kernel_degree_list=[0]), "probe_params.kernel_degree_list"),
    (_with(C_start_end=[1000, 0.001]), "probe_params.C_start_end"),
    (_with(C_start_end=[0.1]), "probe_params.C_start_end"),
    (_with(C_start_end=[0.1, 1, 10]), "probe_params.C_start_end"),
    (_with(C_start_end=[0, 1]), "probe_params.C_start_end"),  # log-uniform: no valid C
    (_with(C_start_end=0.1), "probe_params.C_start_end"),
    (_with(kernel_gamma_start_end=[1, 1]), "probe_params.kernel_gamma_start_end"),
    (_with(kernel_gamma_start_end=[-1, 1]), "probe_params.kernel_gamma_start_end"),
    (_with(kernel_coef0_start_end=[2, -1]), "probe_params.kernel_coef0_start_end"),
    (_with(kernel_coef0_start_end=["a", 1]), "probe_params.kernel_coef0_start_end"),
    (_with(epsilon_list=[0.1, 0]), "probe_params.epsilon_list"),
    (_with(epsilon_list=-0.1), "probe_params.epsilon_list"),
    (_with(epsilon_list=[]), "probe_params.epsilon_list"),
    (_with(kernel_degree_list=[1, 2], kernel_coef0_start_end=None), "probe_params.kernel_gamma_start_end"),
    (_with(kernel_degree_list=1, kernel_gamma_start_end=None), "probe_params.kernel_coef0_start_end"),
    (_with(opt_params={**OPT, "n_iter": 3}), "probe_params.opt_params.n_iter"),  # below n_initial_points 5
    (_with(opt_params={**OPT, "n_iter": 0}), "probe_params.opt_params.n_iter"),
    (_with(opt_params={**OPT, "n_points": 0}), "probe_params.opt_params.n_points"),
    (_with(opt_params={"optimizer_kwargs": {"n_initial_points": 0}}), "optimizer_kwargs.n_initial_points"),
    (_with(opt_params={"optimizer_kwargs": {"base_estimator": "SVM"}}), "optimizer_kwargs.base_estimator"),
    (_with(opt_params={"random_state": -1}), "probe_params.opt_params.random_state"),
    (_with(opt_params=[1]), "probe_params.opt_params"),
    ({**SAMPLE, "ablations": {"embedding_dims": [4]}}, "ablations"),
])
def test_each_check_is_a_one_line_error_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw)
    assert f"'{key}" in str(e.value) or f".{key}'" in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_opt_params_keys_warn():
    with pytest.warns(UserWarning, match="opt_params.n_iters"):
        config_from_dict(_with(opt_params={**OPT, "n_iters": 5}))
