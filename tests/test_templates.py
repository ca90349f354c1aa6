import random
import re
from datetime import datetime, timezone

import pytest

from lazarus_cot_router.experts.base import SPLITS, Example
from lazarus_cot_router.experts.builtin import DEFAULT_EXPERT_NAMES, default_experts
from lazarus_cot_router.experts.word_problem import MONEY_UNITS
from lazarus_cot_router.grammar import parse_line, render_line
from training.generators import lazarus_calibration, pool_ids, sample_example, schedule, word_problem
from training.generators.arithmetic import _GENERIC
from training.generators.time import TEMPLATES as TIME_TEMPLATES
from training.generators.time import STATES, ZONE_NAMES, place_pools

EXPERTS = {e.name: e for e in default_experts(clock=lambda: datetime(2025, 1, 15, 12, tzinfo=timezone.utc))}
SAMPLES = 150


def draw(name: str, split: str, seed: int = 0, n: int = SAMPLES) -> list[Example]:
    rng = random.Random(seed)
    return [sample_example(EXPERTS[name], rng, split) for _ in range(n)]


def template_id(example: Example) -> str:
    return next(t for t in example.tags if t.startswith("template:")).removeprefix("template:")


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", DEFAULT_EXPERT_NAMES)
def test_gold_specs_execute_to_the_answer(name, split):
    expert = EXPERTS[name]
    for example in draw(name, split):
        assert example.expert == name
        assert example.query and "\n" not in example.query and example.query == example.query.strip()
        assert "->" not in example.spec and "\n" not in example.spec
        assert expert.answer(example.spec) == example.answer
        expert.execute(example.spec)
        line = parse_line(render_line(name, example.spec))
        assert line and line.expert == name and line.spec == example.spec


@pytest.mark.parametrize("name", DEFAULT_EXPERT_NAMES)
def test_sampling_is_deterministic(name):
    assert draw(name, "train", seed=7, n=40) == draw(name, "train", seed=7, n=40)
    assert draw(name, "heldout", seed=7, n=40) == draw(name, "heldout", seed=7, n=40)
    assert draw(name, "train", seed=7, n=40) != draw(name, "train", seed=8, n=40)


@pytest.mark.parametrize("name", DEFAULT_EXPERT_NAMES)
def test_heldout_pools_are_disjoint_from_train(name):
    expert = EXPERTS[name]
    train, heldout, calib = pool_ids(expert, "train"), pool_ids(expert, "heldout"), pool_ids(expert, "calib")
    assert "templates" in train and train.keys() == heldout.keys()
    assert calib == train
    for kind in train:
        assert train[kind] and heldout[kind], kind
        assert not train[kind] & heldout[kind], kind


@pytest.mark.parametrize("name", DEFAULT_EXPERT_NAMES)
def test_examples_use_their_split_templates(name):
    expert = EXPERTS[name]
    for split in ("train", "heldout"):
        ids = pool_ids(expert, split)["templates"]
        used = {template_id(e) for e in draw(name, split)}
        assert used <= ids
        assert len(used) >= min(len(ids), 4)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError):
        sample_example(EXPERTS["time"], random.Random(0), "test")


def test_arithmetic_numbers_are_copied_from_the_query():
    for name in ("multiply", "add", "subtract", "divide"):
        for example in draw(name, "train") + draw(name, "heldout"):
            for number in example.spec.split(f" {EXPERTS[name].symbol} "):
                # A percentage is the query's number with ``%`` ("25 percent of 6999": ``25% * 6999``).
                assert number.removesuffix("%") in example.query, example


def test_arithmetic_heldout_number_ranges_differ():
    train = {tag for e in draw("add", "train") for tag in e.tags if tag.startswith("numbers:")}
    heldout = {tag for e in draw("add", "heldout") for tag in e.tags if tag.startswith("numbers:")}
    assert train and heldout and not train & heldout


def test_time_specs_are_place_names_from_the_query():
    cities, countries = place_pools()
    assert len(cities.train) >= 500 and len(cities.heldout) >= 100
    assert not set(cities.train) & set(cities.heldout)
    for split in ("train", "heldout"):
        for example in draw("time", split):
            assert example.spec in example.query
            if "place:state" in example.tags:
                assert example.spec in STATES.items(split)
            elif "place:zone" in example.tags:  # "the EST time zone": ``EST``
                assert any(name.casefold() in example.spec.casefold().split() for name in ZONE_NAMES.items(split))
            else:
                assert example.spec in cities.items(split) + countries.items(split)


def test_word_problem_heldout_entities_and_shared_steps():
    heldout_entities = {e.id for e in word_problem.ENTITIES.heldout}
    steps = {"train": set(), "heldout": set()}
    for split in steps:
        for example in draw("word_problem", split, n=400):
            assert split == "train" or example.spec.split(":")[0] in heldout_entities
            steps[split] |= {t.removeprefix("step:") for t in example.tags if t.startswith("step:")}
    # Verbs are shared vocabulary: both splits use the train-era and the once-held-out verbs.
    assert {"eat", "buy", "sell", "trade", "triple", "apiece"} <= steps["train"] & steps["heldout"]


def test_word_problem_spec_numbers_appear_in_query():
    for example in draw("word_problem", "train") + draw("word_problem", "heldout"):
        numbers = re.findall(r"[0-9]+", example.spec)
        implied = {"2", "3", "4"}  # doubles, triples, quadruples
        for number in numbers:
            assert number in example.query or number in implied, example


def _digits(number) -> int:
    return len(str(number).lstrip("-").split(".")[0])


def _word_problem_numbers(split: str, n: int) -> dict[str, list[int]]:
    """The numbers of ``n`` problems, by kind: start, money, amount, factor, price, divisor."""
    steps = {s.id: s for s in word_problem.STEPS}
    money = {e.id for e in word_problem.ENTITIES.items(split) if e.money_format}
    found: dict[str, list[int]] = {kind: [] for kind in ("start", "money", "amount", "factor", "price", "divisor")}
    for example in draw("word_problem", split, n=n):
        head, ops = example.spec.split(" | ")
        entity, start = head.split(":")
        found["money" if entity in money else "start"].append(int(start))
        ids = [t.removeprefix("step:") for t in example.tags if t.startswith("step:")]
        assert len(ids) == len(ops.split())
        for step_id, op in zip(ids, ops.split()):
            step, number = steps[step_id], int(op[1:])
            kind = {"sell": "price", "split": "divisor"}.get(step.final or "", "factor" if step.factor else "amount")
            found[kind].append(number)
    return found


def test_word_problem_train_numbers_have_heldout_lengths_but_never_heldout_values():
    train, heldout = _word_problem_numbers("train", 2000), _word_problem_numbers("heldout", 500)
    bands = {kind: b[0] for kind, b in word_problem._RANGES["heldout"].items() if kind != "steps"}
    assert bands == {"start": (61, 400), "money": (101, 500), "amount": (10, 40), "price": (6, 15),
                     "divisor": (7, 12)}
    for kind, (low, high) in bands.items():
        assert train[kind] and heldout[kind], kind
        assert not [v for v in train[kind] if low <= v <= high], kind
        assert all(low <= v <= high for v in heldout[kind]), kind
        assert {_digits(v) for v in heldout[kind]} <= {_digits(v) for v in train[kind]}, kind
    assert {_digits(v) for v in train["start"] + train["amount"]} == {1, 2, 3}
    assert {_digits(v) for v in train["amount"]} == {1, 2}
    assert set(train["factor"]) == set(heldout["factor"]) == {2, 3, 4}
    final = {s.id for s in word_problem.STEPS if s.final}
    ordinary = [sum(t.startswith("step:") and t[5:] not in final for t in e.tags)
                for e in draw("word_problem", "train")]
    assert max(ordinary) == 4  # as many ordinary steps as held-out allows


def test_arithmetic_train_numbers_never_take_a_heldout_value():
    def heldout_value(number: str) -> bool:
        whole, _, decimals = number.removesuffix("%").lstrip("-").partition(".")
        if not decimals:
            return not number.startswith("-") and 1000 <= int(whole) <= 99999
        return len(decimals) == 2 and int(whole) <= 999

    lengths = set()
    for name in ("multiply", "add", "subtract", "divide"):
        for example in draw(name, "train", n=600):
            for number in example.spec.split(f" {EXPERTS[name].symbol} "):
                assert not heldout_value(number), example
                lengths.add((_digits(number), len(number.partition(".")[2])))
        for example in draw(name, "heldout", n=200):
            if "exact" not in " ".join(example.tags):
                assert all(heldout_value(n) for n in example.spec.split(f" {EXPERTS[name].symbol} ")), example
    assert {1, 2, 3, 6} <= {digits for digits, _ in lengths} and {0, 1, 2} <= {d for _, d in lengths}


def test_schedule_train_durations_cover_quarter_hours_but_no_heldout_only_value():
    heldout_only = set(schedule._DURATIONS["heldout"]) - {"1", "1.5", "2"}
    assert heldout_only == {"0.25", "0.75", "1.25", "3.5", "4"}
    assert not heldout_only & set(schedule._DURATIONS["train"])
    used = {task.split(":")[1].removesuffix("hr") for e in draw("schedule", "train", n=500)
            for task in e.spec.split(" | ")[0].split(",")}
    assert not used & heldout_only and any(len(d.partition(".")[2]) == 2 for d in used)


def test_schedule_spec_names_appear_in_query():
    for example in draw("schedule", "train") + draw("schedule", "heldout"):
        tasks = example.spec.split(" | ")[0].split(",")
        for task in tasks:
            assert task.split(":")[0] in example.query


def test_chat_has_hundreds_of_distinct_queries_and_hard_negatives():
    train = {e.query for e in draw("chat", "train", n=2000)}
    heldout = {e.query for e in draw("chat", "heldout", n=2000)}
    assert len(train) >= 500 and len(heldout) >= 250
    assert not train & heldout
    assert sum(bool(re.search(r"[0-9]", q)) for q in train) >= 30
    assert any("schedule" in q for q in train) and any("time" in q.lower() for q in train)


def test_public_acceptance_phrasings_are_covered_by_train_pools():
    assert "Schedule {items}, {constraints}" in {t.text for t in schedule.TEMPLATES.train}
    assert "{name} ({d}hr)" in schedule.ITEM_STYLES.train
    assert {"Alice", "Bob"} <= set(schedule.NAMES.train)
    assert "no overlap" in {p[2] for p in schedule.PHRASES}
    assert "{Name} has {start}, {terse}. {question}" in {t.text for t in word_problem.TEMPLATES.train}
    assert "Janet:she" in word_problem.NAMES.train
    assert {"eat", "bake", "sell"} <= {s.id for s in word_problem.STEPS}
    assert {"Tokyo", "London", "New York"} <= set(place_pools()[0].train)
    time_train = {t.text for t in TIME_TEMPLATES.train}
    assert {"Current time in {place}", "Time in {place}", "What time is it in {place}?"} <= time_train
    assert {"{a} {sym} {b}", "What is {a} {sym} {b}?", "Calculate {a} {sym} {b}"} <= {t.text for t in _GENERIC.train}



def test_runtime_money_units_are_the_generators_money_entities():
    entities = word_problem.ENTITIES.train + word_problem.ENTITIES.heldout
    assert MONEY_UNITS == {e.id: e.money_format.replace("{n}", "") for e in entities if e.money_format}


def test_stored_lazarus_calibration_is_what_the_generators_draw():
    drawn = lazarus_calibration.dump_calibration(lazarus_calibration.draw_calibration())
    stored = lazarus_calibration.calibration_path().read_text(encoding="utf-8")
    assert stored == drawn, "stale: run python -m training.generators.lazarus_calibration"
