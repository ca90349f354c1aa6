import random
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.plugins import get_experts
from training import data
from training.data import default_mix, generate_split, split_pools_overlap
from training.generators import variations
from training.generators.variations import INSTRUCTIONS, POLITENESS, has_instruction, vary_example
from training.query_files import QueryFileError, export_yaml, load_queries, load_robustness, parse_queries
from training.generators import pool_ids, sample_example

N = 300


@pytest.fixture(scope="module")
def experts():
    return get_experts()


@pytest.fixture(scope="module")
def splits(experts):
    return {split: generate_split(split, N, seed=0) for split in ("train", "calib", "heldout")}


def numbers_in(text):
    return Counter(re.findall(r"-?[0-9]+(?:\.[0-9]+)?", text))


def words_in(text):
    return Counter(re.findall(r"[A-Za-z]+", text))


def test_deterministic_for_a_seed(splits):
    assert generate_split("train", N, seed=0) == splits["train"]
    assert generate_split("train", N, seed=1) != splits["train"]
    assert generate_split("calib", N, seed=0) != splits["train"]


def test_sizes_and_distinct_queries(splits):
    for examples in splits.values():
        assert len(examples) == N
        assert len({e.query for e in examples}) == N


def test_every_gold_spec_executes_to_its_answer(splits, experts):
    for examples in splits.values():
        for example in examples:
            assert experts[example.expert].answer(example.spec) == example.answer, example


def test_every_expert_drawn_with_math_sharing_one_share(splits, experts):
    counts = Counter(e.expert for e in splits["train"])
    assert set(counts) == set(experts)
    mix = default_mix(list(experts.values()))
    total = sum(mix.values())
    for name, weight in mix.items():
        assert abs(counts[name] - N * weight / total) <= 1


def test_training_mix_scales_each_expert_by_its_train_weight(experts):
    plain, weighted = default_mix(list(experts.values())), data.training_mix(list(experts.values()))
    assert weighted["word_problem"] == pytest.approx(2.4 * plain["word_problem"])
    assert weighted["schedule"] == pytest.approx(1.6 * plain["schedule"])
    assert weighted["time"] == pytest.approx(1.3 * plain["time"])
    chosen = data.training_mix(list(experts.values()), {"word_problem": 1.6})
    assert chosen["word_problem"] == pytest.approx(1.6 * plain["word_problem"]) and chosen["time"] == weighted["time"]
    with pytest.raises(ValueError, match="wordproblem"):
        data.training_mix(list(experts.values()), {"wordproblem": 2})
    for name in ("add", "subtract", "multiply", "divide"):
        assert weighted[name] == pytest.approx(3.0 * plain[name])
    assert weighted["chat"] == plain["chat"]
    counts = Counter(e.expert for e in data.generate_split("train", 300, seed=1, mix=weighted))
    assert counts["word_problem"] > 1.4 * counts["chat"]
    assert sum(counts[n] for n in ("add", "subtract", "multiply", "divide")) > 2.5 * counts["chat"]


def test_splits_share_no_pool(experts):
    overlaps = split_pools_overlap()
    assert {"variation:instructions", "variation:politeness"} <= set(overlaps)
    for expert in experts.values():
        assert {f"{expert.name}:{kind}" for kind in pool_ids(expert, "train")} <= set(overlaps)
    assert {kind: ids for kind, ids in overlaps.items() if ids} == {}


def test_no_heldout_query_in_train():
    train = {e.query.lower() for e in generate_split("train", 2000, seed=0)}
    heldout = [e.query for e in generate_split("heldout", 500, seed=0)]
    assert [q for q in heldout if q.lower() in train] == []


def test_instruction_tags(splits):
    pools = {split: {t.id: t.text for t in INSTRUCTIONS.items(split)} for split in ("train", "heldout")}
    for split, examples in splits.items():
        tagged = [e for e in examples if has_instruction(e)]
        assert 0.35 <= len(tagged) / len(examples) <= 0.55
        pool = pools["heldout" if split == "heldout" else "train"]
        for example in tagged:
            (tag,) = [t for t in example.tags if t.startswith("instruction:")]
            assert tag.removeprefix("instruction:") in pool
            if "typo" not in example.tags:
                assert pool[tag.removeprefix("instruction:")].lower() in example.query.lower()
    kinds = Counter(tag.split(":")[0] for e in splits["train"] for tag in e.tags)
    assert kinds["polite"] and kinds["typo"] and kinds["case"] and kinds["instruction-at"]


def test_variation_pools_are_disjoint_in_text():
    for pool in (INSTRUCTIONS, POLITENESS):
        assert not {t.text.lower() for t in pool.train} & {t.text.lower() for t in pool.heldout}


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), split=st.sampled_from(["train", "heldout"]))
def test_variation_keeps_numbers_and_copied_words(seed, split):
    experts = list(get_experts().values())
    rng = random.Random(seed)
    base = sample_example(rng.choice(experts), rng, split)
    varied = vary_example(base, rng, split)
    assert (varied.expert, varied.spec, varied.answer) == (base.expert, base.spec, base.answer)
    assert varied.tags[: len(base.tags)] == base.tags
    got = numbers_in(varied.query)
    assert all(got[number] >= count for number, count in numbers_in(base.query).items())
    for word in set(re.findall(r"[A-Za-z]+", base.spec)):
        assert words_in(base.query)[word] <= words_in(varied.query)[word], (base.query, varied.query)


def test_typo_and_case_leave_protected_words():
    rng = random.Random(0)
    query = "Janet has sixteen eggs and sells them for twelve dollars"
    for _ in range(50):
        typo = variations.add_typo(query, {"eggs", "dollars"}, rng)
        assert typo != query
        assert {"sixteen", "twelve", "eggs", "dollars", "Janet"} <= set(typo.split())
    assert variations.add_typo("Tokyo 12", {"Tokyo"}, rng) == "Tokyo 12"
    assert variations.change_case("Time in New York, be brief", "upper", {"New", "York"}) == "TIME IN New York, BE BRIEF"
    assert variations.change_case("what's 2hr in Paris", "title", {"Paris"}) == "What's 2hr In Paris"


def test_mix_and_expert_selection(experts):
    names = list(experts)
    only = generate_split("train", 40, experts=names[:2], mix={names[1]: 0})
    assert {e.expert for e in only} == {names[0]}
    with pytest.raises(ValueError, match="unknown expert 'nope'"):
        generate_split("train", 5, mix={"nope": 1})
    with pytest.raises(ValueError, match="unknown split"):
        generate_split("test", 5)


def test_pool_exhaustion_is_an_error(monkeypatch):
    for rate in ("INSTRUCTION_RATE", "POLITE_RATE", "TYPO_RATE"):
        monkeypatch.setattr(variations, rate, 0.0)
    monkeypatch.setattr(variations, "CASE_RATES", ())
    class Tiny:
        name = "tiny"

        def sample_example(self, rng, split):
            return Example("hello", "tiny", "", None)

        def host_action(self, spec):
            raise NotImplementedError

    with pytest.raises(ValueError, match="could draw only"):
        generate_split("train", 2, experts=[Tiny()])


def test_yaml_round_trip(tmp_path, splits):
    examples = splits["heldout"] + [Example("two\nlines: {x}", "chat", "", None, ("t",))]
    path = tmp_path / "heldout.yaml"
    path.write_text("old")
    export_yaml(examples, path)
    assert load_queries(path) == examples
    assert [p.name for p in tmp_path.iterdir()] == ["heldout.yaml"]


def test_yaml_writes_integral_answers_as_numbers(tmp_path):
    path = tmp_path / "q.yaml"
    export_yaml([Example("256 * 4", "multiply", "256 * 4", "1024"), Example("3.5+2.25", "add", "3.5 + 2.25", "5.75"),
                 Example("007", "chat", "", "007")], path)
    text = path.read_text()
    assert "answer: 1024" in text and "answer: '5.75'" in text and "answer: '007'" in text
    assert [e.answer for e in load_queries(path)] == ["1024", "5.75", "007"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("- {query: a, expert: chat, spec: '', answer: null}\n- [1, 2]\n", r"entry 1: expected a mapping"),
        ("- {query: a, expert: chat, spec: ''}\n", r"entry 0: missing field 'answer'"),
        ("- {query: a, expert: chat, spec: '', answer: null, gold: 1}\n", r"entry 0: unknown field 'gold'"),
        ("- {query: '', expert: chat, spec: '', answer: null}\n", r"entry 0: field 'query'"),
        ("- {query: a, expert: Chat, spec: '', answer: null}\n", r"entry 0: field 'expert'"),
        ("- {query: a, expert: add, spec: 3, answer: 3}\n", r"entry 0: field 'spec'"),
        ("- {query: a, expert: add, spec: '1 + 2 -> 3', answer: 3}\n", r"entry 0: field 'spec'"),
        ("- {query: a, expert: add, spec: '1 + 2', answer: true}\n", r"entry 0: field 'answer'"),
        ("- {query: a, expert: add, spec: '1 + 2', answer: [3]}\n", r"entry 0: field 'answer'"),
        ("- {query: a, expert: add, spec: '1 + 2', answer: 3, tags: x}\n", r"entry 0: field 'tags'"),
        ("{query: a}\n", r"expected a list of entries, got dict"),
        ("", r"expected a list of entries, got nothing"),
        ("- {query: a, expert: [chat\n", r"malformed YAML at line \d+, column \d+"),
    ],
)
def test_malformed_query_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(QueryFileError, match=message):
        load_queries(path)


def test_float_answers_read_as_result_text():
    (example,) = parse_queries("- {query: q, expert: divide, spec: '1 / 4', answer: 0.25}")
    assert example.answer == "0.25"
    (example,) = parse_queries("- {query: q, expert: divide, spec: '8 / 4', answer: 2.0}")
    assert example.answer == "2"


def test_robustness_cases_ship_with_the_package(experts):
    cases = load_robustness()
    assert len(cases) == 12
    assert cases[0] == Example("256 * 4", "multiply", "256 * 4", "1024")
    assert Counter(c.expert for c in cases)["time"] == 4
    for case in cases:
        assert experts[case.expert].answer(case.spec) == case.answer


def test_cli_writes_a_split(tmp_path, capsys):
    out = tmp_path / "heldout.yaml"
    assert data.main(["--split", "heldout", "-n", "25", "--seed", "2", "--out", str(out)]) == 0
    assert load_queries(out) == generate_split("heldout", 25, seed=2)
    assert "25 heldout examples" in capsys.readouterr().err
    assert data.main(["-n", "5", "--mix", "chat"]) == 2
    assert "NAME=WEIGHT" in capsys.readouterr().err
    assert data.main(["-n", "3", "--split", "calib"]) == 0
    assert len(parse_queries(capsys.readouterr().out)) == 3
