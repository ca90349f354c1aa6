"""Operator-weighted SFT loss: the tokens that write a word problem's step
operators, found through the grammar, carry the weight into the loss."""

from __future__ import annotations

import mlx_lm
import pytest

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.prompts import encode_target
from training import sft
from training.config import TrainConfig
from training.loss_weights import operator_token_weights, target_weights

SYSTEM = "You are a routing assistant.\nFormat: EXPERT: SPEC ->\nExperts: add, word_problem, time, chat"
EXAMPLES = [
    Example("Josh had 16 marbles. He lost 3, then 4, then doubled them. How many?", "word_problem", "marbles: 16 | -3 -4 *2", "18"),
    Example("What is 3 + 4?", "add", "3 + 4", "7"),
    Example("A debt of 5 grew by -2", "word_problem", "5 | - -2", "7"),
    Example("Time in Tokyo please", "time", "Asia/Tokyo", "Asia/Tokyo"),
    Example("hi", "chat", "", None),
]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return mlx_lm.load(str(tiny_model_dir))


def test_the_step_operators_get_the_weight(loaded):
    _, tokenizer = loaded
    for example, operators in ((EXAMPLES[0], "--*"), (EXAMPLES[2], "-")):
        ids = encode_target(tokenizer, example.expert, example.spec)
        weights = operator_token_weights(tokenizer, example.expert, example.spec, ids, 3.0)
        heavy = [tokenizer.decode([i]).strip() for i, w in zip(ids, weights) if w == 3.0]
        assert "".join(heavy) == operators, heavy  # the sign of -2 is not an operator
        assert len(weights) == len(ids) and set(weights) == {1.0, 3.0} and weights[-1] == 1.0


def test_the_tokens_that_begin_a_number_get_the_number_weight(loaded):
    _, tokenizer = loaded
    example = EXAMPLES[0]  # "marbles: 16 | -3 -4 *2"
    ids = encode_target(tokenizer, example.expert, example.spec)
    weights = operator_token_weights(tokenizer, example.expert, example.spec, ids, 1.0, number_weight=2.0)
    heavy = [tokenizer.decode([i]).strip() for i, w in zip(ids, weights) if w == 2.0]
    assert [h[:1] for h in heavy] == ["1", "3", "4", "2"], heavy  # the start, then each step's operand
    both = operator_token_weights(tokenizer, example.expert, example.spec, ids, 3.0, number_weight=2.0)
    assert set(both) == {1.0, 2.0, 3.0}
    prefix, rows = sft.encode_examples(tokenizer, EXAMPLES, SYSTEM)
    assert [set(w) for w in target_weights(tokenizer, EXAMPLES, rows, 1.0, 2.0)] == [{1.0, 2.0}, {1.0}, {1.0, 2.0}, {1.0}, {1.0}]


def test_other_experts_and_weight_one_weigh_every_token_alike(loaded):
    _, tokenizer = loaded
    prefix, rows = sft.encode_examples(tokenizer, EXAMPLES, SYSTEM)
    weights = target_weights(tokenizer, EXAMPLES, rows, 2.0)
    assert [set(w) for w in weights] == [{1.0, 2.0}, {1.0}, {1.0, 2.0}, {1.0}, {1.0}]
    assert target_weights(tokenizer, EXAMPLES, rows, 1.0) is None


def test_a_tokenizer_that_rewrites_text_gets_no_emphasis(loaded):
    _, tokenizer = loaded

    class Uppercasing:
        def decode(self, ids):
            return tokenizer.decode(ids).upper()

    example = EXAMPLES[0]
    ids = encode_target(tokenizer, example.expert, example.spec)
    assert set(operator_token_weights(Uppercasing(), example.expert, example.spec, ids, 3.0)) == {1.0}


def test_the_loss_is_linear_in_the_weights(loaded):
    model, tokenizer = loaded
    sft.setup_trainable(model, "full", 1)
    prefix_ids, rows = sft.encode_examples(tokenizer, EXAMPLES, SYSTEM)
    start = sft.first_trained_layer(model)
    prefix = sft.compute_prefix(model, prefix_ids, start)
    heavy = target_weights(tokenizer, EXAMPLES, rows, 5.0)
    mask = [[1.0 if w == 5.0 else 0.0 for w in row] for row in heavy]

    def loss(weights):
        batch = sft.make_batch(rows, weights)
        batch.pop("num_tokens")
        h = sft.frozen_forward(model, prefix, batch["tokens"])
        total, weight = sft.prefix_loss(model, start, prefix["hidden"], h, batch)
        return total.item(), weight.item()

    plain, heavy_loss, operators = loss(None), loss(heavy), loss(mask)
    assert operators[1] == 4  # three steps in the first example, one in the third
    assert heavy_loss[1] == plain[1] + 4 * operators[1]
    assert heavy_loss[0] == pytest.approx(plain[0] + 4 * operators[0], rel=1e-4)
    with pytest.raises(ValueError, match="loss weights"):
        sft.make_batch(rows, heavy[1:] + [[1.0]])


def test_train_sft_feeds_the_weights_to_every_batch(loaded):
    model, tokenizer = loaded
    sft.setup_trainable(model, "full", 1)
    seen = []

    def recording(rows, batches, **kw):
        for batch in sft.iterate_batches(rows, batches, **kw):
            seen.append(batch["weights"].tolist())
            yield batch

    config = TrainConfig(batch_size=2, sft_epochs=2, learning_rate=1e-3, num_layers=1, checkpoint_every=0, operator_weight=4.0)
    log = []
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, iterate_batches=recording, on_step=log.append, progress=False)
    assert sum(w.count(4.0) for w in seen) == 2 * 4  # two epochs of four operators
    assert sum(r["target_tokens"] for r in log) == 2 * sum(len(t) for _, t in sft.encode_examples(tokenizer, EXAMPLES, SYSTEM)[1])
