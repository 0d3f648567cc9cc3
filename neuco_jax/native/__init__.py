"""CPU kernels for per-fold training (minibatch_step.cc) and the SVM solver (smo.cc), built on first use.

Three XLA FFI targets: the fused per-fold minibatch step (gradient and AdamW,
each row read once), each probe's held-out logits, and libsvm's SMO for a
batch of SVM problems (each problem its own loop). The sources are compiled
into one library with the machine's C++ compiler, in the user's cache folder
(next to the XLA compilation cache), once per sources, JAX version, compiler,
flags and the instruction set the compiler targets (`-march=native` as it resolves on this
CPU). $NEUCO_JAX_NATIVE_CXXFLAGS adds flags to every build (e.g. `-mno-avx512f`
for the AVX2 kernel on a CPU with AVX-512).
Without a compiler, if the build fails, or with NEUCO_JAX_NATIVE=0,
`minibatch_step`, `heldout_logits` and `smo` return None and the engine and
the SVM solver keep their pure-XLA programs (both use the kernels on one CPU
device only).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from neuco_jax.files import shared_mode

log = logging.getLogger(__name__)

ENV = "NEUCO_JAX_NATIVE"
FLAGS_ENV = "NEUCO_JAX_NATIVE_CXXFLAGS"
# Every file the build reads (the key covers them all); the .cc files are compiled.
SOURCES = tuple(Path(__file__).with_name(name) for name in ("minibatch_step.cc", "smo.cc", "parallel_for.h"))
# FFI target name -> the library's handler symbol
TARGETS = {"neuco_minibatch_step_cls": "NeucoMinibatchStepCls", "neuco_minibatch_step_reg": "NeucoMinibatchStepReg",
           "neuco_heldout_logits": "NeucoHeldoutLogits", "neuco_smo": "NeucoSmo"}
# The first set that compiles is used. -fno-math-errno lets sqrt vectorise (errno is never read).
# Results depend on the CPU in the last bits: -march=native selects the vector width (AVX-512: 16
# lanes, else 8, so sums are split differently) and lets the compiler contract a * b + c into FMA
# where the CPU has it (GCC's default -ffp-contract=fast); the generic sets do neither.
FLAG_SETS = (["-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd"],
             ["-O3", "-fno-math-errno", "-fopenmp-simd"], ["-O3"])


def _cache_dir() -> Path:
    from neuco_jax.runtime import default_cache_dir

    return default_cache_dir().parent / "native"


def _flag_sets() -> list[list[str]]:
    """FLAG_SETS, each followed by the flags in $NEUCO_JAX_NATIVE_CXXFLAGS."""
    extra = shlex.split(os.environ.get(FLAGS_ENV, ""))
    return [[*flags, *extra] for flags in FLAG_SETS]


def _target(compiler: str, flags: list[str]) -> str:
    """What the compiler builds for with these flags: its driver's resolved commands (`-###`).

    GCC expands -march=native there into -march=<cpu> and one -m<isa>/-mno-<isa> per instruction
    set, clang into -target-cpu and -target-feature +<isa>/-<isa>; so CPUs with different
    features give different text (/proc/cpuinfo would not exist on macOS). The driver's
    messages, if it rejects the flags, serve as well: the build with them fails too.
    """
    cmd = [compiler, *flags, "-###", "-E", "-x", "c++", os.devnull, "-o", os.devnull]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{type(e).__name__}"


def build_key(compiler: str) -> str:
    """The library's cache key: sources, JAX, compiler, flags, platform and the resolved target.

    A cache folder may be shared between machines (a network home): two CPUs with different
    instruction sets must never load each other's library.
    """
    flag_sets = _flag_sets()
    parts = [*(source.read_text() for source in SOURCES), jax.__version__, compiler, str(flag_sets), sys.platform,
             platform.machine(), _target(compiler, flag_sets[0])]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _build(compiler: str, folder: Path) -> Path | None:
    """Compile the sources into folder (once per `build_key`); the library's path, or None."""
    include = jax.ffi.include_dir()
    lib = folder / f"neuco_native-{build_key(compiler)}.so"
    if lib.exists():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    for flags in _flag_sets():
        # Build under a temporary name, then rename: concurrent runs never load a half-written file.
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        cmd = [compiler, "-std=c++17", "-shared", "-fPIC", *flags, "-I", include,
               *(str(source) for source in SOURCES if source.suffix == ".cc"), "-o", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            proc = None
            log.info("native step: %s failed: %s", compiler, e)
        except BaseException:  # Ctrl-C: no half-built library left in the cache
            os.unlink(tmp)
            raise
        if proc is not None and proc.returncode == 0:
            os.chmod(tmp, shared_mode(folder=True))  # mkstemp's 0600 (+x by the linker) would keep colleagues out
            os.replace(tmp, lib)
            return lib
        os.unlink(tmp)
        if proc is not None:
            log.info("native step: %s %s failed:\n%s", compiler, " ".join(flags), proc.stderr[-2000:])
    return None


def find_compiler() -> str | None:
    """`$CXX`, else the first of c++, g++, clang++ on the PATH."""
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


@functools.cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get(ENV, "1") == "0" or not hasattr(jax, "ffi"):
        return None
    compiler = find_compiler()
    if compiler is None:
        log.info("native step: no C++ compiler found; using the XLA step")
        return None
    try:
        path = _build(compiler, _cache_dir())
    except OSError as e:
        log.info("native step: cannot build in %s (%s); using the XLA step", _cache_dir(), e)
        return None
    if path is None:
        return None
    try:
        lib = ctypes.cdll.LoadLibrary(str(path))
        for name, symbol in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    except (OSError, AttributeError) as e:
        log.info("native step: cannot load %s (%s); using the XLA step", path, e)
        return None
    log.info("native step: %s", path)
    return lib


def available() -> bool:
    """Whether the fused step is built and registered (builds it on the first call)."""
    return _library() is not None


def minibatch_step(cls: bool):
    """The fused step as a JAX function, or None if unavailable.

    (x, y, idx, n, params, mu, nu, lr, c1, c2) -> (params, mu, nu, loss): x (slots, width) and
    y (slots,) a task's rows and labels; idx (group, window) int32 each probe's window of rows, of
    which the first n (int32 scalar) are its minibatch; params, mu, nu (group, width) the probes'
    parameters and AdamW moments; lr, c1, c2 (group,) learning rates and Adam's bias corrections
    1 - beta1**t, 1 - beta2**t. Returns the stepped parameters and moments (updated in place
    where XLA can) and each probe's mean minibatch loss.
    """
    if not available():
        return None
    name = "neuco_minibatch_step_cls" if cls else "neuco_minibatch_step_reg"

    def step(x, y, idx, n, params, mu, nu, lr, c1, c2):
        like = jax.ShapeDtypeStruct(params.shape, params.dtype)
        out = (like, like, like, jax.ShapeDtypeStruct(params.shape[:1], params.dtype))
        return jax.ffi.ffi_call(name, out, input_output_aliases={4: 0, 5: 1, 6: 2})(
            x, y, idx, n, params, mu, nu, lr, c1, c2)

    return step


def heldout_logits():
    """Each probe's logits on its held-out rows as a JAX function, or None if unavailable.

    (x, test, n_test, params) -> z: x (slots, width) a task's rows; test (group, test_slots) int32
    each probe's held-out rows, of which the first n_test (int32 scalar) are real; params (group,
    width). z (group, test_slots): x[test[g, w]] . params[g], 0 past n_test.
    """
    if not available():
        return None

    def logits(x, test, n_test, params):
        out = jax.ShapeDtypeStruct(test.shape, params.dtype)
        return jax.ffi.ffi_call("neuco_heldout_logits", out)(x, test, n_test, params)

    return logits


def smo(regression: bool, tol: float, max_iter: int):
    """libsvm's SMO for a batch of problems as a JAX function, or None if unavailable.

    (gram, sign, p, upper, gamma, coef0, degree) -> (coef, intercept, objective, iterations,
    converged, decision): the operands and results of neuco_jax.probes.svm._solve_one with a
    leading problem axis on p, upper (P, l), gamma, coef0 (P,) float64 and degree (P,) int32;
    gram (n, n) and sign (l,) are shared. Call it with float64 enabled (jax.enable_x64).
    """
    if not available():
        return None

    def solve(gram, sign, p, upper, gamma, coef0, degree):
        P, n = p.shape[0], gram.shape[0]
        f64 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float64)  # noqa: E731
        out = (f64(P, n), f64(P), f64(P), jax.ShapeDtypeStruct((P,), jnp.int32), jax.ShapeDtypeStruct((P,), jnp.bool_),
               f64(P, n))
        return jax.ffi.ffi_call("neuco_smo", out)(gram, sign, p, upper, gamma, coef0, degree, regression=regression,
                                                   tol=np.float64(tol), max_iter=np.int64(max_iter))

    return solve
