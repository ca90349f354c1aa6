"""Plugin hooks. A plugin module implements any of these with ``@hookimpl``.

The host owns the callbacks: each hook receives ``register`` and calls it once per
thing it contributes, so one plugin can register many experts or rewriters.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "lazarus_cot_router"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_experts(register: Callable[..., None], clock: Any) -> None:
    """Called when the expert registry is built.

    Call ``register(expert)`` for each :class:`~lazarus_cot_router.experts.base.Expert`
    instance the plugin provides. Names must be unique across plugins. ``clock`` is
    the one given to ``get_experts`` (``None``: the real clock), for experts that
    read the time; an implementation that needs none leaves it out of its signature."""


@hookspec
def register_rewriters(register: Callable[..., None]) -> None:
    """Called once when the rewriter registry is first built.

    Call ``register(name, factory)`` for each rewriter; ``factory(**options)``
    returns an object with ``rewrite(query, available_experts)``."""
