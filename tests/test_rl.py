"""GRPO on a tiny random llama: sampling, advantages, loss gradient, learning."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map

from lazarus_cot_router.constrain import LineConstraint
from lazarus_cot_router.constrained_choice import ConstrainedChoice, SampledChoice, draw_valid_token, likeliest_rejected
from lazarus_cot_router.decoding import SharedPrefix, decode_batch
from lazarus_cot_router.experts.base import Example, Expert
from lazarus_cot_router.prompts import encode_prompt, end_of_turn_id, router_system_prompt
from training.config import TrainConfig
from training.rl import (grpo_loss, group_advantages, log_kept_mass, prefix_caches, rejected_arrays, select_examples, token_advantages,
                         token_logprobs, train_rl)
from lazarus_cot_router.sampling import sample_completions
from training.sft import compute_prefix, first_trained_layer, frozen_forward, make_batch, setup_trainable, target_logits

QUERIES = ["say hi", "please say hello there", "ok", "repeat after me: the quick brown fox"]


class _Echo(Expert):
    name = "echo"
    description = "returns its spec"

    def execute(self, spec: str) -> str:
        return spec


EXPERTS = {"echo": _Echo()}
EXAMPLES = [Example(q, "echo", q, q) for q in QUERIES]


@pytest.fixture()
def tiny(tiny_model_dir):
    from lazarus_cot_router.models import load

    model, tokenizer = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    return model, tokenizer


def _prompt(tokenizer, queries=QUERIES):
    system = router_system_prompt(list(EXPERTS.values()))
    pairs = [encode_prompt(tokenizer, system, q) for q in queries]
    return pairs[0][0], [s for _, s in pairs]


def _greedy_reference(model, ids, max_tokens):
    out = []
    for _ in range(max_tokens):
        out.append(int(mx.argmax(model(mx.array(ids + out)[None])[0, -1]).item()))
    return out


# --- advantages -----------------------------------------------------------


def test_group_advantages_known_values():
    adv = group_advantages([1.0, 0.0, 1.0, 0.0, 0.3, 0.3, 0.3, 0.3], 4)
    expected = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    np.testing.assert_allclose(adv[:4], [expected, -expected, expected, -expected], rtol=1e-6)
    np.testing.assert_array_equal(adv[4:], 0.0)


def test_group_advantages_zero_variance_and_single():
    np.testing.assert_array_equal(group_advantages([0.7] * 6, 3), 0.0)
    np.testing.assert_array_equal(group_advantages([1.0, 0.0], 1), 0.0)


def test_token_advantages_layout():
    adv = token_advantages([2.0, -1.0], [3, 1], padded=8)
    assert adv.tolist() == [2.0, 2.0, 2.0, -1.0, 0.0, 0.0, 0.0, 0.0]


def test_select_examples_deterministic_epochs():
    first = [select_examples(10, 4, it, seed=3) for it in range(5)]
    assert first == [select_examples(10, 4, it, seed=3) for it in range(5)]
    flat = [i for batch in first for i in batch]
    assert sorted(flat[:10]) == list(range(10))
    assert sorted(flat[10:20]) == list(range(10))
    assert select_examples(10, 4, 0, seed=4) != first[0]


# --- sampling -------------------------------------------------------------


def test_sampling_max_length_and_seed(tiny):
    model, tokenizer = tiny
    prefix, suffixes = _prompt(tokenizer)
    cache = SharedPrefix(model, prefix)
    run = lambda seed: sample_completions(model, tokenizer, cache, suffixes, num_generations=3, temperature=1.0, max_tokens=5, seed=seed)  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    assert len(a) == len(suffixes) and all(len(g) == 3 for g in a)
    tokens = lambda groups: [x.tokens for g in groups for x in g]  # noqa: E731
    assert tokens(a) == tokens(b)
    assert tokens(a) != tokens(c)
    assert all(len(x.tokens) <= 5 and (x.finish != "length" or len(x.tokens) == 5) for g in a for x in g)


def test_batched_greedy_equals_one_at_a_time(tiny):
    model, tokenizer = tiny
    prefix, suffixes = _prompt(tokenizer)
    cache = SharedPrefix(model, prefix)
    batched = sample_completions(model, tokenizer, cache, suffixes, num_generations=2, temperature=0.0, max_tokens=6)
    for suffix, group in zip(suffixes, batched):
        single = sample_completions(model, tokenizer, cache, [suffix], temperature=0.0, max_tokens=6)[0][0]
        assert group[0].tokens == group[1].tokens == single.tokens
        assert single.tokens[:6] == _greedy_reference(model, prefix + suffix, len(single.tokens))


def test_prompts_decode_the_same_on_their_own_prefixes(tiny):
    """A prefix extended by all but the last token of a prompt (prefilled once, as sampling
    does for a prompt's completions) decodes what the shared prefix and the whole prompt do."""
    model, tokenizer = tiny
    prefix, suffixes = _prompt(tokenizer)
    shared = SharedPrefix(model, prefix)
    whole = decode_batch(model, tokenizer, suffixes, prefix=shared, max_tokens=6)
    own = decode_batch(model, tokenizer, [s[-1:] for s in suffixes], max_tokens=6,
                       prefix=[shared.extend(model, s[:-1]) for s in suffixes])
    assert [o.tokens for o in own] == [w.tokens for w in whole]
    with pytest.raises(ValueError, match="one per prompt"):
        decode_batch(model, tokenizer, suffixes, prefix=[shared], max_tokens=2)


class _Script:
    """A token check that accepts only the next token of ``script``."""

    def __init__(self, script: list[int]):
        self.script = script

    def valid(self, generated, token):
        return token == self.script[min(len(generated), len(self.script) - 1)]

    def grammar_tokens(self, generated):
        return [self.script[min(len(generated), len(self.script) - 1)]]

    def relax(self):
        return False


def test_sampling_stops_after_arrow_and_at_eot(tiny):
    model, tokenizer = tiny
    eot = end_of_turn_id(tokenizer)
    line = tokenizer.encode("add: 1 + 2 -> 3 more", add_special_tokens=False)
    [[arrow]] = sample_completions(model, tokenizer, None, [[5, 6]], temperature=1.0, max_tokens=40,
                                   stop_token_ids=[eot], token_checks=[_Script(line)])
    assert arrow.finish == "arrow" and arrow.text == "add: 1 + 2 ->"
    assert tokenizer.decode(arrow.tokens) == "add: 1 + 2 ->"

    script = tokenizer.encode("hi", add_special_tokens=False) + [eot, 7, 7]
    [[done]] = sample_completions(model, tokenizer, None, [[5]], max_tokens=40, stop_token_ids=[eot],
                                  token_checks=[_Script(script)])
    assert done.finish == "eot" and done.tokens[-1] == eot and done.text == "hi"


def test_sampled_choice_keeps_only_its_draw_and_records_the_policy_logprob():
    logits = mx.log(mx.array([[0.5, 0.3, 0.15, 0.05]]))
    choice = SampledChoice(temperature=1.0, seed=0)
    out = choice(mx.array([9, 9]), logits)
    kept = [t for t, v in enumerate(out.reshape(-1).tolist()) if v > float("-inf")]
    assert len(kept) == 1
    assert choice.logprobs == pytest.approx([math.log([0.5, 0.3, 0.15, 0.05][kept[0]])], abs=1e-6)


def test_draw_valid_token_draws_only_accepted_tokens_in_proportion():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))

    class Check:
        def __init__(self, accept, offered=()):
            self.accept, self.offered = accept, list(offered)

        def valid(self, generated, token):
            return self.accept(token)

        def grammar_tokens(self, generated):
            return self.offered

        def relax(self):
            return False

    odd = Check(lambda token: token % 2 == 1)
    rng = np.random.default_rng(0)
    draws = [draw_valid_token(logits, 1.0, rng, odd, []) for _ in range(2000)]
    assert set(draws) == {1, 3}
    assert abs(draws.count(1) / len(draws) - 0.3 / 0.35) < 0.03  # p restricted to the accepted tokens
    assert draw_valid_token(logits, 0.0, rng, odd, []) == 1  # greedy: best accepted
    offered = Check(lambda token: False, offered=[2])
    assert draw_valid_token(logits, 1.0, rng, offered, []) == 2  # the grammar's offer
    assert draw_valid_token(logits, 0.0, rng, offered, []) == 2
    nothing = Check(lambda token: False)
    assert draw_valid_token(logits, 1.0, rng, nothing, []) == 0  # the likeliest, unchecked
    free = [draw_valid_token(logits, 1.0, rng, None, []) for _ in range(2000)]
    assert abs(free.count(0) / len(free) - 0.5) < 0.04  # no check: the model's distribution


class _Parity:
    """A token check that accepts the tokens of one parity."""

    def __init__(self, odd: bool):
        self.odd = odd

    def valid(self, generated, token):
        return token % 2 == self.odd

    def grammar_tokens(self, generated):
        return []

    def relax(self):
        return False


def test_likeliest_rejected_takes_the_rejected_among_the_likeliest():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    assert likeliest_rejected(p, _Parity(odd=True), [], drawn=1) == [0, 2]
    assert likeliest_rejected(p, _Parity(odd=True), [], drawn=0) == [2]  # never the drawn token
    assert likeliest_rejected(p, _Parity(odd=False), [], drawn=0) == [1, 3]
    # It stops once the tokens looked at hold nearly all the mass.
    assert likeliest_rejected(np.array([0.9995, 0.0002, 0.0002, 0.0001]), _Parity(odd=True), [], drawn=1) == [0]


def test_sampled_choice_records_rejected_tokens_only_when_asked():
    logits = mx.log(mx.array([[0.5, 0.3, 0.15, 0.05]]))
    quiet = SampledChoice(_Parity(odd=True), temperature=1.0, seed=0)
    quiet(mx.array([9]), logits)
    assert quiet.rejected == []  # the rewriter's second opinions pay nothing for it
    for seed in range(6):
        recording = SampledChoice(_Parity(odd=True), temperature=1.0, seed=seed, record_rejected=True)
        out = recording(mx.array([9]), logits)
        [drawn] = [t for t, v in enumerate(out.reshape(-1).tolist()) if v > float("-inf")]
        assert recording.rejected == [[0, 2]]
        # What greedy decoding would have masked to write the drawn token: the rejected ones likelier than it.
        assert recording.masked_steps == [pytest.approx(0.5 if drawn == 1 else 0.65)]


def test_lines_past_max_masked_are_scored_as_passthroughs():
    from lazarus_cot_router.decoding import Decoded
    from lazarus_cot_router.plugins import get_experts
    from training.rewards import make_verified_reward
    from training.rl import score_completions

    experts = get_experts()
    picked = [Example("What is 12 times 7?", "multiply", "12 * 7", "84"), Example("Tell me a joke", "chat", "", None)]
    completions = [Decoded([1], "multiply: 12 * 7 ->", masked=0.995), Decoded([1], "multiply: 12 * 7 ->", masked=0.5),
                   Decoded([1], "add: 1 + 2 ->", masked=0.999), Decoded([1], "add: 1 + 2 ->", masked=0.2)]
    reward = make_verified_reward(experts)
    _, outcomes = score_completions([reward], picked, completions, experts, 2, max_masked=0.99)
    assert outcomes == ["wrong_expert", "correct", "correct", "wrong_expert"]
    _, outcomes = score_completions([reward], picked, completions, experts, 2)
    assert outcomes == ["correct", "correct", "wrong_expert", "wrong_expert"]


def test_log_kept_mass_renormalizes_and_leaves_rejected_logits_without_gradient():
    logits = mx.log(mx.array([[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4]]))
    rejected, mask = rejected_arrays([[0, 2], []], 2)
    kept = log_kept_mass(logits, rejected, mask)
    np.testing.assert_allclose(np.array(kept), [math.log(0.35), 0.0], atol=1e-6)

    def restricted_logprob(z):
        return (z[0, 1] - mx.logsumexp(z[0]) - log_kept_mass(z, rejected, mask)[0])

    assert restricted_logprob(logits).item() == pytest.approx(math.log(0.3 / 0.35), abs=1e-6)
    grad = np.array(mx.grad(restricted_logprob)(logits))
    assert grad[0, 0] == pytest.approx(0.0, abs=1e-6) and grad[0, 2] == pytest.approx(0.0, abs=1e-6)
    assert grad[0, 1] > 0 > grad[0, 3]


def _routed_prompts(tokenizer, experts, queries=("What is 12 times 7?", "Tell me a joke")):
    """The shared prefix ids of the router's prompts for ``queries``, each one's suffix, and its constraint."""
    system = router_system_prompt(list(experts.values()))
    pairs = [encode_prompt(tokenizer, system, q) for q in queries]
    constraints = [LineConstraint({n: e.spec_vocabulary(q) for n, e in experts.items()}, q) for q in queries]
    return pairs[0][0], [s for _, s in pairs], constraints


def test_constrained_sampling_writes_only_lines_the_constraint_allows(tiny):
    from lazarus_cot_router.plugins import get_experts

    model, tokenizer = tiny
    experts = get_experts()
    prefix_ids, suffixes, constraints = _routed_prompts(tokenizer, experts)
    eot = end_of_turn_id(tokenizer)
    checks = [ConstrainedChoice(c, tokenizer, banned=[eot]) for c in constraints for _ in range(3)]
    groups = sample_completions(model, tokenizer, SharedPrefix(model, prefix_ids), suffixes,
                                num_generations=3, temperature=1.0, max_tokens=12, stop_token_ids=[eot],
                                token_checks=checks)
    for constraint, group in zip(constraints, groups):
        for completion in group:
            assert completion.finish != "eot"
            assert constraint.allows(completion.text), completion.text


def test_sampled_logprobs_match_training_forward(tiny):
    model, tokenizer = tiny
    prefix_ids, suffixes = _prompt(tokenizer)
    start = first_trained_layer(model)
    prefix = compute_prefix(model, prefix_ids, start)
    shared = SharedPrefix(model, prefix_ids, cache=prefix_caches(model, prefix, start))
    groups = sample_completions(model, tokenizer, shared, suffixes, num_generations=2, temperature=1.0, max_tokens=5, seed=2)
    rows = [(s, c.tokens) for s, g in zip(suffixes, groups) for c in g]
    batch = make_batch(rows)
    h = frozen_forward(model, prefix, batch["tokens"])
    logp = token_logprobs(model, start, prefix["hidden"], h, batch)
    n = sum(len(c.tokens) for g in groups for c in g)
    sampled = [lp for g in groups for c in g for lp in c.logprobs]
    np.testing.assert_allclose(np.array(logp[:n]), sampled, atol=2e-4)


# --- loss -----------------------------------------------------------------


def _batch_and_logp(model, tokenizer, completions):
    prefix_ids, suffixes = _prompt(tokenizer, QUERIES[:1])
    start = first_trained_layer(model)
    prefix = compute_prefix(model, prefix_ids, start)
    batch = make_batch([(suffixes[0], c) for c in completions])
    h = mx.stop_gradient(frozen_forward(model, prefix, batch["tokens"]))

    def sequence_logps():
        logp = token_logprobs(model, start, prefix["hidden"], h, batch) * batch["weights"]
        out, i = [], 0
        for c in completions:
            out.append(logp[i : i + len(c)].sum().item())
            i += len(c)
        return out

    return start, prefix, batch, h, sequence_logps


def test_policy_gradient_raises_positive_advantage_sample(tiny):
    model, tokenizer = tiny
    completions = [[11, 12, 13], [21, 22]]
    start, prefix, batch, h, sequence_logps = _batch_and_logp(model, tokenizer, completions)
    before = sequence_logps()
    adv = token_advantages([1.0, -1.0], [3, 2], batch["labels"].shape[0])
    value_and_grad = nn.value_and_grad(model, grpo_loss)
    (loss, kl), grads = value_and_grad(model, start, prefix["hidden"], h, batch, adv, None, 0.0)
    optim.SGD(learning_rate=1e-2).update(model, grads)
    after = sequence_logps()
    assert after[0] > before[0]
    assert after[1] < before[1]
    assert kl.item() == 0.0


def test_leaving_out_zero_advantage_completions_keeps_the_gradient(tiny):
    model, tokenizer = tiny
    completions = [[11, 12, 13], [21, 22], [31, 32, 33, 34]]
    start, prefix, batch, h, _ = _batch_and_logp(model, tokenizer, completions)
    batch.pop("num_tokens")
    value_and_grad = nn.value_and_grad(model, grpo_loss)
    adv = token_advantages([1.0, 0.0, -1.0], [3, 2, 4], batch["labels"].shape[0])
    (_, _), full = value_and_grad(model, start, prefix["hidden"], h, batch, adv, None, 0.0)
    kept = [completions[0], completions[2]]
    _, _, small, small_h, _ = _batch_and_logp(model, tokenizer, kept)
    small.pop("num_tokens")
    small["loss_tokens"] = mx.array(9.0)
    small_adv = token_advantages([1.0, -1.0], [3, 4], small["labels"].shape[0])
    (_, _), part = value_and_grad(model, start, prefix["hidden"], small_h, small, small_adv, None, 0.0)
    for (_, a), (_, b) in zip(tree_flatten(full), tree_flatten(part)):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-7)
    assert any(np.abs(np.array(a)).max() > 0 for _, a in tree_flatten(full))


def test_kl_is_zero_at_reference_and_positive_after_a_change(tiny):
    model, tokenizer = tiny
    start, prefix, batch, h, _ = _batch_and_logp(model, tokenizer, [[11, 12, 13], [21, 22]])
    adv = mx.zeros(batch["labels"].shape)
    ref = mx.stop_gradient(token_logprobs(model, start, prefix["hidden"], h, batch))
    loss, kl = grpo_loss(model, start, prefix["hidden"], h, batch, adv, ref, beta=0.1)
    assert abs(kl.item()) < 1e-6 and abs(loss.item()) < 1e-6
    model.update(tree_map(lambda p: p * 1.5, model.trainable_parameters()))
    loss, kl = grpo_loss(model, start, prefix["hidden"], h, batch, adv, ref, beta=0.1)
    assert kl.item() > 0 and loss.item() == pytest.approx(0.1 * kl.item(), rel=1e-5)


# --- training -------------------------------------------------------------


def _half_space_reward(model):
    """Reward: the share of completion tokens whose embedding lies on one side
    of a fixed random hyperplane (about half the vocabulary)."""
    embed = model.model.embed_tokens.weight
    u = mx.random.normal((embed.shape[1],), key=mx.random.key(7))
    favored = np.array((embed @ u) > 0)

    def reward(prompts, completions, completion_ids, **kwargs):
        return [float(np.mean(favored[ids])) for ids in completion_ids]

    return reward, mx.array(np.nonzero(favored)[0])


def _favored_mass(model, tokenizer, favored):
    prefix, suffixes = _prompt(tokenizer)
    masses = [mx.softmax(model(mx.array(prefix + s)[None])[0, -1])[favored].sum().item() for s in suffixes]
    return float(np.mean(masses))


def test_rl_increases_reward(tiny):
    model, tokenizer = tiny
    reward, favored = _half_space_reward(model)
    before = _favored_mass(model, tokenizer, favored)
    config = TrainConfig(rl_iters=5, rl_batch_size=4, num_generations=4, max_completion_length=4, beta=0.0, rl_learning_rate=1e-3,
                         constrained_sampling=False)
    history = train_rl(model, tokenizer, EXAMPLES, EXPERTS, config, reward_funcs=[reward], progress=False)
    after = _favored_mass(model, tokenizer, favored)
    assert len(history) == 5 and not any(m["skipped"] for m in history)
    assert after > before + 0.05
    assert np.mean([m["reward_mean"] for m in history[-2:]]) > np.mean([m["reward_mean"] for m in history[:1]])


def test_constrained_rl_samples_only_lines_the_rewriter_could_decode(tiny):
    from lazarus_cot_router.plugins import get_experts

    model, tokenizer = tiny
    experts = get_experts()
    examples = [Example("What is 12 times 7?", "multiply", "12 * 7", "84"), Example("Tell me a joke", "chat", "", None)]
    texts = []

    def reward(prompts, completions, **kwargs):
        texts.extend(zip(prompts, completions))
        return [float(len(c) % 2) for c in completions]

    config = TrainConfig(rl_iters=1, rl_batch_size=2, num_generations=3, max_completion_length=12)
    assert config.constrained_sampling
    train_rl(model, tokenizer, examples, experts, config, reward_funcs=[reward], progress=False)
    assert len(texts) == 6
    for query, text in texts:
        constraint = LineConstraint({name: e.spec_vocabulary(query) for name, e in experts.items()}, query)
        assert constraint.allows(text), (query, text)


def test_constrained_policy_logprobs_are_the_restricted_distributions(tiny):
    from lazarus_cot_router.plugins import get_experts

    model, tokenizer = tiny
    experts = get_experts()
    prefix_ids, suffixes, constraints = _routed_prompts(tokenizer, experts)
    start = first_trained_layer(model)
    prefix = compute_prefix(model, prefix_ids, start)
    shared = SharedPrefix(model, prefix_ids, cache=prefix_caches(model, prefix, start))
    eot = end_of_turn_id(tokenizer)
    checks = [ConstrainedChoice(c, tokenizer, banned=[eot]) for c in constraints for _ in range(2)]
    groups = sample_completions(model, tokenizer, shared, suffixes, num_generations=2, temperature=1.0, max_tokens=8,
                                stop_token_ids=[eot], seed=3, token_checks=checks, record_rejected=True)
    completions = [c for g in groups for c in g]
    assert all(len(c.rejected) == len(c.tokens) for c in completions)
    assert all(0.0 <= c.masked <= 1.0 for c in completions)
    assert any(r for c in completions for r in c.rejected)  # the untrained model wants what the constraint forbids
    batch = make_batch([(suffixes[i // 2], c.tokens) for i, c in enumerate(completions)])
    rows = [r for c in completions for r in c.rejected]
    h = frozen_forward(model, prefix, batch["tokens"])
    model_logp = np.array(token_logprobs(model, start, prefix["hidden"], h, batch))
    batch["rejected"], batch["rejected_mask"] = rejected_arrays(rows, batch["labels"].shape[0])
    policy_logp = np.array(token_logprobs(model, start, prefix["hidden"], h, batch))
    probs = np.array(mx.softmax(target_logits(model, start, prefix["hidden"], h, batch).astype(mx.float32), axis=-1))
    for i, rejected in enumerate(rows):
        assert policy_logp[i] == pytest.approx(model_logp[i] - math.log(1 - probs[i, rejected].sum()), abs=1e-4)


def test_constrained_policy_rl_runs_and_updates(tiny):
    from lazarus_cot_router.plugins import get_experts

    model, tokenizer = tiny
    experts = get_experts()
    examples = [Example("What is 12 times 7?", "multiply", "12 * 7", "84"), Example("Tell me a joke", "chat", "", None)]
    before = [np.array(v) for _, v in tree_flatten(model.trainable_parameters())]

    def reward(prompts, completions, **kwargs):
        return [float(len(c) % 2) for c in completions]

    config = TrainConfig(rl_iters=1, rl_batch_size=2, num_generations=3, max_completion_length=8, constrained_policy=True)
    [metrics] = train_rl(model, tokenizer, examples, experts, config, reward_funcs=[reward], progress=False)
    assert not metrics["skipped"] and math.isfinite(metrics["loss"])
    after = [np.array(v) for _, v in tree_flatten(model.trainable_parameters())]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_constant_reward_skips_updates_but_logs(tiny):
    model, tokenizer = tiny
    weights = [np.array(v) for _, v in tree_flatten(model.trainable_parameters())]
    config = TrainConfig(rl_iters=2, rl_batch_size=2, num_generations=3, max_completion_length=3, beta=0.04, constrained_sampling=False)
    seen = []
    history = train_rl(model, tokenizer, EXAMPLES, EXPERTS, config, progress=False, on_iteration=seen.append)
    assert seen == history and len(history) == 2
    for m in history:
        assert m["skipped"] and m["reward_mean"] == 0.0 and m["fraction_correct"] == 0.0
        assert m["outcomes"]["unparseable"] + m["outcomes"]["unknown_expert"] == 6
        assert m["seconds"] > 0
    after = [np.array(v) for _, v in tree_flatten(model.trainable_parameters())]
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))


def test_resume_matches_uninterrupted_run(tiny_model_dir):
    from lazarus_cot_router.models import load

    def fresh():
        model, tokenizer = load(str(tiny_model_dir))
        setup_trainable(model, "full", 1)
        return model, tokenizer

    config = TrainConfig(rl_iters=4, rl_batch_size=2, num_generations=3, max_completion_length=3, beta=0.04, rl_learning_rate=1e-3, checkpoint_every=2,
                         constrained_sampling=False)
    model, tokenizer = fresh()
    reward, _ = _half_space_reward(model)
    reference = model.trainable_parameters()
    snapshots = []
    optimizer = optim.Adam(learning_rate=config.rl_learning_rate)

    def save(state):
        snapshots.append((state, tree_map(lambda x: x, model.trainable_parameters()), tree_map(lambda x: x, optimizer.state)))

    full = train_rl(model, tokenizer, EXAMPLES, EXPERTS, config, reward_funcs=[reward], optimizer=optimizer, save_checkpoint=save, progress=False)
    assert [s["iteration"] for s, _, _ in snapshots] == [2, 4]

    state, params, opt_state = snapshots[0]
    resumed_model, _ = fresh()
    resumed_model.update(params)
    resumed_opt = optim.Adam(learning_rate=config.rl_learning_rate)
    resumed_opt.state = opt_state
    rest = train_rl(resumed_model, tokenizer, EXAMPLES, EXPERTS, config, reward_funcs=[reward], optimizer=resumed_opt, start_state=state, reference=reference, progress=False)
    assert [m["iteration"] for m in rest] == [3, 4]
    assert [m["reward_mean"] for m in rest] == [m["reward_mean"] for m in full[2:]]
    for (_, a), (_, b) in zip(tree_flatten(model.trainable_parameters()), tree_flatten(resumed_model.trainable_parameters())):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-6)


def test_weighted_prompt_draws_follow_the_expert_weights():
    from lazarus_cot_router.experts.base import Example
    from training.rl import prompt_weights

    examples = [Example(f"q{i}", "word_problem" if i < 2 else "chat", "", None) for i in range(20)]
    assert prompt_weights(examples, {}) is None
    weights = prompt_weights(examples, {"word_problem": 9, "chat": 0.5})
    assert weights[:3] == [9.0, 9.0, 0.5]
    draws = [select_examples(20, 2, it, seed=0, weights=weights) for it in range(200)]
    assert draws == [select_examples(20, 2, it, seed=0, weights=weights) for it in range(200)]  # exact resume
    assert all(len(set(d)) == 2 for d in draws)
    share = sum(i < 2 for d in draws for i in d) / 400
    assert 0.5 < share < 0.9  # 2 of 20 examples carry 18 / 27 of the weight
    assert sorted(select_examples(20, 4, 0, seed=0, weights=[1.0] * 3 + [0.0] * 17)) == [0, 1, 2]  # only 3 can be drawn


def test_rl_expert_weights_are_checked():
    from training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="rl_expert_weights"):
        TrainConfig(rl_expert_weights={"word_problem": -1})
    assert TrainConfig(rl_expert_weights={"word_problem": 4}).rl_expert_weights == {"word_problem": 4}
    with pytest.raises(ConfigError, match="expert_weights"):
        TrainConfig(expert_weights={"word_problem": "many"})
