import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
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
        ("schedule", "Alice:2hr,Bob:1hr | no_overlap", "Alice:9-11,Bob:11-12"),
        ("schedule", "gym:1hr,lunch:1.5hr | sequential", "gym:9-10,lunch:10-11:30"),
        ("schedule", "a:0.25hr,b:1.75hr | no_overlap,start:8:05", "a:8:05-8:20,b:8:20-10:05"),
        ("schedule", "late:2hr | start:22", "late:22-24"),
        ("schedule", "team meeting:1hr | start:13", "team meeting:13-14"),
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
        ("word_problem", "16 | -3", SpecSyntaxError),
        ("word_problem", "eggs:16 | -3 %2", SpecSyntaxError),
        ("word_problem", "x:1 | " + " +1" * 33, LimitError),
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
        ("time", "United States", UnknownZoneError),
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
    ],
)
def test_place_resolution(place, zone):
    assert resolve_zone(place) == zone


def test_time_answer_and_canonical_are_the_zone(experts):
    time_expert = experts["time"]
    assert time_expert.answer("London") == "Europe/London"
    assert time_expert.canonical_spec("London") == time_expert.canonical_spec("Europe/London")
    assert time_expert.canonical_spec("Qwertyville") == "Qwertyville"


def test_canonical_specs(experts):
    assert experts["multiply"].canonical_spec("256*4.0") == "256 * 4"
    assert experts["word_problem"].canonical_spec("Eggs : 16|-3   -4*2") == "eggs:16 | -3 -4 *2"
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

    durations, others = stated_numbers("Keep it under 10 words: Uma (1.25 h), two hours of swim and 1 hour of Quinn, from 8:30")
    assert durations == ("1.25", "2", "1")
    assert others == ("8", "30")  # "10 words" sizes the answer
    # A typo'd size word still sizes the answer; a word one letter from a short size word does not.
    assert stated_numbers("Plan 2 hours of gym, in under 20 wrds")[1] == ()
    assert stated_numbers("Plan 2 hours of gym from 9, in 3 sentnces")[1] == ("9",)
    assert stated_numbers("Buy 20 wine glasses")[1] == ("20",)
    assert stated_numbers("Plan gym (1h) and yoga (2h), one after the other")[1] == ()
    assert stated_numbers("Plan gym (1h), starting at one")[1] == ("1",)
