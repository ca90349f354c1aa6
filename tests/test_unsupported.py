import random
import re
from collections import Counter

import pytest

from corpora.clinc150 import label_calculator
from lazarus_cot_router.plugins import get_experts
from training.data import training_examples
from training.generators import unsupported


def test_requests_are_distinct_chat_examples_of_every_kind():
    drawn = unsupported.examples(400, seed=3)
    assert len({e.query for e in drawn}) == 400
    assert all(e.expert == "chat" and e.spec == "" and e.answer is None for e in drawn)
    assert all(unsupported.SOURCE_TAG in e.tags for e in drawn)
    kinds = Counter(t.removeprefix("kind:") for e in drawn for t in e.tags if t.startswith("kind:"))
    assert set(kinds) == set(unsupported.KINDS)
    assert kinds["chain"] > kinds["factorial"]  # weighted toward what the runtime does not catch
    assert [e.query for e in unsupported.examples(50, seed=3)] == [e.query for e in drawn[:50]]
    assert [e.query for e in unsupported.examples(50, seed=4)] != [e.query for e in drawn[:50]]


def test_no_request_is_one_an_arithmetic_expert_takes():
    # The CLINC150 labeller decides which calculator queries an arithmetic expert takes; the
    # generator must never call chat what the corpus calls arithmetic.
    assert not [e.query for e in unsupported.examples(1000, seed=1) if label_calculator(e.query)]


def test_chains_combine_three_numbers_or_more():
    rng = random.Random(0)
    for _ in range(50):
        text = unsupported.compose(rng, "chain")
        assert len(re.findall(r"\d+(?:\.\d+)?", text)) >= 3, text
    with pytest.raises(ValueError, match="unknown kind"):
        unsupported.compose(rng, "integral")


def test_training_set_takes_them_only_beside_a_chat_expert():
    experts = list(get_experts().values())
    mixed = training_examples(10, 0, experts, unsupported=30)
    assert len(mixed) == 40
    assert sum(unsupported.SOURCE_TAG in e.tags for e in mixed) == 30
    without_chat = [e for e in experts if e.name != "chat"]
    assert not any(unsupported.SOURCE_TAG in e.tags for e in training_examples(10, 0, without_chat, unsupported=30))
