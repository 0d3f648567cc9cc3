"""The probe kinds, side by side, and the probes stored with `store_probes`.

Each kind hands the pipeline one TaskFolds per task (folds.py) and, with `store_probes`,
its refitted probes:
- linear: the reference's SGD-trained linear probe (neuco_jax.engine, the compiled pass)
- ridge: closed-form RidgeCV / RidgeClassifierCV per fold
- svm: the reference's polynomial SVC / SVR, its search (search.py) in batched rounds
- stored: refitted probes saved as npz + JSON and loaded back (`load_probe`)
"""

from neuco_jax.probes.stored import KernelProbe, Probe, load_probe, save_probe

__all__ = ["KernelProbe", "Probe", "load_probe", "save_probe"]
