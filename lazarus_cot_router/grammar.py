"""The routing line ``<expert>: <spec> -> <result>`` (see docs/FORMAT.md).

Parsing never raises: :func:`parse_line` returns a :class:`RoutingLine` or a
:class:`ParseError` carrying the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ARROW = "->"
EXPERT_NAME = re.compile(r"[a-z][a-z0-9_]*")
MAX_LINE_CHARS = 4096


@dataclass(frozen=True)
class RoutingLine:
    expert: str
    spec: str
    result: str | None = None

    def render(self) -> str:
        return render_line(self.expert, self.spec, self.result)

    @property
    def prompt_part(self) -> str:
        """What the model writes: everything up to and including ``->``."""
        return render_line(self.expert, self.spec)


@dataclass(frozen=True)
class ParseError:
    reason: str
    text: str

    def __bool__(self) -> bool:  # lets callers write ``if not parsed:``
        return False


def render_line(expert: str, spec: str, result: str | None = None) -> str:
    """``expert: spec -> result``; ``expert: ->`` for an empty spec; the part
    after ``->`` is left out when ``result`` is None."""
    head = f"{expert}: {spec} {ARROW}" if spec else f"{expert}: {ARROW}"
    return head if result is None else f"{head} {result}"


def parse_line(text: object) -> RoutingLine | ParseError:
    """Parse the first line of ``text``; a missing result is allowed (the model
    stops at ``->``)."""
    if not isinstance(text, str):
        return ParseError(f"expected text, got {type(text).__name__}", repr(text)[:80])
    if len(text) > MAX_LINE_CHARS:
        return ParseError(f"line longer than {MAX_LINE_CHARS} characters", text[:80])
    line = text.strip().split("\n", 1)[0].strip()
    if not line:
        return ParseError("empty output", text)
    name, sep, rest = line.partition(":")
    if not sep:
        return ParseError("no ':' after the expert name", line)
    name = name.strip()
    if not EXPERT_NAME.fullmatch(name):
        return ParseError(f"invalid expert name {name[:40]!r}", line)
    spec, arrow, result = rest.partition(ARROW)
    if not arrow:
        return ParseError("no '->' after the spec", line)
    if ARROW in result:
        return ParseError("more than one '->' in the line", line)
    result = result.strip()
    return RoutingLine(name, spec.strip(), result or None)
