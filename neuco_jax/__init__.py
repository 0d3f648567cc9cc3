"""neuco_jax: NeuCo-Bench evaluation of fixed-size Earth-observation embeddings in one compiled JAX pass."""

from importlib.metadata import PackageNotFoundError, version

from neuco_jax.probes import load_probe

try:
    __version__ = version("neuco-jax")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Benchmark", "Result", "TaskResult", "__version__", "load_probe"]


def __getattr__(name):
    """neuco_jax.Benchmark and its results, imported on first use (the CLI's start-up does not pay for them)."""
    if name in ("Benchmark", "Result", "TaskResult"):
        from neuco_jax import benchmark

        return getattr(benchmark, name)
    raise AttributeError(f"module 'neuco_jax' has no attribute {name!r}")
