"""The package root: its exports load lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_root_exports_load_on_first_use():
    code = ("import sys, lazarus_cot_router as l; assert 'lazarus_cot_router.rewriter' not in sys.modules; "
            "assert l.TrainedCoTRewriter.__name__ == 'TrainedCoTRewriter'; assert callable(l.load_rewriter); "
            "assert callable(l.register_lazarus_experts); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_unknown_root_name_is_an_attribute_error():
    import lazarus_cot_router

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lazarus_cot_router.nope
