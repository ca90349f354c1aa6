import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import regex
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazarus_cot_router.experts.base import (
    ExpertError,
    HostAction,
    LimitError,
    MathDomainError,
    OperatorMismatchError,
    SpecSyntaxError,
    UnknownZoneError,
)
from lazarus_cot_router.experts.builtin import DEFAULT_EXPERT_NAMES, default_experts
from lazarus_cot_router.experts.numbers import format_number
from lazarus_cot_router.experts.places import place_index, resolve_zone
from lazarus_cot_router.experts.time import TimeExpert
from lazarus_cot_router.experts.word_problem import (
    SPEC_PATTERN,
    Operation,
    evaluate,
    numbers_of,
    operator_offsets,
    parse_spec,
    write_spec,
)

WINTER = datetime(2025, 1, 15, 12, 0, tzinfo=timezone.utc)
SUMMER = datetime(2025, 7, 15, 12, 0, tzinfo=timezone.utc)
ROBUSTNESS = Path("/work/shared/acceptance/robustness.yaml")


@pytest.fixture(scope="module")
def experts():
    place_index()
    return {e.name: e for e in default_experts(clock=lambda: WINTER)}


def test_default_order():
    assert [e.name for e in default_experts()] == list(DEFAULT_EXPERT_NAMES)


@pytest.mark.parametrize(
    "expert, spec, result",
    [
        ("multiply", "256 * 4", "1024"),
        ("add", "3.5 + 2.25", "5.75"),
        ("subtract", "50 - 17", "33"),
        ("divide", "72 / 9", "8"),
        ("divide", "1 / 3", "0.333333"),
        ("divide", "2 / 3", "0.666667"),
        ("divide", "10 / 4", "2.5"),
        ("add", "0.1 + 0.2", "0.3"),
        ("subtract", "7 - 12", "-5"),
        ("subtract", "5 - -3", "8"),
        ("subtract", "50-17", "33"),
        ("multiply", "-2.5 * 4", "-10"),
        ("multiply", "0.0000001 * -1", "0"),
        ("word_problem", "eggs:16 | -3 -4 *2", "18"),
        ("word_problem", "apples:10 | /4", "2.5"),
        ("word_problem", "dollars:50|-12+8", "46"),
        ("word_problem", "4 | -3", "1"),
        ("word_problem", "12 | /(1 +2)", "4"),
        ("word_problem", "10 | -(2 *3)", "4"),
        ("word_problem", "3 | +5 /(6 -4)", "4"),
        ("word_problem", "100 | -(2 *(3 +4))", "86"),
        ("word_problem", "marbles:7 | *(2 +1) -1", "20"),
        ("word_problem", "2 | *-3 - -4", "-2"),
        ("schedule", "Alice:2hr,Bob:1hr | no_overlap", "Alice:9-11,Bob:11-12"),
        ("schedule", "gym:1hr,lunch:1.5hr | sequential", "gym:9-10,lunch:10-11:30"),
        ("schedule", "a:0.25hr,b:1.75hr | no_overlap,start:8:05", "a:8:05-8:20,b:8:20-10:05"),
        ("schedule", "late:2hr | start:22", "late:22-24"),
        ("schedule", "team meeting:1hr | start:13", "team meeting:13-14"),
        ("schedule", "gym:1hr,lunch:30min | sequential", "gym:9-10,lunch:10-10:30"),
        ("schedule", "a:45min,b:1.5hr,c:20 min | start:8:30", "a:8:30-9:15,b:9:15-10:45,c:10:45-11:05"),
        ("schedule", "late:90min | start:22:30", "late:22:30-24"),
        ("multiply", "15% * 80", "12"),
        ("multiply", "25% * 6999", "1749.75"),
        ("multiply", "80 * 15%", "12"),
        ("multiply", "0.5% * 3", "0.015"),
        ("multiply", "-5% * 3", "-0.15"),
        ("add", "50% + 1", "1.5"),
        ("subtract", "10 - 100%", "9"),
        ("divide", "30 / 50%", "60"),
        ("time", "EST", "07:00 EST"),
        ("time", "pacific standard time", "04:00 PST"),
        ("time", "las vegas, nv", "04:00 PST"),
        ("time", "Asia/Tokyo", "21:00 JST"),
        ("time", "Mumbai", "17:30 IST"),
        ("chat", "", "[response]"),
    ],
)
def test_format_examples(experts, expert, spec, result):
    assert experts[expert].execute(spec) == result


def test_robustness_specs(experts):
    for case in yaml.safe_load(ROBUSTNESS.read_text()):
        expert = experts[case["expert"]]
        expected = case["answer"]
        assert expert.answer(case["spec"]) == (None if expected is None else str(expected)), case


@pytest.mark.parametrize(
    "value, text",
    [("8.0", "8"), ("-0.0000004", "0"), ("0.0000005", "0.000001"), ("1234.5000", "1234.5"), ("-3", "-3")],
)
def test_format_number(value, text):
    from decimal import Decimal

    assert format_number(Decimal(value)) == text


@pytest.mark.parametrize(
    "expert, spec, error",
    [
        ("divide", "5 / 0", MathDomainError),
        ("divide", "5 / 0.0", MathDomainError),
        ("word_problem", "eggs:3 | /0", MathDomainError),
        ("add", "3 * 4", OperatorMismatchError),
        ("multiply", "3 + 4", OperatorMismatchError),
        ("subtract", "3 / 4", OperatorMismatchError),
        ("add", "3 +", SpecSyntaxError),
        ("add", "3 + 4 + 5", SpecSyntaxError),
        ("add", "three + four", SpecSyntaxError),
        ("add", "", SpecSyntaxError),
        ("add", "1e5 + 1", SpecSyntaxError),
        ("add", "٣ + 4", SpecSyntaxError),
        ("multiply", "9**9**9", SpecSyntaxError),
        ("multiply", "10**10**10", SpecSyntaxError),
        ("multiply", "__import__('os')", SpecSyntaxError),
        ("multiply", "1000000000000001 * 1", LimitError),
        ("multiply", "100000000 * 100000000", LimitError),
        ("add", "999999999999999 + 999999999999999", LimitError),
        ("add", "1" * 200 + " + 1", LimitError),
        ("word_problem", "eggs:16", SpecSyntaxError),
        ("word_problem", "eggs:16 |", SpecSyntaxError),
        ("word_problem", "16 -3", SpecSyntaxError),
        ("word_problem", "16 | (2 +1)", SpecSyntaxError),
        ("word_problem", "(16 +1) | -3", SpecSyntaxError),
        ("word_problem", "16 | /(2 +1", SpecSyntaxError),
        ("word_problem", "16 | /(2 +1))", SpecSyntaxError),
        ("word_problem", "16 | /()", SpecSyntaxError),
        ("word_problem", "16 | /(+1)", SpecSyntaxError),
        ("word_problem", "16 | /(2 3)", SpecSyntaxError),
        ("word_problem", "eggs:16 | -3 %2", SpecSyntaxError),
        ("word_problem", "x:1 | " + " +1" * 33, LimitError),
        ("word_problem", "x:1 | +(1 " + "+1 " * 32 + ")", LimitError),  # nested steps count too
        ("word_problem", "1 | " + "+(1 " * 9 + ")" * 9, LimitError),
        ("word_problem", "1 | /(2 -2)", MathDomainError),
        ("word_problem", "x:1000000 | *1000000 *1000000", LimitError),
        ("schedule", "Alice:2hr,Bob:1hr", SpecSyntaxError),
        ("schedule", "Alice:2hr | overlap", SpecSyntaxError),
        ("schedule", "Alice:0hr | no_overlap", SpecSyntaxError),
        ("schedule", "Alice:-1hr | no_overlap", SpecSyntaxError),
        ("schedule", "Alice:0.3333hr | no_overlap", SpecSyntaxError),
        ("schedule", "Alice:2h | no_overlap", SpecSyntaxError),
        ("schedule", "Alice:2hr | start:25", SpecSyntaxError),
        ("schedule", "Alice:2hr | start:9,start:10", SpecSyntaxError),
        ("schedule", "Alice:2hr | a | b", SpecSyntaxError),
        ("schedule", "Alice:10hr,Bob:6hr | no_overlap", LimitError),
        ("schedule", "a:1hr | start:23:30", LimitError),
        ("schedule", ",".join(["a:1hr"] * 51) + " | sequential", LimitError),
        ("schedule", ",".join(["a:1hr"] * 10_000) + " | sequential", LimitError),
        ("time", "Qwertyville", UnknownZoneError),
        ("time", "", UnknownZoneError),
        ("time", "__import__('os')", UnknownZoneError),
        ("time", "eastern", UnknownZoneError),  # a zone word names a zone only with "time" after it
        ("time", "hi, ok", UnknownZoneError),  # "OK" after a comma only with a city GeoNames lists there
        ("time", "what time is it in houston, tx", UnknownZoneError),  # no town's name
        ("multiply", "15 % * 80", SpecSyntaxError),
        ("multiply", "15%% * 80", SpecSyntaxError),
        ("multiply", "%15 * 80", SpecSyntaxError),
        ("divide", "5 / 0%", MathDomainError),
        ("schedule", "lunch:30mins | no_overlap", SpecSyntaxError),
        ("schedule", "lunch:0.5min | no_overlap", SpecSyntaxError),  # whole minutes
        ("schedule", "lunch:0min | no_overlap", SpecSyntaxError),
        ("schedule", "lunch:1441min | no_overlap", LimitError),
        ("schedule", "a:30min | overlap", SpecSyntaxError),
        ("chat", "hello", SpecSyntaxError),
    ],
)
def test_typed_errors(experts, expert, spec, error):
    with pytest.raises(error):
        experts[expert].execute(spec)


NASTY = [
    "(" * 10_000 + "1" + ")" * 10_000,
    "1 + " * 25_000 + "1",
    "x" * 100_000,
    "9" * 100_000,
    "9**9**9",
    "10**10**10",
    "__import__('os').system('true')",
    "eggs:16 | " + "-1 " * 50_000,
    "-" * 10_000 + ">",
    "\x00\n\r\t",
]


@pytest.mark.parametrize("spec", NASTY, ids=range(len(NASTY)))
def test_nasty_inputs_fail_fast(experts, spec):
    for expert in experts.values():
        started = time.perf_counter()
        with pytest.raises(ExpertError):
            expert.execute(spec)
        assert time.perf_counter() - started < 0.1, expert.name


def test_non_text_spec(experts):
    for expert in experts.values():
        with pytest.raises(SpecSyntaxError):
            expert.execute(None)


def test_time_with_injected_clock():
    winter, summer = TimeExpert(lambda: WINTER), TimeExpert(lambda: SUMMER)
    assert winter.execute("Tokyo") == "21:00 JST"
    assert winter.execute("London") == "12:00 GMT"
    assert summer.execute("London") == "13:00 BST"
    assert summer.execute("Europe/London") == "13:00 BST"
    assert winter.execute("New York") == "07:00 EST"
    assert summer.execute("new york") == "08:00 EDT"
    assert TimeExpert(lambda: WINTER.replace(tzinfo=None)).execute("Tokyo") == "21:00 JST"
    assert TimeExpert(lambda: WINTER.astimezone(timezone(timedelta(hours=5)))).execute("UTC") == "12:00 UTC"


@pytest.mark.parametrize(
    "place, zone",
    [
        ("Tokyo", "Asia/Tokyo"), ("New York", "America/New_York"), ("london", "Europe/London"),
        ("Europe/London", "Europe/London"), ("europe/london", "Europe/London"), ("  Paris ", "Europe/Paris"),
        ("NYC", "America/New_York"), ("Bombay", "Asia/Kolkata"), ("Sao Paulo", "America/Sao_Paulo"),
        ("São Paulo", "America/Sao_Paulo"), ("London, Canada", "America/Toronto"), ("Japan", "Asia/Tokyo"),
        ("India", "Asia/Kolkata"), ("UK", "Europe/London"), ("Asia/Calcutta", "Asia/Kolkata"),
        ("Kiev", "Europe/Kyiv"), ("Los Angeles", "America/Los_Angeles"), ("Sydney", "Australia/Sydney"),
        # US states, the zone most of their people live in; a country of the same name wins.
        ("california", "America/Los_Angeles"), ("Florida", "America/New_York"), ("texas", "America/Chicago"),
        ("Michigan", "America/Detroit"), ("Arizona", "America/Phoenix"), ("hawaii", "Pacific/Honolulu"),
        ("Georgia", "Asia/Tbilisi"), ("Washington", "America/New_York"), ("Washington state", "America/Los_Angeles"),
        # City, ST (or the state in full); a town GeoNames does not list takes its state's zone.
        ("las vegas, nv", "America/Los_Angeles"), ("Houston, TX", "America/Chicago"),
        ("Paris, Texas", "America/Chicago"), ("Portland, OR", "America/Los_Angeles"),
        ("Portland, Maine", "America/New_York"), ("glenwood springs, co", "America/Denver"),
        ("Vancouver, BC", "America/Vancouver"), ("London, Ontario", "America/Toronto"),
        # Zone names and abbreviations: the civil zone, daylight saving included.
        ("est", "America/New_York"), ("CST", "America/Chicago"), ("mst", "America/Denver"),
        ("PST", "America/Los_Angeles"), ("hst", "Pacific/Honolulu"), ("bst", "Europe/London"),
        ("IST", "Asia/Kolkata"), ("utc", "Etc/UTC"), ("eastern timezone", "America/New_York"),
        ("the central time zone", "America/Chicago"), ("Pacific Time", "America/Los_Angeles"),
        ("mountain standard time", "America/Denver"), ("the eastern standard timezone", "America/New_York"),
        ("the hst timezone", "Pacific/Honolulu"), ("anchorage timezone", "America/Anchorage"),
        ("the peruvian time zone", "America/Lima"), ("central european time", "Europe/Berlin"),
        ("the pacific coast", "America/Los_Angeles"),
        # Countries spanning several zones: the capital's.
        ("United States", "America/New_York"), ("the usa", "America/New_York"), ("USA", "America/New_York"),
        ("Russia", "Europe/Moscow"), ("Canada", "America/Toronto"), ("Australia", "Australia/Sydney"),
        ("Netherlands", "Europe/Amsterdam"),
    ],
)
def test_place_resolution(place, zone):
    assert resolve_zone(place) == zone


def test_place_zones_find_the_new_place_forms():
    from lazarus_cot_router.experts.places import place_zones, trim_place

    assert {"las vegas, nv", "las vegas"} <= set(place_zones("what time is it in las vegas, nv"))
    assert "the central timezone" in place_zones("i need the current time in the central timezone")
    assert "pst" in place_zones("what time is it in pst") and "florida" in place_zones("time in florida?")
    assert "the usa" in place_zones("What time is it in the USA?".lower())
    # A sentence is no town: no span reaches back past "in" ("is it in houston, tx").
    assert not any(" in " in span for span in place_zones("what time is it in houston, tx"))
    assert place_zones("what is the time right now") == {}
    assert trim_place("the hawaii time zone") == "hawaii"
    assert trim_place("EST time") == "EST"
    assert trim_place("the eastern timezone") == "eastern timezone"
    assert trim_place("the usa") == "usa"
    assert trim_place("sydney, australia") == "sydney, australia"


def test_resolving_stays_fast():
    places = ["Tokyo", "las vegas, nv", "the central time zone", "Qwertyville", "pacific standard time",
              "what time is it in houston, tx", "the usa", "EST"] * 250
    started = time.perf_counter()
    for place in places:
        try:
            resolve_zone(place)
        except UnknownZoneError:
            pass
    assert (time.perf_counter() - started) / len(places) < 1e-4


def test_percent_operands(experts):
    multiply = experts["multiply"]
    assert multiply.host_action("15% * 80") == HostAction("math", "evaluate", {"expression": "0.15 * 80"})
    assert multiply.host_action("25% * 6999").parameters["expression"] == "0.25 * 6999"
    assert experts["divide"].host_action("5 / 12.5%").parameters["expression"] == "5 / 0.125"
    assert multiply.canonical_spec("015%*80.0") == "15% * 80"
    assert multiply.canonical_spec("15% * 80") != multiply.canonical_spec("0.15 * 80")
    # The decoder's grammar takes a percent sign where the query writes a percentage, and needs it.
    import regex

    pattern = regex.compile(multiply.spec_vocabulary("what is 25 percent of 6999").pattern)
    assert pattern.fullmatch("25% * 6999") and not pattern.fullmatch("25 * 6999")
    assert not pattern.fullmatch("25% * 6999%")
    assert not regex.fullmatch(multiply.spec_vocabulary("what is 25 times 6999").pattern, "25% * 6999")


def test_schedule_minutes(experts):
    schedule = experts["schedule"]
    assert schedule.canonical_spec("lunch:30min,gym:1hr | sequential") == "lunch:0.5hr,gym:1hr | sequential"
    assert schedule.canonical_spec("lunch:20min | sequential") == "lunch:20min | sequential"
    assert schedule.canonical_spec("a:0.05hr | sequential") == "a:0.05hr | sequential"
    assert schedule.answer("lunch:30min | start:9") == schedule.answer("lunch:0.5hr | start:9")
    import regex

    from lazarus_cot_router.experts.schedule import spec_pattern

    assert regex.fullmatch(spec_pattern(), "lunch:30min,gym:1hr | sequential")
    assert not regex.fullmatch(spec_pattern(durations={"hr": ("30",)}), "lunch:30min | sequential")
    assert regex.fullmatch(spec_pattern(durations={"hr": ("1",), "min": ("30",)}), "lunch:30min,gym:1hr | sequential")
    assert not regex.fullmatch(spec_pattern(), "min:30min | sequential")  # "min" names no task
    vocabulary = schedule.spec_vocabulary("Plan lunch for 30 minutes and gym for 1 hour, back to back")
    assert "min" in vocabulary.keywords and "minutes" in vocabulary.reserved
    assert regex.fullmatch(vocabulary.pattern, "lunch:30min,gym:1hr | sequential")


def test_time_answer_and_canonical_are_the_zone(experts):
    time_expert = experts["time"]
    assert time_expert.answer("London") == "Europe/London"
    assert time_expert.canonical_spec("London") == time_expert.canonical_spec("Europe/London")
    assert time_expert.canonical_spec("Qwertyville") == "Qwertyville"


def test_canonical_specs(experts):
    assert experts["multiply"].canonical_spec("256*4.0") == "256 * 4"
    assert experts["word_problem"].canonical_spec("Eggs : 16|-3   -4*2") == "eggs:16 | -3 -4 *2"
    assert experts["word_problem"].canonical_spec("4.0 | /( 2 + 1.50 )") == "4 | /(2 +1.5)"
    assert experts["schedule"].canonical_spec("A:2.0hr,B:0.50hr|start:9:00,no_overlap") == (
        "A:2hr,B:0.5hr | no_overlap,start:9"
    )
    assert experts["add"].canonical_spec("3 * 4") == "3 * 4"


def test_host_actions(experts):
    assert experts["multiply"].host_action("256 * 4") == HostAction("math", "evaluate", {"expression": "256 * 4"})
    assert experts["divide"].host_action("72/9") == HostAction("math", "evaluate", {"expression": "72 / 9"})
    assert experts["time"].host_action("Tokyo") == HostAction("time", "get_time", {"timezone": "Asia/Tokyo"})
    assert experts["chat"].host_action("") == HostAction("none", "passthrough", {})
    assert experts["word_problem"].host_action("eggs:16 | -3 -4 *2") == HostAction(
        "word_problem", "execute", {"spec": "eggs:16 | -3 -4 *2"}
    )
    assert experts["schedule"].host_action("Alice:2hr,Bob:1hr | no_overlap") == HostAction(
        "schedule", "execute", {"spec": "Alice:2hr,Bob:1hr | no_overlap"}
    )
    with pytest.raises(ExpertError):
        experts["add"].host_action("3 * 4")


def test_expert_metadata(experts):
    with_example = {name for name, e in experts.items() if e.system_prompt_example}
    assert with_example == {"multiply", "time", "chat"}
    assert experts["multiply"].system_prompt_example == ("256 * 4", "256 * 4")
    assert experts["time"].system_prompt_example == ("Time in Tokyo", "Tokyo")
    assert experts["chat"].system_prompt_example == ("Hello", "")
    for expert in experts.values():
        assert expert.description and "\n" not in expert.description
        assert len(expert.calibration_prompts) >= 10
        shots = expert.few_shot_examples()
        assert len(shots) == 3 and shots == expert.few_shot_examples()
        for shot in shots:
            assert expert.answer(shot.spec) == shot.answer


@given(a=st.integers(-10**7, 10**7), b=st.integers(-10**7, 10**7))
def test_integer_arithmetic_is_exact(experts, a, b):
    assert experts["multiply"].execute(f"{a} * {b}") == str(a * b)
    assert experts["add"].execute(f"{a} + {b}") == str(a + b)
    assert experts["subtract"].execute(f"{a} - {b}") == str(a - b)
    if b and a % b == 0:
        assert experts["divide"].execute(f"{a} / {b}") == str(a // b)


FUZZ = settings(max_examples=150, deadline=timedelta(milliseconds=250),
                suppress_health_check=[HealthCheck.function_scoped_fixture])
spec_text = st.one_of(
    st.text(max_size=600),
    st.text(alphabet="0123456789.-+*/ |:,hrstartno_overlapsequential()eg", max_size=120),
)


@pytest.mark.parametrize("name", DEFAULT_EXPERT_NAMES)
@FUZZ
@given(spec=spec_text)
def test_fuzz_only_expert_errors(experts, name, spec):
    expert = experts[name]
    for call in (expert.execute, expert.answer, expert.check_spec, expert.host_action):
        try:
            call(spec)
        except ExpertError:
            pass
    assert isinstance(expert.canonical_spec(spec), str)


def test_stated_numbers_split_durations_from_the_rest():
    from lazarus_cot_router.experts.schedule import stated_numbers

    durations, others = stated_numbers("Keep it under 10 words: Uma (1.25 h), two hours of swim, lunch (30 min), from 8:30")
    assert durations == {"hr": ("1.25", "2"), "min": ("30",)}
    assert others == ("10", "8", "30")
    assert stated_numbers("Plan gym (1h), starting at one") == ({"hr": ("1",), "min": ()}, ("1",))


def test_a_request_that_states_no_duration_is_no_schedule(experts):
    assert experts["schedule"].spec_vocabulary("set an alarm for 05:00 and one for 16:00").mode == "never"
    assert experts["schedule"].spec_vocabulary("Plan gym for 2 hours").mode == "copy"


# --- word_problem grammar: parentheses, optional entity, the decoder's pattern ---

WORD_PROBLEM_VALID = [
    "eggs:16 | -3 -4 *2", "4 | -3", "4 | /(2 +3)", "1 | -(2 *(3 +4))", "ice cream:2 | *3",
    "x1:2 | +1", "3 | /(5)", "2 | *-3 - -4", "0.5 | +(1 /6) +0.25", "dollars:50|-12+8",
    "1 | " + "+(1 " * 8 + ")" * 8,
]
WORD_PROBLEM_INVALID = [
    "", "4", "4 |", "4 | -", "4 | /)", "4 | /(2 +", "4 | (2 +3)", "(4) | -3", "4 | /(2 3)", "4 | /()",
    "4 | -3 )", "eggs 16 | -3", ":4 | -3", "4 | -3 %2", "4 | -x", "1 | " + "+(1 " * 9 + ")" * 9,
]


@pytest.mark.parametrize("spec", WORD_PROBLEM_VALID)
def test_word_problem_pattern_takes_valid_specs(experts, spec):
    experts["word_problem"].execute(spec)
    assert regex.fullmatch(SPEC_PATTERN, spec.strip())
    for end in range(len(spec)):  # every prefix may still become a spec
        assert regex.fullmatch(SPEC_PATTERN, spec[:end], partial=True), spec[:end]


@pytest.mark.parametrize("spec", WORD_PROBLEM_INVALID)
def test_word_problem_pattern_rejects_invalid_specs(experts, spec):
    with pytest.raises(ExpertError):
        experts["word_problem"].execute(spec)
    assert not regex.fullmatch(SPEC_PATTERN, spec)


@pytest.mark.parametrize("prefix, ok", [
    ("4 | /(2 +", True), ("4 | /(", True), ("4 | /(2 +(3 *(", True), ("eggs:16 | -3 -", True), ("eg", True),
    ("4 | /)", False), ("4 | (", False), ("4 | /(2 +3))", False), ("4 | /(2 3", False), ("4 | -3 %", False),
    ("1 | " + "+(1 " * 9, False),
])
def test_word_problem_pattern_partial_prefixes(prefix, ok):
    assert bool(regex.fullmatch(SPEC_PATTERN, prefix, partial=True)) == ok


@FUZZ
@given(spec=st.text(alphabet="0123456789.-+*/ |:()eg", max_size=40))
def test_word_problem_pattern_agrees_with_parser(spec):
    try:
        parse_spec(spec)
        parsed = True
    except (SpecSyntaxError, LimitError):
        parsed = False
    assert bool(regex.fullmatch(SPEC_PATTERN, spec.strip())) == parsed, spec


def _operations(expression) -> list[str]:
    if isinstance(expression, str):
        return []
    return _operations(expression.left) + [expression.op] + _operations(expression.right)


@FUZZ
@given(spec=st.text(alphabet="0123456789.-+*/ |:()eg", max_size=40))
def test_operator_offsets_point_at_each_step_operator(spec):
    try:
        expression = parse_spec(spec).expression
    except (SpecSyntaxError, LimitError):
        return
    offsets = operator_offsets(spec)
    assert sorted(spec[i] for i in offsets) == sorted(_operations(expression)), spec
    assert offsets == sorted(set(offsets)) and all(i > spec.index("|") for i in offsets)


def test_operator_offsets_leave_a_number_sign_alone():
    spec = " eggs: 16 | -3 *(2 - -4)"
    assert [spec[i] for i in operator_offsets(spec)] == ["-", "*", "-"]
    assert operator_offsets(spec) == [12, 15, 19]


def _expressions():
    numbers = st.integers(-50, 200).map(str) | st.sampled_from(["0.5", "2.25", "12", "7"])
    return st.recursive(numbers, lambda inner: st.builds(Operation, st.sampled_from("+-*/"), inner, inner),
                        max_leaves=12)


@FUZZ
@given(expression=_expressions())
def test_write_spec_keeps_the_value(experts, expression):
    if not isinstance(expression, Operation):
        return
    try:
        want = format_number(evaluate(expression))
    except ExpertError:
        return
    spec = write_spec(expression, "things")
    assert parse_spec(spec).entity == "things"
    assert numbers_of(parse_spec(spec).expression) == numbers_of(expression)  # the numbers keep their order
    try:
        got = experts["word_problem"].execute(spec)
    except LimitError:
        return  # a*(b/c) written a*b/c may pass the magnitude bound on the way; zero divisors fail alike
    assert got == want, spec
    assert experts["word_problem"].canonical_spec(spec) == spec  # already the shortest form


@pytest.mark.parametrize("spec, shortest", [
    ("a:1 | +(2 +3)", "a:1 | +2 +3"),
    ("1 | -(2 +3 -4)", "1 | -2 -3 +4"),
    ("1 | -(2 *3)", "1 | -(2 *3)"),
    ("1 | *(2 /3)", "1 | *2 /3"),
    ("1 | /(2 *3)", "1 | /2 /3"),
    ("1 | /(2 /3)", "1 | /(2 /3)"),  # "/2 *3" would not fail on a zero divisor as this does
    ("1 | +(2 *(3 +4))", "1 | +(2 *(3 +4))"),
    ("1 | -(2 +(3 *4))", "1 | -2 -(3 *4)"),
])
def test_write_spec_shortest_forms(experts, spec, shortest):
    entity, expression = parse_spec(spec)
    assert write_spec(expression, entity) == shortest
    assert experts["word_problem"].execute(shortest) == experts["word_problem"].execute(spec)


def test_word_problem_host_action_keeps_parentheses(experts):
    assert experts["word_problem"].host_action("4 | /( 2 +3)") == HostAction(
        "word_problem", "execute", {"spec": "4 | /( 2 +3)"})


def test_the_time_expert_builds_its_place_index_before_the_first_call(monkeypatch):
    from lazarus_cot_router.experts import places, time as time_module

    built = []
    monkeypatch.setattr(time_module, "place_index", lambda: built.append(1))
    time_module.TimeExpert().prepare()
    assert built == [1]
    assert places.place_index() is places.place_index()  # built once, then cached
