"""`store_probes`: probes refitted on all of a task's rows, saved without pickle.

On disk, `<run>/<task>/probe/`:
    probe.npz    arrays w (dim,), b ()
    probe.json   task, task_type, the submission's standardisation (mean, std),
                 its width, the label range used for min-max scaling, hyperparameters,
                 probe_type (the kind that was refitted, "linear" or "ridge"; files
                 written before it was recorded are linear)
`load_probe(folder)` returns a Probe that predicts from raw embeddings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from neuco_jax.errors import InputError

FORMAT = "neuco_jax.probe/1"


@dataclasses.dataclass(frozen=True)
class Probe:
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
        """Logits for raw embeddings x: (n, d), d <= dim (narrower rows are zero-padded, as in loading)."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] > len(self.w):
            raise InputError(f"probe '{self.task}' takes (n, <= {len(self.w)}) embeddings, got shape {x.shape}")
        x = np.pad(x, ((0, 0), (0, len(self.w) - x.shape[1])))
        return ((x - self.mean) / self.std) @ self.w.astype(np.float64) + self.b

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class 0/1 (logit > 0) for classification; the label in its own units for regression.

        Each row is classified on its own, at logit > 0. The reference's F1 rule
        (`metric_rule: reference`: > 0.5 when every logit of a fold lies in [0, 1]) depends on
        a whole fold's logits, so it describes scoring a fold, not predicting a row.
        """
        z = self.decision_function(x)
        if self.task_type == "classification":
            return (z > 0).astype(np.int64)
        if self.label_min is None:
            return z
        return self.label_min + z * (self.label_max - self.label_min)


def save_probe(folder: Path, probe: Probe) -> None:
    """Write probe.npz and probe.json into `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "probe.npz", w=np.asarray(probe.w, np.float32), b=np.float32(probe.b))
    meta = {k: v for k, v in dataclasses.asdict(probe).items() if k not in ("w", "b")}
    (folder / "probe.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2))


def load_probe(path: str | Path) -> Probe:
    """Load a stored probe from its folder (or its probe.json / probe.npz)."""
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    try:
        meta = json.loads((folder / "probe.json").read_text())
        with np.load(folder / "probe.npz", allow_pickle=False) as arrays:
            w, b = arrays["w"], float(arrays["b"])
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{folder}: not a stored probe ({e}); expect probe.json and probe.npz "
                         f"written with store_probes: true") from None
    if meta.pop("format", None) != FORMAT:
        raise InputError(f"{folder}/probe.json: unknown probe format; expected {FORMAT}")
    return Probe(w=w, b=b, **meta)
