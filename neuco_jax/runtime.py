"""Where the compiled program runs: devices, the persistent compilation cache, several hosts."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import jax
import numpy as np

from neuco_jax.errors import ConfigError

CACHE_ENV = "NEUCO_JAX_CACHE_DIR"
CACHE_MAX_BYTES = 2 << 30
# Compiled programs kept in memory (compile_once), most recently used last; a research loop that
# scores the same shapes again skips lowering and XLA's compile, not only the trace.
EXECUTABLES_KEPT = 16
_executables: collections.OrderedDict = collections.OrderedDict()
# XLA compilations that `compile_once` ran (its cache misses); tests read it.
COMPILE_COUNT = 0


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


def compile_once(jitted, *args, **static):
    """`jitted.lower(*args, **static).compile()`, kept in memory for the same arguments' kinds.

    Arguments match when their pytree structure and each leaf's shape, dtype and sharding (or, for a
    Python scalar, type) are equal, under the same x64 flag and default device; the `EXECUTABLES_KEPT`
    most recently used programs are kept. The executable is called with arrays of those kinds.
    """
    global COMPILE_COUNT
    leaves, tree = jax.tree.flatten(args)
    key = (jitted, tree, tuple(_kind(a) for a in leaves), tuple(sorted(static.items())),
           jax.config.jax_enable_x64, jax.config.jax_default_device)
    if key in _executables:
        _executables.move_to_end(key)
        return _executables[key]
    executable = jitted.lower(*args, **static).compile()
    COMPILE_COUNT += 1
    _executables[key] = executable
    while len(_executables) > EXECUTABLES_KEPT:
        _executables.popitem(last=False)
    return executable


def _kind(a):
    if isinstance(a, jax.Array):
        return a.shape, a.dtype, a.sharding
    if isinstance(a, (np.ndarray, np.generic)):
        return a.shape, a.dtype
    return type(a)


def global_array(a, mesh, *spec):
    """A host array as one global device array over `mesh`: axes named in `spec` sharded, the rest
    replicated. Every process passes the same host array (several processes: each places its own
    devices' pieces); a device array of one process is moved device to device."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))
    if isinstance(a, jax.Array):  # already on a device (neuco_jax.benchmark): placed, not fetched
        return jax.device_put(a, sharding)
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
