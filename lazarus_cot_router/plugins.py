"""The plugin registry: experts and rewriters come from pluggy hooks.

Built-in experts and rewriters live in :mod:`lazarus_cot_router.builtin_plugins`
and are registered through the same hooks as third-party plugins, which are
found through the ``lazarus_cot_router`` entry-point group. Set
``LAZARUS_COT_ROUTER_LOAD_PLUGINS`` to a comma-separated list of distribution
names to load only those (empty: no third-party plugins).

Nothing else in the project lists expert names; everything iterates
:func:`get_experts`.
"""

from __future__ import annotations

import importlib
import os
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Iterator

import pluggy

from . import hookspecs
from .experts.base import Expert
from .grammar import EXPERT_NAME

ENTRY_POINT_GROUP = hookspecs.PROJECT
LOAD_PLUGINS_ENV = "LAZARUS_COT_ROUTER_LOAD_PLUGINS"
BUILTIN_PLUGINS = ("lazarus_cot_router.builtin_plugins",)

_pm: pluggy.PluginManager | None = None
_experts: dict[str, Expert] | None = None
_rewriters: dict[str, Callable[..., Any]] | None = None


class PluginError(Exception):
    """A plugin registered something invalid, or two plugins clash."""


class UnknownNameError(PluginError, LookupError):
    """No registered expert or rewriter has this name."""


def get_plugin_manager() -> pluggy.PluginManager:
    """The shared plugin manager, created on first use with the built-in and
    third-party plugins loaded."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        load_third_party_plugins(pm)
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            if not pm.is_registered(module):
                pm.register(module, name=module_name)
        _pm = pm
    return _pm


def load_third_party_plugins(pm: pluggy.PluginManager) -> None:
    """Register the entry points of group ``lazarus_cot_router``: all of them,
    or only those of the distributions named in ``LAZARUS_COT_ROUTER_LOAD_PLUGINS``."""
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    if wanted is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        return
    for name in (part.strip() for part in wanted.split(",")):
        if not name:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise PluginError(f"{LOAD_PLUGINS_ENV} names {name!r}, which is not installed") from None
        for entry_point in distribution.entry_points:
            if entry_point.group == ENTRY_POINT_GROUP and pm.get_plugin(entry_point.name) is None:
                pm.register(entry_point.load(), name=entry_point.name)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a module or object implementing the hooks; returns its name."""
    registered = get_plugin_manager().register(plugin, name=name)
    reset_caches()
    if registered is None:
        raise PluginError(f"plugin {name or plugin!r} is blocked")
    return registered


def unregister_plugin(plugin_or_name: object) -> None:
    pm = get_plugin_manager()
    if isinstance(plugin_or_name, str):
        pm.unregister(name=plugin_or_name)
    else:
        pm.unregister(plugin_or_name)
    reset_caches()


def reset_caches() -> None:
    """Forget the built registries; the next call re-runs the hooks."""
    global _experts, _rewriters
    _experts = None
    _rewriters = None


def reset_plugins() -> None:
    """Forget the plugin manager too, so entry points are searched again."""
    global _pm
    _pm = None
    reset_caches()


def get_experts(clock: Any = None) -> dict[str, Expert]:
    """Every registered expert by name, built-in ones first, in registration order."""
    global _experts
    if clock is None and _experts is not None:
        return dict(_experts)
    experts = _collect_experts(clock)
    if clock is None:
        _experts = experts
    return dict(experts)


def get_expert(name: str, clock: Any = None) -> Expert:
    experts = get_experts(clock)
    if name not in experts:
        raise UnknownNameError(f"unknown expert {name!r}; registered: {', '.join(experts) or 'none'}")
    return experts[name]


def get_rewriter_factories() -> dict[str, Callable[..., Any]]:
    """Every registered rewriter factory by name."""
    global _rewriters
    if _rewriters is None:
        _rewriters = _collect_rewriters()
    return dict(_rewriters)


def get_rewriter(name: str, **options: Any) -> Any:
    """Build the rewriter registered as ``name`` with ``options``."""
    factories = get_rewriter_factories()
    if name not in factories:
        raise UnknownNameError(f"unknown rewriter {name!r}; registered: {', '.join(factories) or 'none'}")
    return factories[name](**options)


def _collect_experts(clock: Any) -> dict[str, Expert]:
    experts: dict[str, Expert] = {}
    owners: dict[str, str] = {}
    for plugin, call in _hook_calls("register_experts"):

        def register(expert: Expert, plugin: str = plugin) -> None:
            if not isinstance(expert, Expert):
                raise PluginError(f"plugin {plugin} registered {expert!r}, which is not an Expert")
            name = getattr(expert, "name", None)
            if not isinstance(name, str) or not EXPERT_NAME.fullmatch(name):
                raise PluginError(f"plugin {plugin} registered an expert with invalid name {name!r}; names match [a-z][a-z0-9_]*")
            if name in owners:
                raise PluginError(f"expert {name!r} is registered by both plugin {owners[name]} and plugin {plugin}")
            owners[name] = plugin
            experts[name] = expert

        call(register, clock=clock)
    return experts


def _collect_rewriters() -> dict[str, Callable[..., Any]]:
    factories: dict[str, Callable[..., Any]] = {}
    owners: dict[str, str] = {}
    for plugin, call in _hook_calls("register_rewriters"):

        def register(name: str, factory: Callable[..., Any], plugin: str = plugin) -> None:
            if not isinstance(name, str) or not name.strip():
                raise PluginError(f"plugin {plugin} registered a rewriter with invalid name {name!r}")
            if not callable(factory):
                raise PluginError(f"plugin {plugin} registered rewriter {name!r} with a factory that is not callable")
            if name in owners:
                raise PluginError(f"rewriter {name!r} is registered by both plugin {owners[name]} and plugin {plugin}")
            owners[name] = plugin
            factories[name] = factory

        call(register)
    return factories


def _hook_calls(hook_name: str) -> Iterator[tuple[str, Callable[[Callable[..., None]], None]]]:
    """Each plugin's implementation of ``hook_name`` on its own, built-ins
    first, so a registration can be traced to the plugin that made it."""
    pm = get_plugin_manager()
    impls = [impl for impl in getattr(pm.hook, hook_name).get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
    impls.sort(key=lambda impl: impl.plugin_name not in BUILTIN_PLUGINS and not _is_builtin(impl.plugin))
    for impl in impls:
        label = _describe_plugin(pm, impl.plugin, impl.plugin_name)

        def call(register: Callable[..., None], impl=impl, **arguments: Any) -> None:
            arguments["register"] = register
            impl.function(*[arguments[arg] for arg in impl.argnames])

        yield label, call


def _is_builtin(plugin: object) -> bool:
    return isinstance(plugin, ModuleType) and plugin.__name__ in BUILTIN_PLUGINS


def _describe_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> str:
    for registered, distribution in pm.list_plugin_distinfo():
        if registered is plugin:
            return f"{name!r} (from {distribution.project_name} {distribution.version})"
    return repr(name)
