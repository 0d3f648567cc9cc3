"""`store_probes`: probes refitted on all of a task's rows, saved without pickle.

On disk, `<run>/<task>/probe/`:
    probe.npz    linear and ridge: arrays w (dim,), b ()
                 svm: support_vectors (s, dim) (standardised rows), dual_coef (s,), b ()
                 knn: x_train (n, dim) (standardised rows, float32), y_train (n,)
                 mlp: kernel_0 (dim, h_1), bias_0 (h_1,), ..., kernel_L (h_L, 1), bias_L (1,) (float32)
    probe.json   task, task_type, the submission's standardisation (mean, std),
                 the label range used for min-max scaling, hyperparameters,
                 probe_type (the kind that was refitted, "linear", "ridge", "svm", "knn" or "mlp";
                 files written before it was recorded are linear), and for svm the
                 kernel (gamma <x, x'> + coef0)^degree with gamma resolved, for knn k, metric and weights,
                 for mlp its activation
`load_probe(folder)` returns a Probe, KernelProbe, NeighbourProbe or MLPProbe that predicts from raw embeddings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from neuco_jax.errors import InputError

FORMAT = "neuco_jax.probe/1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Predicts:
    """What every stored probe holds beside its arrays, and does with raw embeddings: the run's
    standardisation, then its decision.

    mean, std: the run's one global standardisation; label_min, label_max: the task's label range
    when labels were min-max scaled (None when they were not); hyperparameters: the run's for the
    task. A kind's arrays are its own fields: `_arrays` gives them as probe.npz stores them and
    `_from_npz` reads them back.
    """

    task: str
    task_type: str
    mean: float
    std: float
    label_min: float | None = None
    label_max: float | None = None
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    positive_at_zero: ClassVar[bool] = False  # a decision of exactly 0 predicts class 1

    def _standardised(self, x: np.ndarray, dim: int) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] > dim:
            raise InputError(f"probe '{self.task}' takes (n, <= {dim}) embeddings, got shape {x.shape}")
        x = np.pad(x, ((0, 0), (0, dim - x.shape[1])))  # narrower rows are zero-padded, as in loading
        return (x - self.mean) / self.std

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class 0/1 (decision > 0) for classification; the label in its own units for regression.

        Each row is classified on its own, at decision > 0 (an SVM's at >= 0, as SVC.predict's, see
        neuco_jax.probes.svm.heldout_metrics). The reference's F1 rule
        (`metric_rule: reference`: > 0.5 when every logit of a fold lies in [0, 1]) depends on
        a whole fold's logits, so it describes scoring a fold, not predicting a row.
        """
        z = self.decision_function(x)
        if self.task_type == "classification":
            return (z >= 0 if self.positive_at_zero else z > 0).astype(np.int64)
        if self.label_min is None:
            return z
        return self.label_min + z * (self.label_max - self.label_min)


@dataclasses.dataclass(frozen=True)
class Probe(_Predicts):
    """A linear probe: w: (dim,) float32 and b on standardised embeddings."""

    w: np.ndarray
    b: float
    probe_type: str = "linear"

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Logits for raw embeddings x: (n, d), d <= dim."""
        return self._standardised(x, len(self.w)) @ self.w.astype(np.float64) + self.b

    def _arrays(self) -> dict:
        # float32: the engine's precision (ridge's float64 weights are rounded)
        return {"w": np.asarray(self.w, np.float32), "b": np.float32(self.b)}

    @staticmethod
    def _from_npz(stored) -> dict:
        return {"w": stored["w"], "b": float(stored["b"])}


@dataclasses.dataclass(frozen=True)
class KernelProbe(_Predicts):
    """An SVM (scikit-learn's SVC or SVR, kernel poly).

    support_vectors: (s, dim) the standardised training rows with a non-zero dual coefficient;
    dual_coef: (s,) their coefficients (y a for SVC, a+ - a- for SVR); b: the intercept;
    decision f(x) = sum_t dual_coef_t (gamma <sv_t, x> + coef0)^degree + b.
    """

    support_vectors: np.ndarray
    dual_coef: np.ndarray
    b: float
    gamma: float
    coef0: float
    degree: int
    probe_type: str = "svm"
    positive_at_zero: ClassVar[bool] = True

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Decision values for raw embeddings x: (n, d), d <= dim."""
        xs = self._standardised(x, self.support_vectors.shape[1])
        kernel = (self.gamma * xs @ self.support_vectors.astype(np.float64).T + self.coef0) ** self.degree
        return kernel @ self.dual_coef + self.b

    def _arrays(self) -> dict:
        # the support vectors as float32 (the rows it was fitted on), coefficients and intercept float64
        return {"support_vectors": np.asarray(self.support_vectors, np.float32),
                "dual_coef": np.asarray(self.dual_coef, np.float64), "b": np.float64(self.b)}

    @staticmethod
    def _from_npz(stored) -> dict:
        return {"support_vectors": stored["support_vectors"], "dual_coef": stored["dual_coef"],
                "b": float(stored["b"])}


@dataclasses.dataclass(frozen=True)
class NeighbourProbe(_Predicts):
    """A kNN probe (scikit-learn's KNeighbors{Regressor,Classifier}).

    x_train: (n, dim) the task's standardised rows; y_train: (n,) their labels (0/1, or min-max
    scaled); k, metric, weights: as neuco_jax.probes.knn predicts (decision: the 0/1 class or the
    weighted mean label).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    k: int
    metric: str
    weights: str
    probe_type: str = "knn"

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Predictions for raw embeddings x: (n, d), d <= dim (0/1 for classification; ties of distance go
        to the earlier training row)."""
        from neuco_jax.probes.knn import neighbour_predictions  # the compiled probe's own rule

        xs, train = self._standardised(x, self.x_train.shape[1]), self.x_train.astype(np.float64)
        if self.metric == "cosine":
            unit = lambda a: a / np.where((n := np.linalg.norm(a, axis=1, keepdims=True)) == 0, 1.0, n)  # noqa: E731
            d = np.clip(1.0 - unit(xs) @ unit(train).T, 0.0, 2.0)
        else:
            d = np.sqrt(np.maximum((xs**2).sum(1)[:, None] + (train**2).sum(1)[None] - 2.0 * xs @ train.T, 0.0))
        nearest = np.argsort(d, axis=1, kind="stable")[:, :self.k]
        z = neighbour_predictions(np, np.take_along_axis(d, nearest, 1), self.y_train[nearest], np.asarray([self.k]),
                                  self.weights, self.task_type == "classification")
        return z[:, 0]

    def _arrays(self) -> dict:
        return {"x_train": np.asarray(self.x_train, np.float32), "y_train": np.asarray(self.y_train, np.float64)}

    @staticmethod
    def _from_npz(stored) -> dict:
        return {"x_train": stored["x_train"], "y_train": stored["y_train"]}


@dataclasses.dataclass(frozen=True)
class MLPProbe(_Predicts):
    """An MLP probe (neuco_jax.probes.mlp).

    kernels, biases: per layer (fan_in, fan_out) and (fan_out,), the first fan_in the method's dim and
    the last fan_out 1; activation: "gelu" (exact, erf) or "relu" after every layer but the last
    (dropout is a training-time rule: predictions use every unit).
    """

    kernels: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str
    probe_type: str = "mlp"

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Logits for raw embeddings x: (n, d), d <= dim, in float64."""
        from scipy.special import erf

        act = {"gelu": lambda h: 0.5 * h * (1.0 + erf(h / np.sqrt(2.0))), "relu": lambda h: np.maximum(h, 0.0)}
        h = self._standardised(x, self.kernels[0].shape[0])
        for i, (w, b) in enumerate(zip(self.kernels, self.biases)):
            h = h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
            h = act[self.activation](h) if i < len(self.kernels) - 1 else h
        return h[:, 0]

    def _arrays(self) -> dict:
        # kernel_0, bias_0, ... one pair per layer, float32 (the training precision)
        return {f"{name}_{i}": np.asarray(a, np.float32) for name, layers in (("kernel", self.kernels),
                ("bias", self.biases)) for i, a in enumerate(layers)}

    @staticmethod
    def _from_npz(stored) -> dict:
        layers = range(sum(name.startswith("kernel_") for name in stored.files))
        return {"kernels": tuple(stored[f"kernel_{i}"] for i in layers),
                "biases": tuple(stored[f"bias_{i}"] for i in layers)}


KINDS = {"linear": Probe, "ridge": Probe, "svm": KernelProbe, "knn": NeighbourProbe, "mlp": MLPProbe}
ARRAY_FIELDS = {"w", "b", "support_vectors", "dual_coef", "x_train", "y_train", "kernels", "biases"}


def save_probe(folder: Path, probe: _Predicts) -> None:
    """Write probe.npz (the kind's arrays, `_arrays`) and probe.json (everything else) into `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "probe.npz", **probe._arrays())
    meta = {f.name: getattr(probe, f.name) for f in dataclasses.fields(probe) if f.name not in ARRAY_FIELDS}
    (folder / "probe.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2))


def load_probe(path: str | Path) -> _Predicts:
    """Load a stored probe from its folder (or its probe.json / probe.npz)."""
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    try:
        meta = json.loads((folder / "probe.json").read_text())
        cls = KINDS[meta.get("probe_type", "linear")]
        with np.load(folder / "probe.npz", allow_pickle=False) as stored:
            arrays = cls._from_npz(stored)
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{folder}: not a stored probe ({e}); expect probe.json and probe.npz "
                         f"written with store_probes: true") from None
    if meta.pop("format", None) != FORMAT:
        raise InputError(f"{folder}/probe.json: unknown probe format; expected {FORMAT}")
    return cls(**arrays, **meta)
