"""lazarus-cot-router: a trained CoT rewriter for Lazarus virtual experts.

``from lazarus_cot_router import TrainedCoTRewriter, load_rewriter``; the names
are imported on first use, so importing the package loads no model code.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "TrainedCoTRewriter": "lazarus_cot_router.rewriter",
    "load_rewriter": "lazarus_cot_router.config",
    "register_lazarus_experts": "lazarus_cot_router.lazarus_experts",
    "get_experts": "lazarus_cot_router.plugins",
    "hookimpl": "lazarus_cot_router.hookspecs",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lazarus_cot_router' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
