"""One long-lived thread runs every model call of the rewriters.

Callers on any thread get the same results as sequential calls, because the
calls run one at a time, in order. It also avoids an MLX failure: a thread that
ran MLX work and then ends can abort the process at exit (ml-explore/mlx#3126);
the model thread is a daemon that never ends before the process does.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

THREAD_NAME = "lazarus-cot-router-model"

_jobs: queue.SimpleQueue | None = None
_thread: threading.Thread | None = None
_start_lock = threading.Lock()


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        future, fn, args, kwargs = jobs.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller, who re-raises it
            future.set_exception(exc)


def _ensure_started() -> queue.SimpleQueue:
    global _jobs, _thread
    with _start_lock:
        if _thread is None or not _thread.is_alive():
            _jobs = queue.SimpleQueue()
            _thread = threading.Thread(target=_serve, args=(_jobs,), name=THREAD_NAME, daemon=True)
            _thread.start()
        return _jobs


def run_on_model_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` on the model thread and return its result
    (or raise its exception). Calls made from the model thread run inline."""
    if threading.current_thread() is _thread:
        return fn(*args, **kwargs)
    future: Future = Future()
    _ensure_started().put((future, fn, args, kwargs))
    return future.result()
