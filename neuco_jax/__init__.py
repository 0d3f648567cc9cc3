"""neuco_jax: NeuCo-Bench evaluation of fixed-size Earth-observation embeddings in one compiled JAX pass."""

from importlib.metadata import PackageNotFoundError, version

from neuco_jax.probes import load_probe

try:
    __version__ = version("neuco-jax")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "load_probe"]
