"""Plugin hooks. A plugin module implements any of these with ``@hookimpl``.

The host owns the callbacks: each hook receives ``register`` and calls it once per
thing it contributes, so one plugin can register many experts or rewriters.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "lazarus_cot_router"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_experts(register: Callable[..., None]) -> None:
    """Called once when the expert registry is first built.

    Call ``register(expert)`` for each :class:`~lazarus_cot_router.experts.base.Expert`
    instance the plugin provides. Names must be unique across plugins."""


@hookspec
def register_rewriters(register: Callable[..., None]) -> None:
    """Called once when the rewriter registry is first built.

    Call ``register(name, factory)`` for each rewriter; ``factory(**options)``
    returns an object with ``rewrite(query, available_experts)``."""
