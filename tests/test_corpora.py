"""The vendored public corpora and their word_problem converters (corpora/).

Every MAWPS + ASDiv-A row and every SVAMP problem is converted and executed here:
that is the guarantee the specs are right, and it takes about a second.
"""

import hashlib
import re
from importlib import resources
from pathlib import Path

import pytest

from corpora import mawps, svamp
from corpora.equations import EquationError, parse_infix, parse_prefix, stable_share, unwritten_numbers
from corpora.text import detokenize, join_question, number_form, written_numbers
from lazarus_cot_router.experts.word_problem import Operation, WordProblemExpert, numbers_of, parse_spec, write_spec
from training.evaluate import same_answer

EXPERT = WordProblemExpert()
ROOT = Path(__file__).resolve().parents[1]

VENDORED = {
    "svamp/LICENSE": "07ce3a34de7a865345634f9278bc26ddcacc2d0defd348c28e3f4603448b9ba4",
    "svamp/SVAMP.json": "5be77703a6d891ae476d7c082787ad361392aa02453b132516cdd5f4e7934e3e",
    "svamp/mawps-asdiv-a_train.csv": "c761cdc6390a67a285c6c346a2931f61bc8f47430eceaeb123cc3d0263efa821",
    "clinc150/LICENSE": "e6bc9e9c474700b708f568bac9e5a8a9bcb2b1dad53442f5ba449fcb848b8e76",
    "clinc150/data_full.json": "36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
    "mathematics/LICENSE": "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
    "mathematics/arithmetic.jsonl": "db022ab234a17d432740ccd59c8dc1f8ad037de01ac75e8c3b388e37ad3cc724",
    "gsm8k/LICENSE": "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b",
    "gsm8k/train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
}


@pytest.mark.parametrize("path, sha256", VENDORED.items())
def test_vendored_files_are_the_published_bytes(path, sha256):
    data = resources.files("corpora").joinpath("data", *path.split("/")).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256


def test_corpora_never_read_the_shared_folder():
    for source in (ROOT / "corpora").glob("*.py"):
        assert "shared" not in source.read_text(encoding="utf-8"), source.name


def test_packaging_ships_the_corpora():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"corpora*"' in text
    assert re.search(r'^corpora = \[.*"data/\*/\*".*\]$', text, re.MULTILINE)
    sources = (ROOT / "corpora" / "SOURCES.md").read_text(encoding="utf-8")
    for path in VENDORED:
        assert f"data/{path}" in sources, path


# --- equations -> specs ---

def _plain(token: str) -> str:
    return number_form(token)[1]


@pytest.mark.parametrize("equation, spec", [
    ("* number0 number1", "56 | *9"),
    ("- number0 * number1 number2", "56 | -(9 *3)"),
    ("/ number0 + number1 number2", "56 | /(9 +3)"),
    ("/ + number0 number1 - number2 number1", "56 | +9 /(3 -9)"),
    ("- number0 + number1 number2", "56 | -9 -3"),
    ("+ number0 - number1 number2", "56 | +9 -3"),
    ("- number0 - number1 number2", "56 | -9 +3"),
    ("- number0 * number1 + number2 number1", "56 | -(9 *(3 +9))"),
])
def test_prefix_equations(equation, spec):
    values = {"number0": "56", "number1": "9", "number2": "3"}
    assert write_spec(parse_prefix(equation, values.__getitem__)) == spec


@pytest.mark.parametrize("equation, spec", [
    ("( 76.0 - 25.0 )", "76 | -25"),
    ("( ( 4.0 + 13.0 ) * 15.0 )", "4 | +13 *15"),
    ("( 7.0 / ( 4.0 + 3.0 ) )", "7 | /(4 +3)"),
    ("( 14.0 - ( 4.0 * 3.0 ) )", "14 | -(4 *3)"),
    ("( 6.0 - ( 3.0 + 2.0 ) )", "6 | -3 -2"),
    ("1.0 + 2.0 * 3.0", "1 | +(2 *3)"),  # precedence without parentheses
    ("8.0 - 2.0 - 1.0", "8 | -2 -1"),  # left to right
    ("8.0 / 2.0 / 2.0", "8 | /2 /2"),
])
def test_infix_equations(equation, spec):
    assert write_spec(parse_infix(equation, _plain)) == spec


@pytest.mark.parametrize("equation", ["( 1.0 + 2.0", "1.0 + 2.0 )", "1.0 +", "( )", "1.0 2.0"])
def test_bad_infix_equations(equation):
    with pytest.raises(EquationError):
        parse_infix(equation, _plain)


@pytest.mark.parametrize("equation", ["+ number0", "number0 number1", "* + number0 number1"])
def test_bad_prefix_equations(equation):
    with pytest.raises(EquationError):
        parse_prefix(equation, lambda token: "1")


@pytest.mark.parametrize("token, text, spec_part", [
    ("56.0", "56", "56"), ("0.5", "0.5", "0.5"), ("7", "7", "7"), ("-2.0", "-2", "-2"), ("1.00", "1.00", "1.00"),
    ("0.3333", "0.3333", "0.3333"), ("10.62", "10.62", "10.62"),
    ("0.16666666666666666", "1/6", Operation("/", "1", "6")),
    ("0.08333333333333333", "1/12", Operation("/", "1", "12")),
    ("3.6666666666666665", "3 2/3", Operation("+", "3", Operation("/", "2", "3"))),
])
def test_numbers_are_written_as_a_person_would(token, text, spec_part):
    assert number_form(token) == (text, spec_part)


@pytest.mark.parametrize("raw, clean", [
    ("Bryan 's books , did n't he ?", "Bryan's books, didn't he?"),
    ("Dana earns $ 4 per hour .", "Dana earns $4 per hour."),
    ("a part - time job ( a year = 365 days ) ;", "a part-time job (a year = 365 days);"),
    ("playing ' whack a mole ' and ' skee ball ' .", "playing 'whack a mole' and 'skee ball'."),
    ("Jesse ’ s room", "Jesse’s room"),
    ("interest rate of 5 % .", "interest rate of 5%."),
    ("I ca n't and wo n't", "I can't and won't"),
    ("las vegas ' high roller", "las vegas' high roller"),
    ("the 5 - 3 game", "the 5 - 3 game"),
])
def test_detokenize(raw, clean):
    assert detokenize(raw) == clean


def test_join_question():
    assert join_question("If he had $4 at the start", "How much did it cost?") == (
        "If he had $4 at the start, how much did it cost?")
    assert join_question("Dan had $3.", "How much did it cost?") == "Dan had $3. How much did it cost?"
    assert join_question("If Ron stands at 13 feet", "Dean is how tall?") == "If Ron stands at 13 feet, Dean is how tall?"


def test_written_numbers():
    assert written_numbers("Find the product of -2, -15, 4 and 1/6 at 5-6 pm, $4.50.") == [
        "-2", "-15", "4", "1", "6", "5", "6", "4.50"]


# --- MAWPS + ASDiv-A ---

def test_every_mawps_row_converts_and_executes_to_its_answer():
    conversion = mawps.conversion()
    kept = [e for split in mawps.SPLITS for e in conversion.splits[split]]
    assert kept
    for example in kept:
        assert example.expert == "word_problem"
        assert same_answer(EXPERT.answer(example.spec), example.answer), example
        # Already the shortest form (canonical_spec also normalizes "3.00" to "3").
        assert EXPERT.canonical_spec(example.spec).count("(") == example.spec.count("("), example
        written = set(written_numbers(example.query))
        assert all(n in written for n in numbers_of(parse_spec(example.spec).expression)), example
        assert not re.search(r"number\d", example.query), example.query
        assert example.tags[0] == mawps.SOURCE_TAG and example.tags[1].startswith("id:")


def test_mawps_counts_are_what_the_converter_reports():
    conversion = mawps.conversion()
    counts = conversion.counts()
    assert counts == {
        "rows": 3138, "train": 2605, "dev": 267,
        f"dropped: {mawps.WRONG_ANSWER}": 17, f"dropped: {mawps.CONSTANT}": 72,
        f"dropped: {mawps.IN_SVAMP}": 0, f"dropped: {mawps.DUPLICATE}": 177,
    }
    assert counts["rows"] == len(mawps.rows()) == sum(v for k, v in counts.items() if k != "rows")
    # Recount independently of conversion().
    wrong, constant, seen, duplicate = [], [], set(), []
    for index, row in enumerate(mawps.rows()):
        try:
            example, unwritten = mawps.convert_row(row, index)
        except EquationError:
            wrong.append(index)
            continue
        if unwritten:
            constant.append(index)
        elif example.query in seen:
            duplicate.append(index)
        seen.add(example.query)
    assert tuple(wrong) == conversion.dropped[mawps.WRONG_ANSWER] == tuple(sorted(mawps.ANSWER_ERRORS))
    assert tuple(constant) == conversion.dropped[mawps.CONSTANT]
    assert tuple(duplicate) == conversion.dropped[mawps.DUPLICATE]
    ids = {int(e.tags[1].removeprefix("id:")) for split in mawps.SPLITS for e in conversion.splits[split]}
    assert ids.isdisjoint(wrong + constant + duplicate)
    # Of the two repeated queries with another answer, the right one stays.
    assert {770, 850} <= ids and not {786, 1551} & ids


def test_mawps_constants_not_in_the_query_are_dropped():
    row = mawps.rows()[6]  # "* * * number0 number1 number2 0.01": a percentage
    example, unwritten = mawps.convert_row(row, 6)
    assert unwritten == ["0.01"]
    assert 6 in mawps.conversion().dropped[mawps.CONSTANT]


def test_mawps_fractions_are_written_as_fractions():
    example, unwritten = mawps.convert_row(mawps.rows()[23], 23)
    assert not unwritten
    assert "1/6 ton of concrete" in example.query and "0.5 ton of stone" in example.query
    assert example.spec == "1 | /6 +(1 /6) +0.5"
    assert example.answer == "0.833333"


def test_mawps_dev_split_is_stable_and_disjoint():
    train, dev = mawps.examples("train"), mawps.examples("dev")
    assert 0.07 < len(dev) / (len(train) + len(dev)) < 0.13
    assert {e.query for e in train}.isdisjoint({e.query for e in dev})
    for split, examples in (("train", train), ("dev", dev)):
        for example in examples:
            assert mawps.split_of(example.query) == split and f"split:{split}" in example.tags
    # The split is a pure function of the query text (SHA-256, no Python hash seed, no order).
    query = "Bryan has 56 books in each of his 9 bookshelves. How many books does he have in total?"
    digest = hashlib.sha256(f"mawps-asdiv-a:dev:{query}".encode()).digest()
    assert stable_share(query, "mawps-asdiv-a:dev") == int.from_bytes(digest[:8], "big") / 2**64
    assert mawps.split_of(query) == ("dev" if stable_share(query, "mawps-asdiv-a:dev") < 0.1 else "train")
    assert mawps.examples("train") == train and mawps.examples("train") is not train
    with pytest.raises(ValueError):
        mawps.examples("test")


# --- SVAMP ---

def test_every_svamp_problem_converts_and_executes_to_its_answer():
    examples = svamp.evaluation()
    assert len(examples) == 997 == len(svamp.problems()) - sum(len(ids) for ids in svamp.dropped().values())
    assert svamp.dropped() == {svamp.WRONG_ANSWER: ("chal-680",), svamp.NO_OPERATION: ("chal-555",),
                               svamp.CONSTANT: ("chal-50",)}
    for example in examples:
        assert same_answer(EXPERT.answer(example.spec), example.answer), example
        written = set(written_numbers(example.query))
        assert all(n in written for n in numbers_of(parse_spec(example.spec).expression)), example
        assert example.tags[0] == svamp.SOURCE_TAG


@pytest.mark.parametrize("problem_id, spec, query_start", [
    ("chal-1", "76 | -25", "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack, how"),
    ("chal-2", "4 | -3", "Dan had $3 left"),
    ("chal-14", "4 | +13 *15", "After resting"),
    ("chal-33", "7 | /(4 +3)", "There are some baskets"),
    ("chal-193", "14 | -(4 *3)", "They decided"),
    ("chal-11", "6 | -3 -2", "3 birds"),
])
def test_svamp_spec_forms(problem_id, spec, query_start):
    example = next(e for e in svamp.evaluation() if f"id:{problem_id}" in e.tags)
    assert example.spec == spec
    assert example.query.startswith(query_start)


def test_svamp_is_not_reachable_from_training():
    evaluation = {e.query for e in svamp.evaluation()}
    assert evaluation <= svamp.queries()
    for split in mawps.SPLITS:
        for example in mawps.examples(split):
            assert example.query not in svamp.queries() and svamp.SOURCE_TAG not in example.tags
    public = {name for name in dir(svamp) if not name.startswith("_") and callable(getattr(svamp, name))}
    assert not {name for name in public if "train" in name or name in ("examples", "generate_split")}


def test_an_equation_with_a_number_the_query_does_not_write():
    assert unwritten_numbers(Operation("-", "415", "149"), "She had 309 cards and now 415.") == ["149"]
