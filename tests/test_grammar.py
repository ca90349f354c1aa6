import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus_cot_router.grammar import MAX_LINE_CHARS, ParseError, RoutingLine, parse_line, render_line

names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
line_free = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=80)
specs = line_free.filter(lambda s: "->" not in s and s == s.strip())
results = st.one_of(st.none(), line_free.filter(lambda s: "->" not in s and s == s.strip() and s))


@settings(max_examples=300)
@given(name=names, spec=specs, result=results)
def test_render_parse_round_trip(name, spec, result):
    line = render_line(name, spec, result)
    parsed = parse_line(line)
    assert parsed == RoutingLine(name, spec, result)
    assert parsed.render() == line
    assert parse_line(parsed.prompt_part) == RoutingLine(name, spec)


@settings(max_examples=300)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    parsed = parse_line(text)
    assert isinstance(parsed, (RoutingLine, ParseError))
    if isinstance(parsed, ParseError):
        assert not parsed and parsed.reason


@given(value=st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_non_text_is_a_parse_error(value):
    assert isinstance(parse_line(value), ParseError)


@pytest.mark.parametrize(
    "line, spec",
    [
        ("multiply: 256 * 4 -> 1024", "256 * 4"),
        ("multiply: 256 * 4 ->", "256 * 4"),
        ("chat: ->", ""),
        ("chat: -> [response]", ""),
        ("time: Asia/Tokyo -> 14:30 JST", "Asia/Tokyo"),
        ("schedule: gym:1hr,lunch:1.5hr | start:8:30 ->", "gym:1hr,lunch:1.5hr | start:8:30"),
        ("word_problem: eggs:16 | -3 -4 *2 -> 18\nextra line", "eggs:16 | -3 -4 *2"),
        ("  divide: 72 / 9 ->  ", "72 / 9"),
    ],
)
def test_valid_lines(line, spec):
    parsed = parse_line(line)
    assert isinstance(parsed, RoutingLine) and parsed.spec == spec


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   \n  ",
        "multiply 256 * 4 -> 1024",
        "multiply: 256 * 4 -> 1024 -> 5",
        "multiply: 256 -> 4 ->",
        "multiply: 256 * 4",
        "Multiply: 256 * 4 ->",
        "9lives: x ->",
        "mul-tiply: 2 * 2 ->",
        "_hidden: x ->",
        ": 2 * 2 ->",
        "mul tiply: 2 * 2 ->",
        "x" * (MAX_LINE_CHARS + 1),
    ],
)
def test_malformed_lines(line):
    parsed = parse_line(line)
    assert isinstance(parsed, ParseError) and not parsed
