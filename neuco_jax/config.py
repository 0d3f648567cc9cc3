"""The evaluation configuration: one typed, validated object built from the reference's YAML."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import shlex
import warnings
from pathlib import Path
from typing import Any

import yaml

from neuco_jax.errors import ConfigError

PROBE_DEFAULTS = {"batch_size": 64, "epochs": 10, "learning_rate": 0.001}
PROBE_KEYS = set(PROBE_DEFAULTS) | {"device"}
PROBE_TYPES = ("linear", "ridge", "svm", "knn", "mlp")
# The ridge probe's L2 strengths, chosen per fold by leave-one-out: scikit-learn RidgeCV's default grid.
RIDGE_ALPHAS = (0.1, 1.0, 10.0)
RIDGE_KEYS = {"alphas", "device"}
# probe_type svm: the reference's probe_params keys (benchmark/evaluation/probes/svm.py).
SVM_KEYS = {"C_start_end", "kernel_degree_list", "kernel_gamma_start_end", "kernel_coef0_start_end",
            "epsilon_list", "opt_params", "device"}
# probe_type knn: its probe_params keys (neuco_jax.probes.knn).
KNN_KEYS = {"k_list", "metric", "weights", "device"}
KNN_METRICS = ("euclidean", "cosine")
KNN_WEIGHTS = ("uniform", "distance")
# probe_type mlp: its probe_params keys (neuco_jax.probes.mlp); batch_size, epochs and learning_rate
# are the linear probe's, with its defaults.
MLP_KEYS = {"hidden_dims", "activation", "dropout", "weight_decay"} | PROBE_KEYS
MLP_ACTIVATIONS = ("gelu", "relu")
DEVICES = ("auto", "cpu", "gpu", "cuda", "tpu")
SHUFFLES = ("per_fold", "shared")  # how folds order their minibatches (neuco_jax.plan.make_plan)
# How held-out F1 counts a logit as positive: "reference" as torchmetrics' BinaryF1Score (> 0.5
# when every held-out logit of the fold lies in [0, 1], else > 0), "logit": > 0 always.
METRIC_RULES = ("reference", "logit")
# How a fold picks its epoch (linear) or candidate (svm): "test_fold", the reference's, on the fold's
# own held-out rows; "nested" on an inner validation split of its training rows (neuco_jax.plan.make_plan).
SELECTIONS = ("test_fold", "nested")
TOP_KEYS = {
    "k_folds", "probe_type", "probe_params", "embedding_dim", "standardize_embeddings",
    "normalize_labels", "enable_plots", "update_leaderboard", "output_fold_results",
    "store_probes", "store_models", "task_filter", "device", "seed", "shuffle", "ablations", "label_fraction",
    "metric_rule", "selection",
    # The reference's first sample config kept the probe keys at the top level.
    "batch_size", "epochs", "learning_rate",
}


ABLATION_KEYS = ("learning_rates", "embedding_dims", "label_fractions", "epochs")


@dataclasses.dataclass(frozen=True)
class Ablations:
    """Variants evaluated in the same compiled pass, each reported as its own run.

    learning_rates: probes trained at each rate (same folds, init and batch order).
    embedding_dims: the first d dimensions of each submission, as if it had d columns.
    label_fractions: each fold trains on this fraction of its training rows (same rows
      for every method; the held-out rows are unchanged).
    epochs: scores after each of these epoch counts, read off the one training run.
    None leaves an axis at the config's single value.
    """

    learning_rates: tuple[float, ...] | None = None
    embedding_dims: tuple[int, ...] | None = None
    label_fractions: tuple[float, ...] | None = None
    epochs: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that decides how a submission is evaluated.

    Field names and defaults follow the reference's YAML keys; `store_models`
    (the reference sample config's spelling) is read as `store_probes`.
    """

    k_folds: int
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 0.001
    probe_type: str = "linear"
    device: str = "auto"
    embedding_dim: int | None = None
    standardize_embeddings: bool = True
    normalize_labels: bool = True
    enable_plots: bool = False
    update_leaderboard: bool = False
    output_fold_results: bool = False
    store_probes: bool = False
    task_filter: tuple[str, ...] | None = None
    seed: int = 42
    shuffle: str = "per_fold"
    label_fraction: float = 1.0
    metric_rule: str = "reference"
    selection: str = "test_fold"
    ablations: Ablations = Ablations()
    alphas: tuple[float, ...] = RIDGE_ALPHAS  # probe_type ridge: probe_params.alphas
    svm: SVMParams | None = None  # probe_type svm: its probe_params
    knn: KNNParams | None = None  # probe_type knn: its probe_params
    mlp: MLPParams | None = None  # probe_type mlp: its probe_params besides batch_size, epochs, learning_rate

    def to_dict(self) -> dict[str, Any]:
        """The config in the reference's YAML layout (probe keys under `probe_params`)."""
        d = dataclasses.asdict(self)
        probe = {k: d.pop(k) for k in ("batch_size", "epochs", "learning_rate", "device")}
        alphas = d.pop("alphas")
        for kind in ("svm", "knn", "mlp"):
            d.pop(kind)
        if self.probe_type == "ridge":
            probe = {"alphas": list(alphas), "device": probe["device"]}
        elif self.svm is not None:
            probe = {**self.svm.to_dict(), "device": probe["device"]}
        elif self.knn is not None:
            probe = {**self.knn.to_dict(), "device": probe["device"]}
        elif self.mlp is not None:
            probe = {**self.mlp.to_dict(), **probe}
        d["probe_params"] = probe
        d["task_filter"] = list(self.task_filter) if self.task_filter is not None else None
        ablations = self.ablations.to_dict()
        if ablations:
            d["ablations"] = ablations
        else:
            del d["ablations"]
        return d


def _expect(value: Any, kind: type | tuple[type, ...], key: str, what: str) -> Any:
    # bool is an int subclass in Python; `k_folds: true` must not pass as 1.
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"config key '{key}': got {value!r}, expected {what}")
    if not isinstance(value, kind):
        raise ConfigError(f"config key '{key}': got {value!r}, expected {what}")
    return value


def _did_you_mean(key: Any, known) -> str:
    """"; did you mean 'k'?" naming the known key closest to a misspelt one, or "" if none is close."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def config_from_dict(raw: Any, source: str = "config") -> Config:
    """Validate a parsed YAML mapping and build a Config.

    Args:
      raw: the mapping as loaded from YAML.
      source: where it came from, for error messages.

    Returns:
      The validated Config.

    Raises:
      ConfigError: naming the key, the value and what was expected.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a YAML mapping of config keys, got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_KEYS:
            warnings.warn(f"{source}: unknown config key '{key}' is ignored{_did_you_mean(key, TOP_KEYS)}",
                          stacklevel=2)
    if "k_folds" not in raw:
        raise ConfigError(f"{source}: required key 'k_folds' is missing (e.g. 'k_folds: 40')")

    probe_type = raw.get("probe_type", "linear")
    if probe_type not in PROBE_TYPES:
        raise ConfigError(f"config key 'probe_type': got {probe_type!r}, expected one of {', '.join(PROBE_TYPES)}")
    probe = raw.get("probe_params")
    if probe is None:
        probe = {k: raw[k] for k in PROBE_KEYS if k in raw}
    elif not isinstance(probe, dict):
        raise ConfigError(f"config key 'probe_params': got {probe!r}, expected a mapping")
    known = {"ridge": RIDGE_KEYS, "svm": SVM_KEYS, "knn": KNN_KEYS, "mlp": MLP_KEYS}.get(probe_type, PROBE_KEYS)
    for key in probe:
        if key not in known and probe_type in ("knn", "mlp"):  # new kinds: no reference configs to stay lenient with
            raise ConfigError(f"config key 'probe_params.{key}': unknown for probe_type {probe_type}"
                              f"{_did_you_mean(key, known)} (allowed: {', '.join(sorted(known))})")
        if key not in known:
            warnings.warn(f"{source}: unknown key 'probe_params.{key}' is ignored{_did_you_mean(key, known)} "
                          f"(known: {', '.join(sorted(known))})", stacklevel=2)
    params = {**PROBE_DEFAULTS, **{k: v for k, v in probe.items() if k in PROBE_DEFAULTS}}

    k_folds = _expect(raw["k_folds"], int, "k_folds", "an integer >= 2")
    if k_folds < 2:
        raise ConfigError(f"config key 'k_folds': got {k_folds}, expected an integer >= 2")
    for key in ("batch_size", "epochs"):
        value = _expect(params[key], int, f"probe_params.{key}", "a positive integer")
        if value <= 0:
            raise ConfigError(f"config key 'probe_params.{key}': got {value}, expected a positive integer")
    lr = _expect(params["learning_rate"], (int, float), "probe_params.learning_rate", "a positive number")
    if not 0 < lr < math.inf:
        raise ConfigError(f"config key 'probe_params.learning_rate': got {lr}, expected a positive finite number")
    device = probe.get("device", raw.get("device", "auto"))
    if device not in DEVICES:
        raise ConfigError(f"config key 'probe_params.device': got {device!r}, expected one of {DEVICES}")

    dim = raw.get("embedding_dim")
    if dim is not None and (_expect(dim, int, "embedding_dim", "a positive integer or null") <= 0):
        raise ConfigError(f"config key 'embedding_dim': got {dim}, expected a positive integer or null")

    flags = {}
    for key in ("standardize_embeddings", "normalize_labels", "enable_plots",
                "update_leaderboard", "output_fold_results", "store_probes"):
        value = raw.get(key, raw.get("store_models") if key == "store_probes" else None)
        if value is not None:
            flags[key] = _expect(value, bool, key, "true or false")

    task_filter = raw.get("task_filter")
    if task_filter is not None:
        _expect(task_filter, list, "task_filter", "a list of task names or null")
        for name in task_filter:
            _expect(name, str, "task_filter", "a list of task names (strings)")
        task_filter = tuple(task_filter)
    seed = _expect(raw.get("seed", 42), int, "seed", "an integer from 0 to 2**32 - 1")
    if not 0 <= seed < 2**32:  # numpy's RandomState, which draws the folds, takes no other seed
        raise ConfigError(f"config key 'seed': got {seed}, expected an integer from 0 to 2**32 - 1")
    shuffle = raw.get("shuffle", "per_fold")
    if shuffle not in SHUFFLES:
        raise ConfigError(f"config key 'shuffle': got {shuffle!r}, expected one of {', '.join(SHUFFLES)}")
    metric_rule = raw.get("metric_rule", "reference")
    if metric_rule not in METRIC_RULES:
        raise ConfigError(f"config key 'metric_rule': got {metric_rule!r}, expected one of {', '.join(METRIC_RULES)}")
    selection = raw.get("selection", "test_fold")
    if selection not in SELECTIONS:
        raise ConfigError(f"config key 'selection': got {selection!r}, expected one of {', '.join(SELECTIONS)}")
    knn = knn_params(probe) if probe_type == "knn" else None
    mlp = mlp_params(probe) if probe_type == "mlp" else None
    if selection == "nested" and probe_type == "ridge":
        raise ConfigError("config key 'selection': ridge already chooses alpha on each fold's training rows "
                          "(leave-one-out); remove selection or use probe_type linear or svm")
    ablations = _ablations(raw.get("ablations"), params["epochs"], source)
    alphas = _ridge_alphas(probe) if probe_type == "ridge" else RIDGE_ALPHAS
    svm = svm_params(probe, source) if probe_type == "svm" else None
    if probe_type in ("ridge", "knn"):
        for key in ("learning_rates", "epochs"):
            if getattr(ablations, key) is not None:
                raise ConfigError(f"config key 'ablations.{key}': does not apply to probe_type {probe_type} "
                                  f"(no training steps); remove it")
    if probe_type == "svm" and ablations != Ablations():
        raise ConfigError("config key 'ablations': not supported with probe_type svm; remove it")
    fraction = _expect(raw.get("label_fraction", 1.0), (int, float), "label_fraction", "a number in (0, 1]")
    if not 0 < fraction <= 1:
        raise ConfigError(f"config key 'label_fraction': got {fraction}, expected a number in (0, 1]")

    return Config(k_folds=k_folds, batch_size=params["batch_size"], epochs=params["epochs"],
                  learning_rate=float(lr), device=device, embedding_dim=dim,
                  task_filter=task_filter, seed=seed, shuffle=shuffle, label_fraction=float(fraction),
                  metric_rule=metric_rule, selection=selection, probe_type=probe_type, alphas=alphas, svm=svm,
                  knn=knn, mlp=mlp, ablations=ablations, **flags)


@dataclasses.dataclass(frozen=True)
class KNNParams:
    """probe_type knn's probe_params: scikit-learn's KNeighbors{Regressor,Classifier} settings.

    k_list: the neighbour counts tried (each fold keeps its best, or the inner split's with
    selection nested); metric: "euclidean" or "cosine"; weights: "uniform" or "distance" (1 / d).
    """

    k_list: tuple[int, ...] = (20,)
    metric: str = "euclidean"
    weights: str = "uniform"

    def to_dict(self) -> dict[str, Any]:
        return {"k_list": list(self.k_list), "metric": self.metric, "weights": self.weights}


def knn_params(probe: dict) -> KNNParams:
    """Validate probe_type knn's probe_params (unknown keys are refused in config_from_dict)."""
    k_list = probe.get("k_list", [20])
    k_list = [k_list] if isinstance(k_list, int) and not isinstance(k_list, bool) else k_list
    if not isinstance(k_list, list) or not k_list or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in k_list):
        raise ConfigError(f"config key 'probe_params.k_list': got {probe.get('k_list')!r}, "
                          f"expected a positive integer or a non-empty list of them, e.g. [5, 20, 50]")
    if len(set(k_list)) != len(k_list):
        raise ConfigError(f"config key 'probe_params.k_list': {k_list} lists a value twice")
    for key, allowed in (("metric", KNN_METRICS), ("weights", KNN_WEIGHTS)):
        value = probe.get(key, allowed[0])
        if value not in allowed:
            raise ConfigError(f"config key 'probe_params.{key}': got {value!r}, expected one of {', '.join(allowed)}")
    return KNNParams(tuple(k_list), probe.get("metric", "euclidean"), probe.get("weights", "uniform"))


@dataclasses.dataclass(frozen=True)
class MLPParams:
    """probe_type mlp's probe_params besides batch_size, epochs and learning_rate (Config's).

    hidden_dims: widths of the hidden layers; activation: "gelu" or "relu"; dropout: the
    probability of dropping a hidden unit while training; weight_decay: AdamW's decoupled decay.
    """

    hidden_dims: tuple[int, ...] = (256,)
    activation: str = "gelu"
    dropout: float = 0.0
    weight_decay: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        return {"hidden_dims": list(self.hidden_dims), "activation": self.activation, "dropout": self.dropout,
                "weight_decay": self.weight_decay}


def mlp_params(probe: dict) -> MLPParams:
    """Validate probe_type mlp's own probe_params (unknown keys are refused in config_from_dict)."""
    dims = probe.get("hidden_dims", [256])
    dims = [dims] if isinstance(dims, int) and not isinstance(dims, bool) else dims
    if not isinstance(dims, list) or not dims or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise ConfigError(f"config key 'probe_params.hidden_dims': got {probe.get('hidden_dims')!r}, "
                          f"expected a non-empty list of positive integers, e.g. [256]")
    activation = probe.get("activation", "gelu")
    if activation not in MLP_ACTIVATIONS:
        raise ConfigError(f"config key 'probe_params.activation': got {activation!r}, "
                          f"expected one of {', '.join(MLP_ACTIVATIONS)}")
    dropout = probe.get("dropout", 0.0)
    if not _number(dropout) or not 0 <= dropout < 1:
        raise ConfigError(f"config key 'probe_params.dropout': got {dropout!r}, expected a number in [0, 1)")
    decay = probe.get("weight_decay", 0.01)
    if not _number(decay) or decay < 0:
        raise ConfigError(f"config key 'probe_params.weight_decay': got {decay!r}, expected a number >= 0")
    return MLPParams(tuple(dims), activation, float(dropout), float(decay))


def _ridge_alphas(probe: dict) -> tuple[float, ...]:
    """probe_params.alphas of a ridge config: a non-empty list of distinct positive finite numbers."""
    what = "a non-empty list of positive numbers, e.g. [0.1, 1.0, 10.0]"
    alphas = probe.get("alphas", list(RIDGE_ALPHAS))
    if not isinstance(alphas, list) or not alphas:
        raise ConfigError(f"config key 'probe_params.alphas': got {alphas!r}, expected {what}")
    for v in alphas:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise ConfigError(f"config key 'probe_params.alphas': got {v!r}, expected {what}")
    if len(set(alphas)) != len(alphas):
        raise ConfigError(f"config key 'probe_params.alphas': {alphas} lists a value twice")
    return tuple(float(v) for v in alphas)


# BayesSearchCV keywords that opt_params may hold; the reference passes cv, scoring, refit and
# return_train_score itself, so opt_params giving them fails there (cv by an assert, the rest by a TypeError).
SVM_OPT_KEYS = {"n_iter", "n_points", "n_jobs", "verbose", "optimizer_kwargs", "random_state", "pre_dispatch",
                "error_score", "fit_params", "iid"}
SVM_OPT_FORBIDDEN = ("cv", "scoring", "refit", "return_train_score")
SVM_SURROGATES = ("GP", "RF", "ET", "GBRT", "DUMMY")  # skopt's base_estimator names


@dataclasses.dataclass(frozen=True)
class SVMParams:
    """probe_type svm's search space and search budget, as the reference's probe_params give them.

    C: log-uniform over C_start_end; degree: one of kernel_degree_list; gamma:
    log-uniform over kernel_gamma_start_end (None: scikit-learn's 'scale');
    coef0: uniform over kernel_coef0_start_end (None: 0); epsilon (SVR only):
    one of epsilon_list (None: scikit-learn's 0.1). n_iter candidates per task,
    the first n_initial_points drawn at random, then n_points per surrogate round.
    opt_params is the mapping as given, recorded unchanged (n_jobs, verbose and
    base_estimator are accepted, see the README's SVM section).
    """

    C_start_end: tuple[float, float]
    kernel_degree_list: tuple[int, ...]
    kernel_gamma_start_end: tuple[float, float] | None = None
    kernel_coef0_start_end: tuple[float, float] | None = None
    epsilon_list: tuple[float, ...] | None = None
    n_iter: int = 50  # BayesSearchCV's defaults
    n_points: int = 1
    n_initial_points: int = 10  # skopt Optimizer's default
    random_state: int | None = None
    opt_params: dict = dataclasses.field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """probe_params in the reference's layout (only the keys the config gave, besides the required two)."""
        d = {"C_start_end": list(self.C_start_end), "kernel_degree_list": list(self.kernel_degree_list)}
        for key in ("kernel_gamma_start_end", "kernel_coef0_start_end", "epsilon_list"):
            if getattr(self, key) is not None:
                d[key] = list(getattr(self, key))
        if self.opt_params:
            d["opt_params"] = self.opt_params
        return d


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _range(probe: dict, key: str, positive: bool) -> tuple[float, float] | None:
    """A [start, end] pair with start < end (both > 0 when searched log-uniformly), or None if absent."""
    value = probe.get(key)
    if value is None:
        return None
    what = "two numbers [start, end] with start < end" + (", both > 0 (log-uniform)" if positive else "")
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_number(v) for v in value):
        raise ConfigError(f"config key 'probe_params.{key}': got {value!r}, expected {what}")
    if not value[0] < value[1] or (positive and value[0] <= 0):
        raise ConfigError(f"config key 'probe_params.{key}': got {value!r}, expected {what}")
    return float(value[0]), float(value[1])


def _count(opt: dict, key: str, default: int, where: str = "opt_params") -> int:
    value = opt.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"config key 'probe_params.{where}.{key}': got {value!r}, expected a positive integer")
    return value


def svm_params(probe: dict, source: str = "config") -> SVMParams:
    """Validate probe_type svm's probe_params (the reference's asserts, as one-line ConfigErrors)."""
    for key in ("C_start_end", "kernel_degree_list"):
        if key not in probe:
            raise ConfigError(f"config key 'probe_params.{key}' is missing; probe_type svm requires it "
                              f"(e.g. C_start_end: [0.001, 1000], kernel_degree_list: [2, 3])")
    C = _range(probe, "C_start_end", positive=True)
    degrees = probe["kernel_degree_list"]
    degrees = [degrees] if isinstance(degrees, int) and not isinstance(degrees, bool) else degrees
    if not isinstance(degrees, list) or not degrees or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in degrees):
        raise ConfigError(f"config key 'probe_params.kernel_degree_list': got {probe['kernel_degree_list']!r}, "
                          f"expected a positive integer or a non-empty list of them, e.g. [2, 3]")
    gamma = _range(probe, "kernel_gamma_start_end", positive=True)
    coef0 = _range(probe, "kernel_coef0_start_end", positive=False)
    for key, value in (("kernel_gamma_start_end", gamma), ("kernel_coef0_start_end", coef0)):
        if value is not None and 1 in degrees:
            raise ConfigError(f"config key 'probe_params.{key}': cannot be searched when kernel_degree_list "
                              f"{degrees} holds degree 1; remove 1 from the list or remove {key}")
    eps = probe.get("epsilon_list")
    if eps is not None:
        eps = [eps] if _number(eps) else eps
        if not isinstance(eps, list) or not eps or not all(_number(e) and e > 0 for e in eps):
            raise ConfigError(f"config key 'probe_params.epsilon_list': got {probe['epsilon_list']!r}, "
                              f"expected a positive number or a non-empty list of them, e.g. [0.01, 0.1]")
    opt = probe.get("opt_params") or {}
    if not isinstance(opt, dict):
        raise ConfigError(f"config key 'probe_params.opt_params': got {opt!r}, expected a mapping")
    for key in opt:
        if key in SVM_OPT_FORBIDDEN:
            raise ConfigError(f"config key 'probe_params.opt_params.{key}': must not be given (the protocol fixes "
                              f"{', '.join(SVM_OPT_FORBIDDEN)}); remove it")
        if key not in SVM_OPT_KEYS:
            warnings.warn(f"{source}: unknown key 'probe_params.opt_params.{key}' is ignored"
                          f"{_did_you_mean(key, SVM_OPT_KEYS)}", stacklevel=3)
    kwargs = opt.get("optimizer_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"config key 'probe_params.opt_params.optimizer_kwargs': got {kwargs!r}, "
                          f"expected a mapping")
    surrogate = kwargs.get("base_estimator", "GP")
    if not isinstance(surrogate, str) or surrogate.upper() not in SVM_SURROGATES:
        raise ConfigError(f"config key 'probe_params.opt_params.optimizer_kwargs.base_estimator': got "
                          f"{surrogate!r}, expected one of {', '.join(SVM_SURROGATES)}")
    n_iter = _count(opt, "n_iter", 50)
    n_initial = _count(kwargs, "n_initial_points", 10, "opt_params.optimizer_kwargs")
    if n_iter < n_initial:
        raise ConfigError(f"config key 'probe_params.opt_params.n_iter': got {n_iter}, expected at least "
                          f"optimizer_kwargs.n_initial_points ({n_initial})")
    seed = opt.get("random_state")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ConfigError(f"config key 'probe_params.opt_params.random_state': got {seed!r}, "
                          f"expected an integer from 0 to 2**32 - 1 or null")
    return SVMParams(C_start_end=C, kernel_degree_list=tuple(degrees), kernel_gamma_start_end=gamma,
                     kernel_coef0_start_end=coef0, epsilon_list=None if eps is None else tuple(float(e) for e in eps),
                     n_iter=n_iter, n_points=_count(opt, "n_points", 1), n_initial_points=n_initial,
                     random_state=seed, opt_params=opt)

def _ablations(raw: Any, epochs: int, source: str) -> Ablations:
    if raw is None:
        return Ablations()
    if not isinstance(raw, dict):
        raise ConfigError(f"config key 'ablations': got {raw!r}, expected a mapping with keys {ABLATION_KEYS}")
    for key in raw:
        if key not in ABLATION_KEYS:
            raise ConfigError(f"{source}: unknown key 'ablations.{key}'{_did_you_mean(key, ABLATION_KEYS)} "
                              f"(known: {', '.join(ABLATION_KEYS)})")
    checks = {
        "learning_rates": ((int, float), lambda v: 0 < v < math.inf, "positive finite numbers"),
        "embedding_dims": (int, lambda v: v > 0, "positive integers"),
        "label_fractions": ((int, float), lambda v: 0 < v <= 1, "numbers in (0, 1]"),
        "epochs": (int, lambda v: 0 < v <= epochs, f"integers from 1 to probe_params.epochs ({epochs})"),
    }
    values = {}
    for key, (kind, ok, what) in checks.items():
        if raw.get(key) is None:
            continue
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"config key 'ablations.{key}': got {items!r}, expected a non-empty list of {what}")
        for v in items:
            if isinstance(v, bool) or not isinstance(v, kind) or not ok(v):
                raise ConfigError(f"config key 'ablations.{key}': got {v!r}, expected {what}")
        if len(set(items)) != len(items):
            raise ConfigError(f"config key 'ablations.{key}': {items} lists a value twice")
        values[key] = tuple(float(v) for v in items) if kind != int else tuple(items)
    return Ablations(**values)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only, no Python objects), refusing a key given twice in a mapping.

    Plain safe loading keeps the last of two `k_folds:` lines without a word.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by design
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)):
                if key in seen:
                    raise ConfigError(f"{self.name}: key '{key}' is given twice (line {key_node.start_mark.line + 1}); "
                                      f"keep one")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def default_config_text(probe_type: str = "linear") -> str:
    """The reference's sample config for a probe type as a commented YAML file (what `neuco-jax config` prints).

    Shipped inside the package (neuco_jax/configs/<probe_type>.yaml), so it needs no clone;
    the repository's configs/linear.yaml is a copy that the tests keep identical.
    """
    return (importlib.resources.files("neuco_jax") / "configs" / f"{probe_type}.yaml").read_text(encoding="utf-8")


def default_config(probe_type: str = "linear") -> Config:
    """The packaged sample config of a probe type (default_config_text) as a Config."""
    return config_from_dict(yaml.safe_load(default_config_text(probe_type)))


def load_config(path: str | Path) -> Config:
    """Read a reference-style YAML config file (safe loading only) into a Config."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror}); check the --config path, or write the "
                          f"default config there with `neuco-jax config > {shlex.quote(str(path))}`") from None
    try:
        loader = _UniqueKeyLoader(text)
        loader.name = str(path)
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where} ({str(e).splitlines()[0]})") from None
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least 'k_folds' (see configs/linear.yaml)")
    try:
        return config_from_dict(raw, source=str(path))
    except ConfigError as e:  # name the file in every message
        raise ConfigError(str(e) if str(e).startswith(f"{path}:") else f"{path}: {e}") from None
