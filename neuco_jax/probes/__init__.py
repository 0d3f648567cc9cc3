"""The probe kinds, side by side, and the probes stored with `store_probes`.

- linear: the reference's SGD-trained linear probe (neuco_jax.engine, the compiled pass)
- stored: refitted probes saved as npz + JSON and loaded back (`load_probe`)
"""

from neuco_jax.probes.stored import Probe, load_probe, save_probe

__all__ = ["Probe", "load_probe", "save_probe"]
