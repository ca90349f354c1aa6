"""Fast CPU BLAS for MLX on Linux, automatically.

The ``mlx[cpu]`` Linux wheel links its own copy of the reference (netlib)
BLAS, which is ~20x slower at matmul than OpenBLAS. MLX only calls the
standard ``cblas_*`` symbols, so preloading OpenBLAS (``LD_PRELOAD``) makes
the dynamic linker resolve them there instead; results are the same sgemm
up to summation order.

* The CLI (``lazarus-cot-router ...``) calls ``ensure_fast_blas()`` first: if
  no fast BLAS is preloaded it finds one and re-executes the same command
  once with ``LD_PRELOAD`` set (``LAZARUS_COT_ROUTER_NO_REEXEC=1`` turns
  this off). ``LAZARUS_COT_ROUTER_BLAS=/path/libblas.so`` picks the library.
* Library users and test runs: the preload has to be in place before the
  process starts, so launch through this module::

      python -m lazarus_cot_router.blas python my_script.py
      python -m lazarus_cot_router.blas python -m pytest
      eval "$(python -m lazarus_cot_router.blas --print-env)"   # for a shell

Debian/Ubuntu: ``apt-get install libopenblas0-pthread``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import sysconfig
import time
from pathlib import Path

GUARD_ENV = "LAZARUS_COT_ROUTER_BLAS_REEXEC"
NO_REEXEC_ENV = "LAZARUS_COT_ROUTER_NO_REEXEC"
BLAS_ENV = "LAZARUS_COT_ROUTER_BLAS"
PREFIX = "lazarus-cot-router: BLAS:"
INSTALL_HINT = (
    "install OpenBLAS for ~20x faster CPU matmul (Debian/Ubuntu: apt-get install libopenblas0-pthread) "
    f"or set {BLAS_ENV}=/path/to/libopenblas.so"
)
_FAST_NAMES = ("openblas", "mkl", "blis", "atlas")
_reported = False


def _multiarch() -> str:
    return sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"


def candidate_paths() -> list[str]:
    """Optimized BLAS libraries to try, best first."""
    ma = _multiarch()
    paths = [os.environ[BLAS_ENV]] if os.environ.get(BLAS_ENV) else []
    for d in (f"/usr/lib/{ma}", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        paths += [
            f"{d}/openblas-pthread/libblas.so.3",
            f"{d}/openblas-openmp/libblas.so.3",
            f"{d}/libopenblas.so.0",
            f"{d}/libopenblasp.so.0",
            f"{d}/libopenblaso.so.0",
        ]
    return paths


def _has_sgemm(path: str) -> bool:
    try:
        return hasattr(ctypes.CDLL(path), "cblas_sgemm")
    except OSError:
        return False


def find_fast_blas() -> str | None:
    """Path of an optimized BLAS exporting ``cblas_sgemm``, or None."""
    for path in candidate_paths():
        if os.path.isfile(path) and _has_sgemm(path):
            return path
    return None


def preloaded_fast_blas() -> str | None:
    """The optimized BLAS named in LD_PRELOAD, if any."""
    for path in os.environ.get("LD_PRELOAD", "").replace(":", " ").split():
        if _is_fast(path) and os.path.isfile(path):
            return path
    return None


def _is_fast(path: str) -> bool:
    real = os.path.realpath(path).lower()
    return any(n in real for n in _FAST_NAMES) or (
        path == os.environ.get(BLAS_ENV) and not _is_mlx_bundled(path)
    )


def _is_mlx_bundled(path: str) -> bool:
    return "mlx_cpu.libs" in path or "/mlx/lib/" in path


def _sgemm_provider() -> str | None:
    """The library that the global symbol scope resolves ``cblas_sgemm`` to."""
    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    try:
        proc = ctypes.CDLL(None)
        addr = ctypes.cast(proc.cblas_sgemm, ctypes.c_void_p)
    except (OSError, AttributeError):
        return None  # not in the global scope: libmlx uses its bundled BLAS
    info = DlInfo()
    if not proc.dladdr(addr, ctypes.byref(info)) or not info.dli_fname:
        return None
    return info.dli_fname.decode()


def mapped_blas_libs() -> list[str]:
    """BLAS-like shared libraries mapped into this process (``/proc/self/maps``)."""
    seen = []
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return seen
    for line in lines:
        path = line.split(maxsplit=5)[-1] if len(line.split()) >= 6 else ""
        name = os.path.basename(path).lower()
        if ("blas" in name or "mkl" in name or "blis" in name) and path not in seen:
            seen.append(path)
    return seen


def describe_library(path: str) -> str:
    """``OpenBLAS 0.3.21 (pthread)`` or a plain description."""
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_config.restype = ctypes.c_char_p
        words = lib.openblas_get_config().decode().split()
        kind = {0: "sequential", 1: "pthread", 2: "openmp"}.get(lib.openblas_get_parallel(), "?")
        return f"{words[0]} {words[1]} ({kind})"
    except (OSError, AttributeError, IndexError):
        pass
    if _is_mlx_bundled(path):
        return "reference BLAS bundled with mlx[cpu] (slow)"
    return os.path.basename(os.path.realpath(path))


def blas_in_use() -> str:
    """Which BLAS MLX's CPU matmul runs on, in words."""
    if sys.platform == "darwin":
        return "Accelerate (macOS)"
    import mlx.core  # noqa: F401  (maps libmlx and its bundled BLAS)

    provider = _sgemm_provider()
    if provider:
        how = "via LD_PRELOAD" if provider in os.environ.get("LD_PRELOAD", "") or preloaded_fast_blas() else ""
        return f"{describe_library(provider)} {how}".strip() + f" [{provider}]"
    mapped = mapped_blas_libs()
    bundled = [p for p in mapped if _is_mlx_bundled(p)]
    if bundled:
        return f"{describe_library(bundled[0])} [{bundled[0]}]"
    return f"unknown ({', '.join(mapped) or 'no BLAS library mapped'})"


def measure_matmul_gflops(n: int = 1024, repeats: int = 5, max_seconds: float = 3.0) -> float:
    """float32 ``n x n`` matmul speed on MLX's default device, GFLOP/s."""
    import mlx.core as mx

    a = mx.random.normal((n, n), dtype=mx.float32, key=mx.random.key(0))
    b = mx.random.normal((n, n), dtype=mx.float32, key=mx.random.key(1))
    mx.eval(a, b, a @ b)  # warm-up
    done, start = 0, time.perf_counter()
    while done < repeats and (done == 0 or time.perf_counter() - start < max_seconds):
        mx.eval(a @ b)
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - start) / 1e9


def preload_env(lib: str, env: dict | None = None) -> dict:
    """A copy of ``env`` with ``lib`` first in LD_PRELOAD and the re-exec guard set."""
    env = dict(os.environ if env is None else env)
    old = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{lib}:{old}" if old else lib
    env[GUARD_ENV] = "1"
    return env


def _report(text: str) -> None:
    global _reported
    if not _reported:
        _reported = True
        print(f"{PREFIX} {text}", file=sys.stderr, flush=True)


def _launched_as_cli() -> bool:
    """True for ``lazarus-cot-router`` and ``python -m commands[.cli]``,
    never for an in-process caller (pytest, a notebook) that execve would wipe."""
    arg0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(arg0)
    parent = os.path.basename(os.path.dirname(arg0))
    return name == "lazarus-cot-router" or (
        parent == "commands" and name in ("__main__.py", "cli.py")
    )


def _cpu_backend() -> bool:
    import mlx.core as mx

    return mx.default_device().type == mx.DeviceType.cpu


def fast_blas_to_preload() -> str | None:
    """The library a re-exec would preload, or None when none is needed or
    wanted (not Linux/CPU, already preloaded, already re-executed, disabled
    by ``LAZARUS_COT_ROUTER_NO_REEXEC=1``, or none installed)."""
    if not sys.platform.startswith("linux") or not _cpu_backend():
        return None
    if preloaded_fast_blas() or os.environ.get(GUARD_ENV) or os.environ.get(NO_REEXEC_ENV) == "1":
        return None
    return find_fast_blas()


def reexec_with_fast_blas() -> bool:
    """execve this process's own command line with ``fast_blas_to_preload()``;
    returns False (doing nothing) when that is None."""
    lib = fast_blas_to_preload()
    if lib is None:
        return False
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable] + list(getattr(sys, "orig_argv", sys.argv)[1:])
    os.execve(sys.executable, argv, preload_env(lib))


def ensure_fast_blas(reexec: bool | None = None) -> None:
    """Re-exec the running CLI once with an optimized BLAS preloaded, if needed.

    ``reexec=None`` re-execs only when this process is the CLI itself, never
    an in-process caller. Then prints one stderr line naming the BLAS in use
    (with an install hint if it is the slow one).
    """
    if not sys.platform.startswith("linux") or not _cpu_backend():
        return
    if not (_launched_as_cli() if reexec is None else reexec):
        return
    reexec_with_fast_blas()
    hint = ""
    if not (preloaded_fast_blas() or os.environ.get(GUARD_ENV) or os.environ.get(NO_REEXEC_ENV) == "1"):
        hint = f"; {INSTALL_HINT}"
    _report(_short(blas_in_use()) + hint)


def _short(text: str) -> str:
    return text.split(" [", 1)[0]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m lazarus_cot_router.blas [--print-env | COMMAND ARGS...]\n\n" + __doc__)
        return 0
    lib = preloaded_fast_blas() or find_fast_blas()
    if argv[0] == "--print-env":
        if lib is None:
            print(f"# no optimized BLAS found: {INSTALL_HINT}", file=sys.stderr)
            return 1
        env = preload_env(lib) if not preloaded_fast_blas() else os.environ
        print(f"export LD_PRELOAD={env['LD_PRELOAD']}")
        return 0
    if lib is None:
        print(f"{PREFIX} no optimized BLAS found; {INSTALL_HINT}", file=sys.stderr)
        env = dict(os.environ)
    else:
        env = os.environ if preloaded_fast_blas() else preload_env(lib)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        print(f"lazarus_cot_router.blas: cannot run {argv[0]!r}: {e.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
