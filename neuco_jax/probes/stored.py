"""`store_probes`: probes refitted on all of a task's rows, saved without pickle.

On disk, `<run>/<task>/probe/`:
    probe.npz    linear and ridge: arrays w (dim,), b ()
                 svm: support_vectors (s, dim) (standardised rows), dual_coef (s,), b ()
    probe.json   task, task_type, the submission's standardisation (mean, std),
                 the label range used for min-max scaling, hyperparameters,
                 probe_type (the kind that was refitted, "linear", "ridge" or "svm";
                 files written before it was recorded are linear), and for svm the
                 kernel (gamma <x, x'> + coef0)^degree with gamma resolved
`load_probe(folder)` returns a Probe or KernelProbe that predicts from raw embeddings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from neuco_jax.errors import InputError

FORMAT = "neuco_jax.probe/1"


class _Predicts:
    """What every stored probe does with raw embeddings: the run's standardisation, then its decision."""

    def _standardised(self, x: np.ndarray, dim: int) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] > dim:
            raise InputError(f"probe '{self.task}' takes (n, <= {dim}) embeddings, got shape {x.shape}")
        x = np.pad(x, ((0, 0), (0, dim - x.shape[1])))  # narrower rows are zero-padded, as in loading
        return (x - self.mean) / self.std

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class 0/1 (decision > 0) for classification; the label in its own units for regression.

        Each row is classified on its own, at decision > 0. The reference's F1 rule
        (`metric_rule: reference`: > 0.5 when every logit of a fold lies in [0, 1]) depends on
        a whole fold's logits, so it describes scoring a fold, not predicting a row.
        """
        z = self.decision_function(x)
        if self.task_type == "classification":
            return (z > 0).astype(np.int64)
        if self.label_min is None:
            return z
        return self.label_min + z * (self.label_max - self.label_min)


@dataclasses.dataclass(frozen=True)
class Probe(_Predicts):
    """A linear probe with the preprocessing of the run that trained it.

    w: (dim,) float32 and b on standardised embeddings; mean, std: the run's one
    global standardisation; label_min, label_max: the task's label range when
    labels were min-max scaled (None when they were not).
    """

    task: str
    task_type: str
    w: np.ndarray
    b: float
    mean: float
    std: float
    label_min: float | None = None
    label_max: float | None = None
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    probe_type: str = "linear"

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Logits for raw embeddings x: (n, d), d <= dim."""
        return self._standardised(x, len(self.w)) @ self.w.astype(np.float64) + self.b


@dataclasses.dataclass(frozen=True)
class KernelProbe(_Predicts):
    """An SVM (scikit-learn's SVC or SVR, kernel poly) with the preprocessing of the run that fitted it.

    support_vectors: (s, dim) the standardised training rows with a non-zero dual coefficient;
    dual_coef: (s,) their coefficients (y a for SVC, a+ - a- for SVR); b: the intercept;
    decision f(x) = sum_t dual_coef_t (gamma <sv_t, x> + coef0)^degree + b.
    """

    task: str
    task_type: str
    support_vectors: np.ndarray
    dual_coef: np.ndarray
    b: float
    gamma: float
    coef0: float
    degree: int
    mean: float
    std: float
    label_min: float | None = None
    label_max: float | None = None
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    probe_type: str = "svm"

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Decision values for raw embeddings x: (n, d), d <= dim."""
        xs = self._standardised(x, self.support_vectors.shape[1])
        kernel = (self.gamma * xs @ self.support_vectors.astype(np.float64).T + self.coef0) ** self.degree
        return kernel @ self.dual_coef + self.b


ARRAYS = {"linear": ("w", "b"), "ridge": ("w", "b"), "svm": ("support_vectors", "dual_coef", "b")}


def save_probe(folder: Path, probe: Probe | KernelProbe) -> None:
    """Write probe.npz and probe.json into `folder` (created).

    Linear weights are stored as float32 (the engine's precision; ridge's float64 weights are
    rounded), an SVM's support vectors as float32 (the rows it was fitted on) and its dual
    coefficients and intercept as float64.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = ARRAYS[probe.probe_type]
    if probe.probe_type == "svm":
        arrays = {"support_vectors": np.asarray(probe.support_vectors, np.float32),
                  "dual_coef": np.asarray(probe.dual_coef, np.float64), "b": np.float64(probe.b)}
    else:
        arrays = {"w": np.asarray(probe.w, np.float32), "b": np.float32(probe.b)}
    np.savez(folder / "probe.npz", **arrays)
    meta = {k: v for k, v in dataclasses.asdict(probe).items() if k not in names}
    (folder / "probe.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2))


def load_probe(path: str | Path) -> Probe:
    """Load a stored probe from its folder (or its probe.json / probe.npz)."""
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    try:
        meta = json.loads((folder / "probe.json").read_text())
        kind = meta.get("probe_type", "linear")
        with np.load(folder / "probe.npz", allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in ARRAYS[kind]}
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{folder}: not a stored probe ({e}); expect probe.json and probe.npz "
                         f"written with store_probes: true") from None
    if meta.pop("format", None) != FORMAT:
        raise InputError(f"{folder}/probe.json: unknown probe format; expected {FORMAT}")
    arrays["b"] = float(arrays["b"])
    return (KernelProbe if kind == "svm" else Probe)(**arrays, **meta)
