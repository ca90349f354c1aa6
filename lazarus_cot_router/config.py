"""Read the Lazarus-style ``virtual_experts`` YAML section and build its rewriter.

```yaml
virtual_experts:
  rewriter: trained-cot          # or few-shot, or a plugin's rewriter
  trained-cot: {model: embedded, adapter: runs/latest}
  experts: [multiply, add, subtract, divide, word_problem, schedule, time, chat]
```

Everything is validated before any model is loaded. Each rewriter's options
are declared as a dataclass (the factory's ``options`` attribute); a plugin
rewriter without one gets its options passed through unchecked. Relative paths
are resolved against the config file's folder (the working directory for a
mapping).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from .plugins import get_experts, get_rewriter, get_rewriter_factories

SECTION = "virtual_experts"
DEFAULT_REWRITER = "trained-cot"


class ConfigError(ValueError):
    """The config is malformed; the message names the key path and what is allowed."""


@dataclass(frozen=True)
class RewriterConfig:
    """A validated ``virtual_experts`` section."""

    rewriter: str
    options: dict[str, Any]
    experts: tuple[str, ...]


def describe_options(schema: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` for each option, for documentation."""
    hints = typing.get_type_hints(schema)
    return [(f.name, _type_name(hints[f.name]), f.default, f.metadata.get("help", "")) for f in dataclasses.fields(schema)]


def read_config(source: str | os.PathLike | Mapping[str, Any]) -> RewriterConfig:
    """Parse and validate a config file path or an already-loaded mapping."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data, base, where = _read_yaml(path), path.resolve().parent, str(path)
    else:
        data, base, where = source, Path.cwd(), "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with key {SECTION!r}, got {_kind(data)}")
    if SECTION not in data:
        raise ConfigError(f"{where}: missing key {SECTION!r}")
    section = data[SECTION]
    if not isinstance(section, Mapping):
        raise ConfigError(f"{SECTION}: expected a mapping, got {_kind(section)}")

    factories = get_rewriter_factories()
    allowed = ["rewriter", "experts", *factories]
    for key in section:
        if not isinstance(key, str) or key not in allowed:
            raise ConfigError(f"{SECTION}.{key}: unknown key; allowed: {', '.join(map(str, allowed))}")

    name = section.get("rewriter", DEFAULT_REWRITER)
    if not isinstance(name, str) or name not in factories:
        raise ConfigError(f"{SECTION}.rewriter: unknown rewriter {name!r}; allowed: {', '.join(factories)}")

    options: dict[str, Any] = {}
    for rewriter_name, factory in factories.items():
        if rewriter_name in section:
            checked = _check_options(rewriter_name, factory, section[rewriter_name], base)
            if rewriter_name == name:
                options = checked

    return RewriterConfig(name, options, _check_experts(section.get("experts")))


def load_rewriter(source: str | os.PathLike | Mapping[str, Any]) -> Any:
    """The rewriter a config describes, built with its options and experts."""
    config = read_config(source)
    return get_rewriter(config.rewriter, **config.options, experts=list(config.experts))


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: malformed YAML{at}: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; expected a mapping with key {SECTION!r}")
    return data


def _check_experts(value: Any) -> tuple[str, ...]:
    registered = list(get_experts())
    if value is None:
        return tuple(registered)
    key = f"{SECTION}.experts"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: expected a non-empty list of expert names, got {_kind(value)}; allowed: {', '.join(registered)}")
    seen: set[str] = set()
    for index, name in enumerate(value):
        if not isinstance(name, str) or name not in registered:
            raise ConfigError(f"{key}[{index}]: unknown expert {name!r}; allowed: {', '.join(registered)}")
        if name in seen:
            raise ConfigError(f"{key}[{index}]: expert {name!r} is listed twice")
        seen.add(name)
    return tuple(value)


def _check_options(rewriter: str, factory: Any, raw: Any, base: Path) -> dict[str, Any]:
    key = f"{SECTION}.{rewriter}"
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping of options, got {_kind(raw)}")
    if "experts" in raw:
        raise ConfigError(f"{key}.experts: the expert list belongs at {SECTION}.experts")
    schema = getattr(factory, "options", None)
    if schema is None:
        return dict(raw)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    checked = {}
    for name, value in raw.items():
        if name not in fields:
            raise ConfigError(f"{key}.{name}: unknown option; allowed: {', '.join(fields)}")
        checked[name] = _check_value(f"{key}.{name}", value, hints[name], fields[name].metadata, base)
    return checked


def _check_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any], base: Path) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (hint,) = [arg for arg in args if arg is not type(None)]
        args = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_kind(value)}")
        if value < meta.get("min", value):
            raise ConfigError(f"{key}: expected an integer >= {meta['min']}, got {value}")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads an exponent without a dot (5e-1) as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {_kind(value)}")
        low, high = meta.get("min", float("-inf")), meta.get("max", float("inf"))
        if not low <= value <= high:
            raise ConfigError(f"{key}: expected a number from {low} to {high}, got {value}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: expected a non-empty string, got {_kind(value)}")
        return _check_path(key, value, meta["path"], base) if "path" in meta else value
    raise TypeError(f"{key}: option type {hint!r} is not supported")


def _check_path(key: str, value: str, kind: str, base: Path) -> str:
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if kind == "dir" and not path.is_dir():
        raise ConfigError(f"{key}: {value!r} is not a folder (looked for {path})")
    if kind == "any" and not path.exists():
        raise ConfigError(f"{key}: {value!r} does not exist (looked for {path})")
    return str(path)


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        return " | ".join(map(repr, args))
    if args:
        return " | ".join(_type_name(arg) for arg in args)
    return "null" if hint is type(None) else hint.__name__


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"
