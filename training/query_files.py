"""Query files: labelled queries as YAML in the acceptance file's schema
(``query, expert, spec, answer`` and optional ``tags``), read with a clear
error for each entry that breaks it and written atomically."""

from __future__ import annotations

import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import yaml

from lazarus_cot_router.atomic import atomic_write
from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.grammar import ARROW, EXPERT_NAME

FIELDS = ("query", "expert", "spec", "answer")


class QueryFileError(ValueError):
    """A query YAML file that does not follow the schema."""


def dump_yaml(examples: Sequence[Example]) -> str:
    """``examples`` in the acceptance-file schema, plus ``tags`` when present;
    integral answers are written as numbers, as in that file."""
    rows = []
    for example in examples:
        row: dict[str, Any] = {"query": example.query, "expert": example.expert, "spec": example.spec,
                               "answer": _yaml_answer(example.answer)}
        if example.tags:
            row["tags"] = list(example.tags)
        rows.append(row)
    return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True, default_flow_style=None, width=math.inf)


def export_yaml(examples: Sequence[Example], path: str | os.PathLike) -> None:
    """Write :func:`dump_yaml` to ``path`` atomically."""
    atomic_write(path, dump_yaml(examples))


def load_queries(path: str | os.PathLike) -> list[Example]:
    """Read a query file (``query, expert, spec, answer`` and optional ``tags``)."""
    return parse_queries(Path(path).read_text(encoding="utf-8"), str(path))


def load_robustness() -> list[Example]:
    """The seed's robustness cases, shipped as package data."""
    text = resources.files("lazarus_cot_router").joinpath("data/robustness.yaml").read_text(encoding="utf-8")
    return parse_queries(text, "robustness.yaml")


def parse_queries(text: str, source: str = "<queries>") -> list[Example]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise QueryFileError(f"{source}: malformed YAML{at}: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(data, list):
        raise QueryFileError(f"{source}: expected a list of entries, got {type(data).__name__ if data is not None else 'nothing'}")
    return [_parse_entry(entry, index, source) for index, entry in enumerate(data)]


def _parse_entry(entry: Any, index: int, source: str) -> Example:
    where = f"{source}: entry {index}"
    if not isinstance(entry, dict):
        raise QueryFileError(f"{where}: expected a mapping with fields {', '.join(FIELDS)}")
    for key in entry:
        if key not in FIELDS + ("tags",):
            raise QueryFileError(f"{where}: unknown field {key!r}; allowed: {', '.join(FIELDS)}, tags")
    for key in FIELDS:
        if key not in entry:
            raise QueryFileError(f"{where}: missing field {key!r}")
    query, expert, spec, answer = (entry[key] for key in FIELDS)
    if not isinstance(query, str) or not query.strip():
        raise QueryFileError(f"{where}: field 'query': expected non-empty text, got {query!r}")
    if not isinstance(expert, str) or not EXPERT_NAME.fullmatch(expert):
        raise QueryFileError(f"{where}: field 'expert': expected an expert name ([a-z][a-z0-9_]*), got {expert!r}")
    if not isinstance(spec, str) or ARROW in spec or "\n" in spec:
        raise QueryFileError(f"{where}: field 'spec': expected one line of text without '->', got {spec!r}")
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise QueryFileError(f"{where}: field 'tags': expected a list of strings, got {tags!r}")
    return Example(query, expert, spec, _answer_text(answer, where), tuple(tags))


def _answer_text(answer: Any, where: str) -> str | None:
    if answer is None or isinstance(answer, str):
        return answer
    if isinstance(answer, int) and not isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, float) and math.isfinite(answer):
        return str(int(answer)) if answer.is_integer() else f"{answer:.6f}".rstrip("0").rstrip(".")
    raise QueryFileError(f"{where}: field 'answer': expected text, a number or null, got {answer!r}")


def _yaml_answer(answer: str | None) -> int | str | None:
    if answer is not None and re.fullmatch(r"-?[0-9]+", answer) and str(int(answer)) == answer:
        return int(answer)
    return answer
