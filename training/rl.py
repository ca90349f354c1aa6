"""GRPO with verified rewards (one policy update per iteration), CPU-fast.

Each iteration samples ``num_generations`` completions for each of
``rl_batch_size`` prompts (:mod:`lazarus_cot_router.sampling`), scores them with the
reward functions (:mod:`training.rewards`: the expert executes the spec),
turns rewards into group-relative advantages ``(r - mean) / (std + eps)`` (TRL's
``scale_rewards="group"``) and takes one Adam step on TRL's clipped surrogate

    loss = -mean_t min(ratio_t A, clip(ratio_t, 1 - eps, 1 + eps) A) + beta KL_t

averaged over all completion tokens (TRL's ``dapo`` normalization), with
``ratio = exp(logp - stop_gradient(logp)) == 1`` and the k3 estimator
``KL = exp(ref - logp) - (ref - logp) - 1`` against the policy at RL start.
With ``constrained_policy``, ``logp`` is the constrained policy's, the one the
tokens were drawn from (:func:`token_logprobs`); with ``rl_max_masked`` below 1,
a sampled line the constraint had to force that far is rewarded as the
passthrough the rewriter makes of it (:func:`score_completions`).

Like SFT (:mod:`training.sft`), only the last trained blocks run with
gradients: the frozen blocks' prefix keys/values are computed once per run,
and the update runs the sampled rows through the frozen blocks once, without
gradients, on top of them. The reference policy differs from the current one
only in the trainable weights, so its log-probs cost one forward of the
trained blocks.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx_lm.models.cache import KVCache
from tqdm import tqdm

from lazarus_cot_router import fast_math
from lazarus_cot_router.decoding import SharedPrefix, kv_cache
from lazarus_cot_router.experts.chat import ChatExpert
from lazarus_cot_router.prompts import end_of_turn_id, router_system_prompt
from lazarus_cot_router.sampling import sample_completions, token_checks

from .rewards import OUTCOMES, RewardLevels, classify_batch, make_verified_reward, total_rewards
from .sft import FixedPrefixCache, compute_prefix, encode_examples, first_trained_layer, frozen_forward, make_batch, target_logits

EPSILON_CLIP = 0.2
ADVANTAGE_EPS = 1e-4
PASSTHROUGH_LINE = f"{ChatExpert.name}: ->"  # how a line past ``rl_max_masked`` is scored


def group_advantages(rewards: Sequence[float], num_generations: int, eps: float = ADVANTAGE_EPS) -> np.ndarray:
    """``(r - group mean) / (group std + eps)`` per group of ``num_generations``
    consecutive rewards (unbiased std, as TRL); a group of equal rewards gets 0."""
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, num_generations)
    mean = r.mean(axis=1, keepdims=True)
    std = r.std(axis=1, ddof=1, keepdims=True) if num_generations > 1 else np.zeros_like(mean)
    adv = (r - mean) / (std + eps)
    adv[np.isclose(std[:, 0], 0.0)] = 0.0
    return adv.reshape(-1)


def prefix_caches(model: nn.Module, prefix: dict, start: int) -> list[KVCache]:
    """KV caches of the shared prefix under the current weights: the frozen
    blocks' from ``prefix`` (see :func:`training.sft.compute_prefix`), the
    trained blocks' recomputed from the prefix hidden state."""
    caches = [kv_cache(k, v) for k, v in prefix["frozen"]]
    h = prefix["hidden"]
    for layer in model.layers[start:]:
        shared = FixedPrefixCache()
        h = layer(h, "causal", cache=shared)
        caches.append(kv_cache(shared.keys, shared.values))
    mx.eval([c.state for c in caches])
    return caches


def token_logprobs(model: nn.Module, start: int, prefix_hidden: mx.array, h: mx.array, batch: dict) -> mx.array:
    """Log-probabilities of ``batch["labels"]`` at ``batch["positions"]``, given
    the prefix and batch hidden states entering block ``start``. With
    ``batch["rejected"]`` (see :func:`rejected_arrays`), those of the policy the
    tokens were drawn from: the model's distribution without the tokens the
    constraint rejected, renormalized."""
    logits = target_logits(model, start, prefix_hidden, h, batch).astype(mx.float32)
    logp = -fast_math.cross_entropy(logits, batch["labels"])
    if "rejected" not in batch:
        return logp
    return logp - log_kept_mass(logits, batch["rejected"], batch["rejected_mask"])


def log_kept_mass(logits: mx.array, rejected: mx.array, mask: mx.array) -> mx.array:
    """Per row of ``logits``, the log of the probability left once the tokens
    ``rejected`` (where ``mask`` is 1) are removed: subtracted from a token's
    log-probability, it gives the renormalized one, whose gradient leaves the
    rejected tokens' logits alone."""
    lse = mx.logsumexp(logits, axis=-1, keepdims=True)
    removed = (mx.exp(mx.take_along_axis(logits, rejected, axis=-1) - lse) * mask).sum(axis=-1)
    return mx.log1p(-mx.minimum(removed, 1 - 1e-6))


def rejected_arrays(rejected: Sequence[Sequence[int]], padded: int) -> tuple[mx.array, mx.array]:
    """Each completion token's rejected tokens (one list per token, in
    :func:`training.sft.make_batch` order) as an index array padded to
    ``padded`` rows and a mask of the real entries."""
    width = max(1, max(map(len, rejected), default=0))
    ids = np.zeros((padded, width), np.int32)
    mask = np.zeros((padded, width), np.float32)
    for row, tokens in enumerate(rejected):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1.0
    return mx.array(ids), mx.array(mask)


def grpo_loss(model, start, prefix_hidden, h, batch, advantages, ref_logprobs, beta: float, epsilon: float = EPSILON_CLIP):
    """``(loss, mean KL)``: TRL's clipped surrogate plus ``beta`` times the k3
    KL, averaged over the completion tokens (``batch["weights"]`` masks padding;
    ``batch["loss_tokens"]``, if given, is the token count to average over, for
    a batch that leaves out completions whose terms are zero)."""
    logp = token_logprobs(model, start, prefix_hidden, h, batch)
    ratio = mx.exp(logp - mx.stop_gradient(logp))
    per_token = -mx.minimum(ratio * advantages, mx.clip(ratio, 1 - epsilon, 1 + epsilon) * advantages)
    weights = batch["weights"]
    kl = mx.array(0.0)
    if ref_logprobs is not None:
        delta = ref_logprobs - logp
        per_kl = mx.exp(delta) - delta - 1
        kl = (per_kl * weights).sum() / weights.sum()
        per_token = per_token + beta * per_kl
    return (per_token * weights).sum() / batch.get("loss_tokens", weights.sum()), kl


def token_advantages(advantages: Sequence[float], lengths: Sequence[int], padded: int) -> mx.array:
    """One advantage per completion token, in :func:`training.sft.make_batch` order."""
    flat = np.zeros(padded, np.float32)
    flat[: sum(lengths)] = np.repeat(np.asarray(advantages, np.float32), lengths)
    return mx.array(flat)


def select_examples(n: int, batch_size: int, iteration: int, seed: int, weights: Sequence[float] | None = None) -> list[int]:
    """Indices of the examples for ``iteration``, a pure function of its arguments (exact
    resume): consecutive slices of per-epoch permutations, or, with ``weights`` (one per
    example), a draw without replacement in proportion to them."""
    if weights is not None:
        p = np.asarray(weights, dtype=np.float64)
        k = min(batch_size, int(np.count_nonzero(p)))
        return [int(i) for i in np.random.default_rng([seed, iteration]).choice(n, k, replace=False, p=p / p.sum())]
    out = []
    first = iteration * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(first + len(out), n)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        out.extend(int(i) for i in order[offset : offset + batch_size - len(out)])
    return out


def prompt_weights(examples, expert_weights: dict[str, float]) -> list[float] | None:
    """Each example's weight in RL's draw of prompts: its gold expert's weight in
    ``expert_weights`` (1 for an expert not named); ``None`` when none is given."""
    if not expert_weights:
        return None
    return [float(expert_weights.get(e.expert, 1.0)) for e in examples]


def summarize(outcomes: Sequence[str], rewards: Sequence[float]) -> dict:
    counts = {o: outcomes.count(o) for o in OUTCOMES}
    return {
        "reward_mean": float(np.mean(rewards)),
        "reward_std": float(np.std(rewards)),
        "fraction_correct": counts["correct"] / len(outcomes),
        "outcomes": counts,
    }


def score_completions(reward_funcs: Sequence[Callable], picked: Sequence, completions: Sequence, experts,
                      num_generations: int, max_masked: float = 1.0) -> tuple[np.ndarray, list[str]]:
    """The total reward and the outcome of each completion (``num_generations``
    per example of ``picked``, in order): TRL's reward-function call, with the
    examples' gold columns as keyword arguments. A completion whose ``masked``
    share passes ``max_masked`` is scored as the passthrough the rewriter makes
    of it."""
    G = num_generations
    columns = {
        "expert": [e.expert for e in picked for _ in range(G)],
        "spec": [e.spec for e in picked for _ in range(G)],
        "answer": [e.answer for e in picked for _ in range(G)],
        "tags": [e.tags for e in picked for _ in range(G)],
    }
    prompts = [e.query for e in picked for _ in range(G)]
    texts = [PASSTHROUGH_LINE if c.masked > max_masked else c.text for c in completions]
    rewards = total_rewards(reward_funcs, prompts, texts, completion_ids=[c.tokens for c in completions], **columns)
    return rewards, classify_batch(texts, experts, **columns)


def policy_update(model: nn.Module, optimizer: optim.Optimizer, value_and_grad: Callable, start: int,
                  prefix: dict, suffixes: Sequence, completions: Sequence, advantages: np.ndarray,
                  ref_params: dict | None, beta: float, constrained_policy: bool = False) -> tuple[float, float | None]:
    """One GRPO step on ``completions`` (``len(suffixes)`` groups, in order) with
    their group ``advantages``, given the prefix of :func:`training.sft.compute_prefix`;
    returns the loss and, with a KL reference, the KL. ``constrained_policy``
    scores each token by the constrained policy it was drawn from (the
    completions' ``rejected``, :func:`token_logprobs`)."""
    G = len(completions) // len(suffixes)
    # Without a KL term a completion of zero advantage adds nothing to the loss: leave it out
    # of the forward (most groups, once the router gets an expert right every time).
    kept = [n for n, a in enumerate(advantages) if a != 0 or beta > 0]
    batch = make_batch([(suffixes[n // G], completions[n].tokens) for n in kept])
    batch.pop("num_tokens")
    batch["loss_tokens"] = mx.array(float(sum(len(c.tokens) for c in completions)))
    adv = token_advantages(advantages[kept], [len(completions[n].tokens) for n in kept], batch["labels"].shape[0])
    if constrained_policy:
        per_token = [c.rejected[i] if i < len(c.rejected) else [] for c in (completions[n] for n in kept) for i in range(len(c.tokens))]
        batch["rejected"], batch["rejected_mask"] = rejected_arrays(per_token, batch["labels"].shape[0])
    prefix_hidden = prefix["hidden"]
    h = mx.stop_gradient(frozen_forward(model, prefix, batch["tokens"]))
    mx.eval(h)
    ref_logprobs = None
    if ref_params is not None:
        current = model.trainable_parameters()
        model.update(ref_params)
        ref_logprobs = mx.stop_gradient(token_logprobs(model, start, prefix_hidden, h, batch))
        mx.eval(ref_logprobs)
        model.update(current)
    (loss, kl), grads = value_and_grad(model, start, prefix_hidden, h, batch, adv, ref_logprobs, beta)
    optimizer.update(model, grads)
    mx.eval(model.trainable_parameters(), optimizer.state, loss, kl)
    return loss.item(), (kl.item() if ref_logprobs is not None else None)


def train_rl(
    model: nn.Module,
    tokenizer,
    examples,
    experts,
    config,
    *,
    reward_funcs: Sequence[Callable] | None = None,
    optimizer: optim.Optimizer | None = None,
    start_state: dict | None = None,
    on_iteration: Callable[[dict], None] | None = None,
    save_checkpoint: Callable[[dict], None] | None = None,
    reference: dict | None = None,
    progress: bool = True,
) -> list[dict]:
    """Run ``config.rl_iters`` GRPO iterations on the (already ``setup_trainable``)
    model and return one metrics dict per iteration run.

    ``experts`` maps names to experts (the reward's executors and the system
    prompt's list); ``reward_funcs`` default to the verified reward with the
    config's levels. ``start_state`` (from a checkpoint) resumes after its
    ``iteration``; ``save_checkpoint(state)`` is called every
    ``config.checkpoint_every`` iterations and at the end. ``reference`` is the
    trainable-parameter tree of the KL reference (default: the weights at this
    call, right for a fresh start; pass the post-SFT ones when resuming)."""
    state = dict(start_state or {})
    done = int(state.get("iteration", 0)) if state.get("phase") == "rl" else 0
    history: list[dict] = []
    if done >= config.rl_iters or not examples:
        return history
    reward_funcs = list(reward_funcs or [make_verified_reward(experts, RewardLevels.from_config(config))])
    system = router_system_prompt(list(experts.values()))
    prefix_ids, rows = encode_examples(tokenizer, examples, system, config.query_layout)
    suffixes = [s for s, _ in rows]
    start = first_trained_layer(model)
    prefix = compute_prefix(model, prefix_ids, start)
    stop_ids = sorted({end_of_turn_id(tokenizer), *getattr(tokenizer, "eos_token_ids", ())})
    G = config.num_generations
    beta = float(config.beta)
    constrained_policy = config.constrained_sampling and config.constrained_policy
    max_masked = config.rl_max_masked if config.constrained_sampling else 1.0
    ref_params = (reference if reference is not None else model.trainable_parameters()) if beta > 0 else None
    optimizer = optimizer or optim.Adam(learning_rate=config.rl_learning_rate)
    # Fills only the missing per-parameter state (a restored state is kept), so a
    # checkpoint written before the first update still holds Adam's m and v.
    optimizer.init(model.trainable_parameters())
    value_and_grad = nn.value_and_grad(model, grpo_loss)
    weights = prompt_weights(examples, config.rl_expert_weights)

    bar = tqdm(total=config.rl_iters, initial=done, desc="rl", unit="it", disable=not progress, dynamic_ncols=True)
    for it in range(done, config.rl_iters):
        tic = time.perf_counter()
        picked = select_examples(len(examples), config.rl_batch_size, it, config.seed, weights)
        model.eval()
        groups = sample_completions(
            model,
            tokenizer,
            SharedPrefix(model, prefix_ids, cache=prefix_caches(model, prefix, start)),
            [suffixes[i] for i in picked],
            num_generations=G,
            temperature=config.temperature,
            max_tokens=config.max_completion_length,
            stop_token_ids=stop_ids,
            seed=config.seed * 1_000_003 + it,
            token_checks=(token_checks(experts, tokenizer, [examples[i].query for i in picked], stop_ids, G)
                          if config.constrained_sampling else None),
            record_rejected=constrained_policy or max_masked < 1,
        )
        completions = [c for g in groups for c in g]
        rewards, outcomes = score_completions(reward_funcs, [examples[i] for i in picked], completions, experts, G, max_masked)
        advantages = group_advantages(rewards, G)
        t_sample = time.perf_counter() - tic

        metrics = {"phase": "rl", "iteration": it + 1, **summarize(outcomes, rewards)}
        metrics["completion_tokens"] = float(np.mean([len(c.tokens) for c in completions]))
        metrics["truncated"] = sum(c.finish == "length" for c in completions) / len(completions)
        metrics["loss"], metrics["kl"], metrics["skipped"] = None, None, True
        if np.any(advantages != 0):
            model.train()
            loss, kl = policy_update(model, optimizer, value_and_grad, start, prefix,
                                     [suffixes[i] for i in picked], completions, advantages, ref_params, beta,
                                     constrained_policy)
            metrics["loss"], metrics["kl"], metrics["skipped"] = loss, kl, False
        metrics["sample_seconds"] = t_sample
        metrics["seconds"] = time.perf_counter() - tic
        history.append(metrics)
        bar.set_postfix(reward=f"{metrics['reward_mean']:.2f}", correct=f"{metrics['fraction_correct']:.2f}")
        bar.update(1)
        if on_iteration is not None:
            on_iteration(metrics)
        if save_checkpoint is not None and config.checkpoint_every and (it + 1) % config.checkpoint_every == 0 and it + 1 < config.rl_iters:
            save_checkpoint({"phase": "rl", "iteration": it + 1, "seed": config.seed})
    bar.close()
    if save_checkpoint is not None:
        save_checkpoint({"phase": "rl", "iteration": config.rl_iters, "seed": config.seed, "done": True})
    return history
