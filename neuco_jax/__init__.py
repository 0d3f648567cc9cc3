"""neuco_jax: NeuCo-Bench evaluation of fixed-size Earth-observation embeddings in one compiled JAX pass."""

from neuco_jax.probes import load_probe

__all__ = ["load_probe"]
