"""Where the compiled program runs: devices, the persistent compilation cache, several hosts."""

from __future__ import annotations

import os
from pathlib import Path

import jax

from neuco_jax.errors import ConfigError

CACHE_ENV = "NEUCO_JAX_CACHE_DIR"
CACHE_MAX_BYTES = 2 << 30


def default_cache_dir() -> Path:
    """`$NEUCO_JAX_CACHE_DIR`, else `$XDG_CACHE_HOME/neuco_jax/xla` (default ~/.cache/neuco_jax/xla)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuco_jax" / "xla"


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Keep compiled programs on disk so a repeat run with the same shapes skips compilation.

    Args:
      path: cache folder; None uses `default_cache_dir()`; "off" disables the cache.

    Returns:
      The folder in use, or None when disabled.
    """
    path = default_cache_dir() if path is None else path
    if str(path) == "off":
        return None
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the compilation cache folder ({e.strerror}); "
                          f"pass --cache_dir DIR or --cache_dir off") from None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Our one program compiles in about a second: cache it whatever its compile time.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # A size bound turns on JAX's file lock around cache reads and writes, which
    # makes a cache folder safe to share between concurrent runs.
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    return path


def global_array(a, mesh, *spec):
    """A host array as one global device array over `mesh`: axes named in `spec` sharded, the rest
    replicated. Every process passes the same host array (several processes: each places its own
    devices' pieces)."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))
    return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])


def select_devices(name: str = "auto") -> list:
    """The devices the probes are sharded over: every device of the platform the config asks for.

    With several processes (`initialize_distributed`), these are the devices of all of them.
    """
    if name == "auto":
        return jax.devices()
    platform = "gpu" if name == "cuda" else name
    try:
        return jax.devices(platform)
    except RuntimeError:
        raise ConfigError(f"config key 'probe_params.device': {name!r} requested but JAX sees no {platform} "
                          f"device (available: {sorted({d.platform for d in jax.devices()})}); use 'auto'") from None


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-process run (several hosts, or several processes on one host).

    With no arguments JAX detects the cluster itself (TPU pods, SLURM, Open MPI);
    otherwise every process passes the same coordinator address ("host:port") and
    process count, and its own id. On CPU, collectives go through gloo.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


def is_writer() -> bool:
    """Whether this process writes result files: the first process of a multi-process run."""
    return jax.process_index() == 0
