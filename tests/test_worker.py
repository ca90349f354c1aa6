"""Model calls run on one thread: threads that call the router may end freely."""

from __future__ import annotations

import pytest

import subprocess
import sys
import threading

from conftest import ROOT, subprocess_env

from lazarus_cot_router.worker import THREAD_NAME, run_on_model_thread

SCRIPT = """
import threading
from lazarus_cot_router.rewriter import TrainedCoTRewriter
router = TrainedCoTRewriter(model={model!r})
threads = [threading.Thread(target=router.rewrite, args=(f"What is {{i}} * 4?",)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
"""


def test_calls_run_in_order_on_one_named_thread():
    seen = []
    results = []

    def call(i):
        results.append(run_on_model_thread(lambda: seen.append((i, threading.current_thread().name)) or i))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == list(range(16))
    assert {name for _, name in seen} == {THREAD_NAME}


def test_exceptions_reach_the_caller():
    def boom():
        raise KeyError("inside")

    try:
        run_on_model_thread(boom)
    except KeyError as exc:
        assert "inside" in str(exc)
    else:
        raise AssertionError("the exception was swallowed")


def test_nested_calls_run_inline():
    assert run_on_model_thread(lambda: run_on_model_thread(lambda: 7)) == 7


@pytest.mark.slow
def test_router_threads_ending_do_not_abort_the_process(tiny_model_dir):
    # Without the model thread, MLX aborted about every other run of this script
    # at exit (ml-explore/mlx#3126).
    for _ in range(4):
        proc = subprocess.run([sys.executable, "-c", SCRIPT.format(model=str(tiny_model_dir))],
                              capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == "done"
