"""The probe kinds, side by side, and the probes stored with `store_probes`.

Each kind is one module with `run_pass(GroupPass) -> results_of` (folds.py, the interface the
pipeline calls) and, with `store_probes`, its refitted probes:
- linear: the reference's SGD-trained linear probe (neuco_jax.engine, the compiled pass)
- ridge: closed-form RidgeCV / RidgeClassifierCV per fold
- svm: the reference's polynomial SVC / SVR, its search (search.py) in batched rounds
- knn: scikit-learn's k-nearest-neighbour regressor / classifier, every fold of every task at once
- mlp: a flax MLP trained as the linear probe is (AdamW, its loss, batch order and selection)
- stored: refitted probes saved as npz + JSON and loaded back (`load_probe`)
"""

import importlib

from neuco_jax.probes.stored import KernelProbe, MLPProbe, NeighbourProbe, Probe, load_probe, save_probe

__all__ = ["KernelProbe", "MLPProbe", "NeighbourProbe", "Probe", "kind", "load_probe", "save_probe"]


def kind(probe_type: str):
    """The module of a probe kind (imported on first use: a run loads only its own kind)."""
    return importlib.import_module(f"neuco_jax.probes.{probe_type}")
