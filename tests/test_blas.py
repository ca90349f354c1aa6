"""Fast BLAS: detection, launcher, CLI re-exec, identical results."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, subprocess_env

from lazarus_cot_router import blas

linux_cpu = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not blas._cpu_backend(), reason="Linux CPU backend only"
)
needs_fast = pytest.mark.skipif(blas.find_fast_blas() is None, reason="no optimized BLAS installed")

# the environment of a fresh shell: no preload, no guard
CLEAN = {"LD_PRELOAD": None, blas.GUARD_ENV: None, blas.NO_REEXEC_ENV: None}


def run(args, **env):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=subprocess_env(**{**CLEAN, **env}),
        capture_output=True, text=True, timeout=300,
    )


def test_blas_in_use_is_a_description():
    text = blas.blas_in_use()
    assert isinstance(text, str) and text
    assert blas.measure_matmul_gflops(128, repeats=2) > 0


@linux_cpu
@needs_fast
def test_print_env():
    out = run(["-m", "lazarus_cot_router.blas", "--print-env"])
    assert out.returncode == 0
    assert re.fullmatch(r"export LD_PRELOAD=\S+\n", out.stdout)
    assert blas.find_fast_blas() in out.stdout


@linux_cpu
@needs_fast
def test_launcher_runs_command_with_preload():
    code = "from lazarus_cot_router.blas import blas_in_use; print(blas_in_use())"
    out = run(["-m", "lazarus_cot_router.blas", sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    assert "via LD_PRELOAD" in out.stdout and "reference" not in out.stdout


@linux_cpu
@needs_fast
def test_cli_reexecs_once_with_fast_blas():
    out = run(["-m", "commands", "doctor", "--matmul-n", "512"])
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(blas.PREFIX) == 1
    assert "via LD_PRELOAD" in out.stderr
    gflops = float(re.search(r"matmul 512x512 f32\s+([\d.]+) GFLOP/s", out.stdout).group(1))
    assert gflops > 0
    assert re.search(r"^BLAS\s+.*OpenBLAS|^BLAS\s+.*via LD_PRELOAD", out.stdout, re.M)


@linux_cpu
def test_no_reexec_keeps_bundled_blas():
    out = run(["-m", "commands", "doctor", "--json", "--matmul-n", "256"], **{blas.NO_REEXEC_ENV: "1"})
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(blas.PREFIX) == 1
    assert "LD_PRELOAD" not in out.stderr
    assert '"matmul_gflops"' in out.stdout


def test_in_process_caller_is_never_reexecuted(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest"])
    assert not blas._launched_as_cli()
    blas.ensure_fast_blas()  # returns: no execve from inside pytest


MATMUL = """
import sys, mlx.core as mx, numpy as np
a = mx.random.normal((300, 200), key=mx.random.key(0)); b = mx.random.normal((200, 100), key=mx.random.key(1))
np.savez(sys.argv[1], exact=np.array(mx.round(a * 4) @ mx.round(b * 4)), real=np.array(a @ b))
"""


@linux_cpu
@needs_fast
def test_matmul_same_with_and_without_preload(tmp_path):
    ref = run(["-c", MATMUL, str(tmp_path / "ref.npz")], **{blas.NO_REEXEC_ENV: "1"})
    fast = run(["-m", "lazarus_cot_router.blas", sys.executable, "-c", MATMUL, str(tmp_path / "fast.npz")])
    assert ref.returncode == 0 and fast.returncode == 0, ref.stderr + fast.stderr
    a, b = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "fast.npz")
    np.testing.assert_array_equal(a["exact"], b["exact"])  # integer-valued: bit-identical
    np.testing.assert_allclose(a["real"], b["real"], rtol=1e-5, atol=1e-4)  # only summation order differs
