"""``lazarus-cot-router doctor``: versions, device, BLAS, matmul speed, cache."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_report(matmul_n: int = 1024) -> dict:
    """Everything ``doctor`` prints, as a dict."""
    import mlx.core as mx

    from . import blas, models

    report = {
        "python": sys.version.split()[0],
        "mlx": mx.__version__,
        "mlx_lm": _version("mlx-lm"),
        "device": str(mx.default_device()),
        "default_dtype": str(models.default_dtype() or "native"),
        "blas": blas.blas_in_use(),
        "matmul_n": matmul_n,
        "matmul_gflops": round(blas.measure_matmul_gflops(matmul_n), 2),
        "cache_dir": str(models.cache_dir()),
        "embedded_package": _version(models.EMBEDDED_DIST),
        "embedded_gguf": None,
        "embedded_converted": None,
    }
    try:
        path = models.embedded_gguf_path()
        report["embedded_gguf"] = str(path)
        entry = models.cache_dir() / models.gguf_cache_key(path)
        report["embedded_converted"] = str(entry) if models.is_complete(entry) else False
    except models.ModelLoadError as e:
        report["embedded_error"] = str(e)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lazarus-cot-router doctor", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--matmul-n", type=int, default=1024, help="matrix size of the matmul benchmark")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = collect_report(args.matmul_n)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    n = report["matmul_n"]
    converted = report["embedded_converted"]
    rows = [
        ("python", report["python"]),
        ("mlx", report["mlx"]),
        ("mlx-lm", report["mlx_lm"] or "not installed"),
        ("device", report["device"]),
        ("default dtype", report["default_dtype"]),
        ("BLAS", report["blas"]),
        (f"matmul {n}x{n} f32", f"{report['matmul_gflops']:.1f} GFLOP/s"),
        ("cache dir", report["cache_dir"]),
        ("embedded package", report["embedded_package"] or report.get("embedded_error")),
        ("embedded converted", converted or "no (converted on first use)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
