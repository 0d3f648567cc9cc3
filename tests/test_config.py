from pathlib import Path

import pytest

from neuco_jax.config import Config, config_from_dict, load_config
from neuco_jax.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# The reference's two sample config layouts, key for key.
REFERENCE_LINEAR = """\
k_folds: 40
embedding_dim: null
standardize_embeddings: true
normalize_labels: true
enable_plots: false
update_leaderboard: false
store_models: false
task_filter: null
probe_type: "linear"
probe_params:
  batch_size: 64
  epochs: 10
  learning_rate: 0.001
  device: {device}
"""
REFERENCE_FLAT = """\
batch_size: 64
epochs: 20
learning_rate: 0.001
k_folds: 40
embedding_dim: null
standardize_embeddings: true
normalize_labels: true
enable_plots: false
update_leaderboard: false
task_filter: null
"""


@pytest.mark.parametrize("device", ["auto", "cpu", "gpu"])
def test_reference_config_loads_unchanged(tmp_path, device, recwarn):
    path = tmp_path / "sample_config_linear.yaml"
    path.write_text(REFERENCE_LINEAR.format(device=device))
    config = load_config(path)
    assert config == Config(k_folds=40, device=device)
    assert not recwarn.list  # no key is unknown


def test_flat_reference_config_loads(tmp_path):
    path = tmp_path / "sample_config.yaml"
    path.write_text(REFERENCE_FLAT)
    assert load_config(path) == Config(k_folds=40, epochs=20)


def test_shipped_linear_config_is_the_reference_default():
    assert load_config(ROOT / "configs" / "linear.yaml") == Config(k_folds=40)


def test_to_dict_round_trips():
    config = Config(k_folds=5, task_filter=("a", "b"), learning_rate=0.01, store_probes=True, shuffle="shared",
                    metric_rule="logit")
    assert config_from_dict(config.to_dict()) == config
    assert config.to_dict()["metric_rule"] == "logit" and Config(k_folds=5).metric_rule == "reference"


@pytest.mark.parametrize("raw, key", [
    ({}, "k_folds"),
    ({"k_folds": 1}, "k_folds"),
    ({"k_folds": "40"}, "k_folds"),
    ({"k_folds": True}, "k_folds"),
    ({"k_folds": 5, "probe_params": {"epochs": 0}}, "probe_params.epochs"),
    ({"k_folds": 5, "probe_params": {"batch_size": 2.5}}, "probe_params.batch_size"),
    ({"k_folds": 5, "probe_params": {"learning_rate": -1}}, "probe_params.learning_rate"),
    ({"k_folds": 5, "probe_params": {"device": "npu"}}, "probe_params.device"),
    ({"k_folds": 5, "probe_params": [1, 2]}, "probe_params"),
    ({"k_folds": 5, "probe_type": "svm"}, "probe_params.C_start_end"),
    ({"k_folds": 5, "embedding_dim": 0}, "embedding_dim"),
    ({"k_folds": 5, "normalize_labels": "yes"}, "normalize_labels"),
    ({"k_folds": 5, "task_filter": "crops"}, "task_filter"),
    ({"k_folds": 5, "task_filter": [1]}, "task_filter"),
    ({"k_folds": 5, "shuffle": "sideways"}, "shuffle"),
    ({"k_folds": 5, "metric_rule": "sigmoid"}, "metric_rule"),
    ({"k_folds": 5, "metric_rule": True}, "metric_rule"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=f"'{key}'") as err:
        config_from_dict(raw)
    assert "\n" not in str(err.value)


def test_unknown_key_warns_with_the_closest_valid_key():
    with pytest.warns(UserWarning, match="'k_fold'.*did you mean 'k_folds'"):
        config_from_dict({"k_folds": 3, "k_fold": 4})


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="c.yaml: expected a YAML mapping"):
        load_config(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("k_folds: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_ablations_are_read_and_validated():
    from neuco_jax.config import Ablations
    config = config_from_dict({"k_folds": 3, "probe_params": {"epochs": 5},
                               "ablations": {"learning_rates": [0.001, 0.01], "epochs": [1, 5],
                                             "embedding_dims": [8], "label_fractions": [0.5, 1]}})
    assert config.ablations == Ablations((0.001, 0.01), (8,), (0.5, 1.0), (1, 5))
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize("ablations, key", [
    ({"learning_rate": [0.1]}, "ablations.learning_rate"),
    ({"epochs": [11]}, "ablations.epochs"),
    ({"label_fractions": [0]}, "ablations.label_fractions"),
    ({"embedding_dims": [8, 8]}, "ablations.embedding_dims"),
    ({"learning_rates": 0.1}, "ablations.learning_rates"),
    ([1, 2], "ablations"),
])
def test_bad_ablations_name_the_key(ablations, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        config_from_dict({"k_folds": 3, "ablations": ablations})
