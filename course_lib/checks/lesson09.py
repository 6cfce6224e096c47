"""Exercises of lesson 09, decoder-only generation (``solutions/09_decoder_only_gpt.ipynb``).

09.1 ``top_p_filter``  09.2 ``cached_attention_step``  09.3 ``generate_with_cache``
09.4 ``kv_cache_bytes``. All in NumPy, so a graded kernel never imports TensorFlow.

09.3 takes a function (the model's cached step) as an argument. The grader can only send
arrays into a learner's kernel, so its cases hold the weights of a tiny one-layer decoder, and
``invoke`` builds the step function from them in the kernel (counting the tokens each call
feeds, noting a cache that lost what earlier calls wrote) before calling the learner's
``generate_with_cache``; the reference and the mistakes are called the same way.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def top_p_filter(logits, p, temperature):
    """``softmax(logits / temperature)`` kept on the nucleus (the most likely tokens, up to and
    including the one whose running total reaches ``p``; Holtzman et al. 2020), renormalised,
    in the vocabulary's order; ``logits`` ``(..., V)``."""
    probabilities = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    order = np.argsort(-probabilities, axis=-1, kind="stable")
    ranked = np.take_along_axis(probabilities, order, axis=-1)
    mass_before = np.cumsum(ranked, axis=-1) - ranked
    keep = np.zeros(probabilities.shape, dtype=bool)
    np.put_along_axis(keep, order, mass_before < p, axis=-1)
    kept = np.where(keep, probabilities, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def cached_attention_step(x, cache_keys, cache_values, index, Wq, Wk, Wv, Wo, num_heads):
    """Causal multi-head self-attention for the new tokens ``x (B, T, d)`` at positions
    ``index … index + T − 1``, with a cache of projected keys and values ``(B, S, d)``: the new
    keys ``x Wk`` and values ``x Wv`` go into slots ``index … index + T − 1``, then query ``i``
    attends to slots ``j <= index + i``. Returns ``(output (B, T, d), keys, values)``, the
    updated caches. No biases; queries scaled by ``1 / sqrt(d / num_heads)``."""
    x = np.asarray(x, dtype=np.float64)
    batch, length, depth = x.shape
    head_dim = depth // num_heads
    keys, values = np.array(cache_keys, dtype=np.float64), np.array(cache_values,
                                                                     dtype=np.float64)
    keys[:, index:index + length] = x @ Wk
    values[:, index:index + length] = x @ Wv

    def split(tensor):                      # (B, n, d) -> (B, H, n, head_dim)
        return np.swapaxes(tensor.reshape(batch, -1, num_heads, head_dim), 1, 2)

    scores = split(x @ Wq) @ np.swapaxes(split(keys), -1, -2) / np.sqrt(head_dim)
    slots = np.arange(keys.shape[1])
    visible = slots[None, :] <= index + np.arange(length)[:, None]          # (T, S)
    weights = softmax(scores, mask=visible)                                 # (B, H, T, S)
    heads = weights @ split(values)                                         # (B, H, T, hd)
    merged = np.swapaxes(heads, 1, 2).reshape(batch, length, depth)
    return merged @ Wo, keys, values


def generate_with_cache(step, cache, prompt, max_new_tokens):
    """Greedy decoding with a cache: read the prompt in one call at index 0, then feed each
    chosen token alone at its position. Returns the prompt followed by the new tokens."""
    tokens = [int(token) for token in prompt]
    logits, cache = step(np.asarray(tokens), cache, 0)
    for _ in range(max_new_tokens):
        tokens.append(int(np.argmax(logits[-1])))
        if len(tokens) == len(prompt) + max_new_tokens:
            break
        logits, cache = step(np.asarray(tokens[-1:]), cache, len(tokens) - 1)
    return np.asarray(tokens)


def kv_cache_bytes(num_layers, num_heads, d_model, lengths, batch_size, bytes_per_number):
    """Bytes of a key/value cache: keys and values (2) of every layer, for ``batch_size``
    sequences of each length in ``lengths``, each key or value ``d_model`` numbers (the heads
    together: ``num_heads × d_model / num_heads``)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    per_position = 2 * num_layers * d_model * bytes_per_number
    return batch_size * lengths * per_position


# --- The tiny decoder of 09.3 -------------------------------------------------------------------


class TinyDecoder:
    """A one-layer decoder in NumPy with a key/value cache, built from a 09.3 case.

    ``h = E[token] + P[position]``; ``logits = (h + Attention(h)) W_out`` with
    :func:`cached_attention_step` (two heads). ``step(token_ids (T,), cache, index)`` returns
    ``(logits (T, V), cache)`` and leaves its ``cache`` argument unchanged (a new cache comes
    back); it records how many tokens each call fed.
    """

    def __init__(self, case):
        self.case = case
        self.fed = []
        self.lost_keys = False

    def empty_cache(self):
        slots, depth = self.case["cache_slots"], self.case["embeddings"].shape[1]
        return np.zeros((2, slots, depth))

    def step(self, token_ids, cache, index):
        token_ids = np.asarray(token_ids).astype(int).reshape(-1)
        index = int(index)
        cache = np.asarray(cache, dtype=np.float64)
        if not 0 <= index <= cache.shape[1] - len(token_ids):
            raise ValueError(f"step: {len(token_ids)} token(s) at index {index} do not fit "
                             f"in a cache of {cache.shape[1]} slots.")
        self.fed.append(len(token_ids))
        # an all-zero key is an empty slot: a cache that lost what earlier steps wrote
        self.lost_keys |= bool(np.any(np.all(cache[0, :index] == 0, axis=-1)))
        case = self.case
        h = case["embeddings"][token_ids] + case["positions"][index:index + len(token_ids)]
        output, keys, values = cached_attention_step(
            h[None], cache[None, 0], cache[None, 1], index, case["Wq"], case["Wk"],
            case["Wv"], case["Wo"], 2)
        logits = (h + output[0]) @ case["W_out"]
        return logits, np.stack([keys[0], values[0]])

    def tokens_per_step(self):
        """The most tokens fed by one call after the first (the prompt): 1 with a cache."""
        return max(self.fed[1:], default=0)

    def first_call_tokens(self):
        """How many tokens the first call fed: the whole prompt with a cache."""
        return self.fed[0] if self.fed else 0

    def lost_earlier_keys(self):
        """1 when some call got a cache with an empty slot before its index, 0 with a cache
        passed on from call to call."""
        return int(self.lost_keys)


def invoke_with_tiny_decoder(function, case):
    """How 09.3 calls the learner's ``generate_with_cache``: with a tiny decoder's step
    function and empty cache. Returns ``(tokens, tokens_per_step, first_call_tokens,
    lost_earlier_keys)``."""
    decoder = TinyDecoder(case)
    tokens = function(decoder.step, decoder.empty_cache(), np.array(case["prompt"]),
                      int(case["max_new_tokens"]))
    return (tokens, decoder.tokens_per_step(), decoder.first_call_tokens(),
            decoder.lost_earlier_keys())


# --- Wrong answers that learners write ---------------------------------------------------------


def _top_p_variant(rule="reference", temperature_after=False, temperature_power=-1,
                   renormalise=True, sorted_output=False, least_likely_first=False):
    def wrong(logits, p, temperature):
        logits = np.asarray(logits, dtype=np.float64)
        scale = 1.0 if temperature_after else temperature ** temperature_power
        probabilities = softmax(logits * scale)
        order = np.argsort(probabilities if least_likely_first else -probabilities, axis=-1,
                           kind="stable")
        ranked = np.take_along_axis(probabilities, order, axis=-1)
        cumulative = np.cumsum(ranked, axis=-1)
        if rule == "without_crossing":
            keep_ranked = cumulative <= p
        elif rule == "one_more":
            keep_ranked = np.concatenate([np.ones_like(ranked[..., :1], dtype=bool),
                                          (cumulative - ranked < p)[..., :-1]], axis=-1)
        else:
            keep_ranked = cumulative - ranked < p
        if sorted_output:
            kept = np.where(keep_ranked, ranked, 0.0)
        else:
            keep = np.zeros(probabilities.shape, dtype=bool)
            np.put_along_axis(keep, order, keep_ranked, axis=-1)
            source = softmax(logits / temperature) if temperature_after else probabilities
            kept = np.where(keep, source, 0.0)
        return kept / kept.sum(axis=-1, keepdims=True) if renormalise else kept

    return wrong


def _attention_variant(write_at=0, see_up_to=0, update_cache=True, mask=True, scale="head",
                       split_heads=True, transpose_heads=True, store_inputs=False,
                       cache_ignored=False, see_all_new=False, interleaved_heads=False,
                       softmax_axis=-1):
    def wrong(x, cache_keys, cache_values, index, Wq, Wk, Wv, Wo, num_heads):
        x = np.asarray(x, dtype=np.float64)
        batch, length, depth = x.shape
        heads = num_heads if split_heads else 1
        head_dim = depth // heads
        keys, values = np.array(cache_keys, dtype=np.float64), np.array(cache_values,
                                                                         dtype=np.float64)
        start = index + write_at
        keys[:, start:start + length] = x if store_inputs else x @ Wk
        values[:, start:start + length] = x if store_inputs else x @ Wv

        def split(tensor):
            if interleaved_heads:  # head h takes features h, h + H, h + 2H, ...
                return np.moveaxis(tensor.reshape(batch, -1, head_dim, heads), -1, 1)
            if transpose_heads:
                return np.swapaxes(tensor.reshape(batch, -1, heads, head_dim), 1, 2)
            return tensor.reshape(batch, heads, -1, head_dim)

        divisor = {"head": np.sqrt(head_dim), "model": np.sqrt(depth), "none": 1.0}[scale]
        scores = split(x @ Wq) @ np.swapaxes(split(keys), -1, -2) / divisor
        slots = np.arange(keys.shape[1])[None, :]
        rows = np.arange(length)[:, None]
        visible = slots <= index + rows + see_up_to
        if see_all_new:
            visible = np.broadcast_to(slots <= index + length - 1, visible.shape)
        if cache_ignored:
            visible = visible & (slots >= index)
        if not mask:
            visible = np.ones_like(visible)
        weights = softmax(scores, axis=softmax_axis, mask=visible)
        attended = weights @ split(values)
        if interleaved_heads:
            merged = np.moveaxis(attended, 1, -1).reshape(batch, length, depth)
        elif transpose_heads:
            merged = np.swapaxes(attended, 1, 2).reshape(batch, length, depth)
        else:
            merged = attended.reshape(batch, length, depth)
        if not update_cache:
            return merged @ Wo, np.array(cache_keys), np.array(cache_values)
        return merged @ Wo, keys, values

    return wrong


def _generation_variant(index_shift=0, carry_cache=True, recompute=False, last_prompt_only=False,
                        first_prompt_logits=False, prompt_one_by_one=False):
    def wrong(step, cache, prompt, max_new_tokens):
        tokens = [int(token) for token in prompt]
        start = np.asarray(tokens[-1:]) if last_prompt_only else np.asarray(tokens)
        if prompt_one_by_one:
            for position, token in enumerate(tokens[:-1]):
                _, cache = step(np.asarray([token]), cache, position)
            logits, new_cache = step(np.asarray(tokens[-1:]), cache, len(tokens) - 1)
        else:
            logits, new_cache = step(start, cache, 0)
        if carry_cache:  # True, or "prompt": the prompt's cache, never a later one
            cache = new_cache
        chosen = logits[0] if first_prompt_logits else logits[-1]
        for _ in range(max_new_tokens):
            tokens.append(int(np.argmax(chosen)))
            if len(tokens) == len(prompt) + max_new_tokens:
                break
            if recompute:
                logits, new_cache = step(np.asarray(tokens), cache, 0)
            else:
                logits, new_cache = step(np.asarray(tokens[-1:]), cache,
                                         len(tokens) - 1 + index_shift)
            if carry_cache is True:
                cache = new_cache
            chosen = logits[-1]
        return np.asarray(tokens)

    return wrong


def _cache_bytes_variant(keys_and_values=2, per_head=False, layers=True, batch=True,
                         bits=False, head_dim_only=False, float32_always=False):
    def wrong(num_layers, num_heads, d_model, lengths, batch_size, bytes_per_number):
        lengths = np.asarray(lengths, dtype=np.int64)
        if float32_always:
            bytes_per_number = 4
        width = d_model * num_heads if per_head else d_model
        if head_dim_only:
            width = d_model // num_heads
        total = keys_and_values * width * bytes_per_number * lengths
        total = total * (num_layers if layers else 1) * (batch_size if batch else 1)
        return total * 8 if bits else total

    return wrong


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def _spread_logits(rng, shape, spread):
    """Logits with distinct values (no ties in the ranking) spread over ``spread`` nats."""
    return rng.permuted(np.linspace(-spread / 2, spread / 2, shape[-1]) + rng.uniform(
        -0.05, 0.05, size=shape), axis=-1)


def _between_totals(probabilities, rank):
    """A ``p`` halfway between the running totals of the ``rank`` and ``rank + 1`` most likely
    tokens: the ``rank + 1``-th token takes the total across ``p``."""
    ranked = np.sort(probabilities)[::-1]
    totals = np.cumsum(ranked)
    return float((totals[rank - 1] + totals[rank]) / 2)


def top_p_cases(rng):
    """A vocabulary of 12 and a batch of 3 × 9, temperatures 2, 0.5 and 0.7 (so where the
    temperature is applied changes the nucleus), ``p`` set halfway between two running totals
    (so keeping or dropping the token that crosses ``p`` shows), and a ``p`` that keeps the
    single most likely token."""
    cases = []
    logits = _spread_logits(rng, (12,), 6.0)
    temperature = 2.0
    probabilities = softmax(logits / temperature)
    cases.append({"logits": logits, "p": _between_totals(probabilities, 3),
                  "temperature": temperature})
    logits = _spread_logits(rng, (3, 9), 5.0)
    temperature = 0.5
    probabilities = softmax(logits[0] / temperature)
    cases.append({"logits": logits, "p": _between_totals(probabilities, 1),
                  "temperature": temperature})
    logits = _spread_logits(rng, (2, 10), 4.0)
    temperature = 0.7
    top = np.sort(softmax(logits / temperature), axis=-1)[:, -1].min()
    cases.append({"logits": logits, "p": float(top * rng.uniform(0.3, 0.9)),
                  "temperature": temperature})
    return cases


def attention_cases(rng):
    """One step into a half-filled cache (B 2, T 1, S 7, 2 heads), a two-token chunk at
    index 3 (B 1, S 8, 4 heads), and the prompt at index 0 (B 1, T 4, S 6, 2 heads). Slots
    from ``index`` on hold stale values, not zeros, so attending to them or writing in the
    wrong slot changes the output."""
    cases = []
    for batch, length, slots, depth, heads, index in ((2, 1, 7, 8, 2, int(rng.integers(2, 6))),
                                                      (1, 2, 8, 8, 4, 3),
                                                      (1, 4, 6, 6, 2, 0)):
        cases.append({
            "x": rng.normal(size=(batch, length, depth)),
            "cache_keys": rng.normal(size=(batch, slots, depth)),
            "cache_values": rng.normal(size=(batch, slots, depth)),
            "index": index,
            "Wq": rng.normal(scale=depth ** -0.5, size=(depth, depth)) * 2.0,
            "Wk": rng.normal(scale=depth ** -0.5, size=(depth, depth)) * 2.0,
            "Wv": rng.normal(scale=depth ** -0.5, size=(depth, depth)),
            "Wo": rng.normal(scale=depth ** -0.5, size=(depth, depth)),
            "num_heads": heads})
    return cases


def generation_cases(rng):
    """Three tiny decoders (vocabulary 9, d 8, two heads) with strong attention weights, so
    that what a position attends to changes the greedy choice; prompts of 3 to 5 tokens, 5 to
    7 new tokens, a cache with one slot to spare."""
    cases = []
    for prompt_length, new_tokens in ((4, 6), (3, 7), (5, 5)):
        vocabulary, depth = 9, 8
        slots = prompt_length + new_tokens
        cases.append({
            "embeddings": rng.normal(size=(vocabulary, depth)),
            "positions": rng.normal(scale=0.5, size=(slots, depth)),
            "Wq": rng.normal(size=(depth, depth)),
            "Wk": rng.normal(size=(depth, depth)),
            "Wv": rng.normal(size=(depth, depth)),
            "Wo": rng.normal(scale=depth ** -0.5, size=(depth, depth)),
            "W_out": rng.normal(size=(depth, vocabulary)),
            "cache_slots": slots,
            "prompt": rng.integers(0, vocabulary, size=prompt_length),
            "max_new_tokens": new_tokens})
    return cases


def cache_bytes_cases(rng):
    """Models whose layers, heads, width, batch and bytes all differ (so each factor shows),
    each over a few lengths."""
    cases = []
    for layers, heads, d_model, batch, size in ((4, 4, 128, 1, 4), (12, 12, 768, 2, 2),
                                                (int(rng.integers(2, 7)), 8, 512, 3, 4)):
        lengths = np.sort(rng.choice(np.arange(16, 2049), size=4, replace=False))
        cases.append({"num_layers": layers, "num_heads": heads, "d_model": d_model,
                      "lengths": lengths.astype(np.int64), "batch_size": batch,
                      "bytes_per_number": size})
    return cases


# --- Diagnoses read from the outputs ----------------------------------------------------------


def _recomputes(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """After the prompt, a cached loop feeds one token per call."""
    fed = int(np.asarray(mine["tokens_per_step"]).max(initial=0))
    if fed <= 1:
        return None
    return (f"After reading the prompt, your loop fed {fed} tokens in one call: it recomputes "
            f"the keys and values of tokens the cache already holds. Hint: after the prompt, "
            f"each call feeds only the token just chosen, at its own position.")


def _written_slots(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """The new keys must be in slots ``index … index + T − 1``: find where they went."""
    keys = mine["keys"]
    if keys.shape != expected["keys"].shape or np.allclose(keys, expected["keys"]):
        return None
    new_keys = np.asarray(case["x"], dtype=np.float64) @ case["Wk"]          # (B, T, d)
    index, length = int(case["index"]), new_keys.shape[1]
    for start in range(keys.shape[1] - length + 1):
        if start != index and np.allclose(keys[:, start:start + length], new_keys):
            return (f"Your new keys went into slots from {start} on, but the first new token "
                    f"is at position index = {index}, and a token's slot is its position. "
                    f"Hint: write the T new rows where their positions say, whatever slots "
                    f"are already filled.")
    return None


def _nucleus_smallest(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """The kept tokens must be the most likely ones."""
    values = mine["probabilities"]
    reference = expected["probabilities"]
    if values.shape != reference.shape:
        return None
    mine_kept, right_kept = values > 0, reference > 0
    if np.array_equal(mine_kept, right_kept):
        return None
    extra = (mine_kept & ~right_kept).sum()
    missing = (right_kept & ~mine_kept).sum()
    return (f"Your nucleus is not the right set of tokens ({extra} kept that should not be, "
            f"{missing} missing). Hint: rank the tokens from the most likely, after the "
            f"temperature, and keep them until the running total first reaches p.")


# --- The exercises ----------------------------------------------------------------------------

TOP_P_FILTER = Exercise(
    exercise_id="09.1",
    function_name="top_p_filter",
    make_cases=top_p_cases,
    reference=top_p_filter,
    outputs=("probabilities",),
    mistakes=(
        Mistake(_top_p_variant(rule="without_crossing"),
                "You dropped the token whose probability takes the running total across p: the "
                "nucleus is the smallest set of top tokens whose total reaches p, so it "
                "includes that token. Hint: decide for each token from the total of the tokens "
                "ranked above it."),
        Mistake(_top_p_variant(rule="one_more"),
                "You kept one token more than the nucleus: the token after the one that takes "
                "the total across p. Hint: a token belongs to the nucleus when the tokens "
                "ranked above it total less than p."),
        Mistake(_top_p_variant(temperature_after=True),
                "You chose the nucleus from softmax(logits) and applied the temperature after; "
                "the temperature comes first, and it changes which tokens make up p. Hint: "
                "divide the logits by the temperature before the softmax, then filter."),
        Mistake(_top_p_variant(temperature_power=1),
                "You multiplied the logits by the temperature; a temperature divides them (τ "
                "above 1 flattens the distribution). Hint: softmax of logits / temperature."),
        Mistake(_top_p_variant(temperature_power=0),
                "Your filter ignores the temperature. Hint: divide the logits by the "
                "temperature before the softmax."),
        Mistake(_top_p_variant(renormalise=False),
                "Your kept probabilities are not renormalised: they sum to the nucleus's mass, "
                "less than 1. Hint: after zeroing the other tokens, rescale the kept ones so "
                "that each row sums to 1."),
        Mistake(_top_p_variant(sorted_output=True),
                "Your probabilities are in order of likelihood, not in the vocabulary's order: "
                "entry k must be the probability of token k. Hint: map the kept set back "
                "through the order you sorted with."),
        Mistake(_top_p_variant(least_likely_first=True),
                "You built the nucleus from the least likely tokens up. Hint: rank the tokens "
                "from the most likely down before you add up their probabilities."),
    ),
    properties=(sums_to_one("probabilities", over="the vocabulary"), _nucleus_smallest),
    shape_hints={"probabilities": "the shape of logits"},
    nan_hint="a row with no token kept gives 0/0: the most likely token is always in the "
             "nucleus.",
    hint="softmax of logits / temperature, keep the most likely tokens until their total "
         "first reaches p, zero the rest, renormalise.",
)

CACHED_ATTENTION_STEP = Exercise(
    exercise_id="09.2",
    function_name="cached_attention_step",
    make_cases=attention_cases,
    reference=cached_attention_step,
    outputs=("output", "keys", "values"),
    mistakes=(
        Mistake(_attention_variant(update_cache=False),
                "Your output is right but the caches you return are the ones you were given: "
                "the next step would not find these tokens' keys and values. Hint: return the "
                "caches with the new keys and values written in."),
        Mistake(_attention_variant(write_at=1, see_up_to=1),
                "Your new keys and values went one slot too far, into index + 1 onwards: slots "
                "count from 0 and the first new token is at position index. Hint: write the "
                "T new rows into slots index to index + T − 1."),
        Mistake(_attention_variant(see_up_to=-1),
                "Your queries do not see their own key: query i must attend to the slots up to "
                "and including its own position, index + i. Hint: compare each slot with the "
                "query's position using ≤, not <."),
        Mistake(_attention_variant(see_up_to=1),
                "Your queries see one slot past their own position, a stale slot or a later "
                "token. Hint: query i sees slots j with j ≤ index + i."),
        Mistake(_attention_variant(mask=False),
                "Your queries attend to every slot of the cache, also the ones after their own "
                "position, which hold stale values or the future. Hint: mask the slots after "
                "index + i before the softmax."),
        Mistake(_attention_variant(see_all_new=True),
                "Your new tokens see each other in both directions: every query sees all the "
                "slots up to the last new token, index + T − 1, so a token reads the ones "
                "after it. Hint: the last slot a query sees depends on its own position, "
                "index + i."),
        Mistake(_attention_variant(softmax_axis=-2),
                "Your softmax runs over the queries; each query's weights are over the cache "
                "slots it can see, and sum to 1. Hint: which axis of the scores holds the "
                "keys?"),
        Mistake(_attention_variant(interleaved_heads=True),
                "Your heads take every num_heads-th feature; head h owns a block of d / H "
                "consecutive features, h · d_h to (h + 1) · d_h − 1. Hint: when you cut the "
                "last axis into heads, the head axis must come before the within-head axis "
                "(and the same on merging)."),
        Mistake(_attention_variant(cache_ignored=True),
                "Your queries attend only to the new tokens, not to the earlier positions kept "
                "in the cache. Hint: the keys to score are the whole updated cache, up to each "
                "query's position."),
        Mistake(_attention_variant(store_inputs=True),
                "You stored the inputs x in the cache instead of their projections: the cache "
                "holds keys x Wk and values x Wv. Hint: project first, then write."),
        Mistake(_attention_variant(scale="none"),
                "Your scores are missing the 1/√(head dimension) scaling. Hint: divide each "
                "head's query-key dot products by the square root of d / num_heads."),
        Mistake(_attention_variant(scale="model"),
                "You scaled the scores by 1/√d_model; each head's scores are scaled by the "
                "square root of its own depth, d / num_heads. Hint: use the head dimension."),
        Mistake(_attention_variant(split_heads=False),
                "You attended with one head of width d; the layer has num_heads heads, each "
                "over its own d / num_heads features. Hint: split the features into heads "
                "before the scores, merge them back before Wo."),
        Mistake(_attention_variant(transpose_heads=False),
                "Your heads mix positions: reshaping (B, T, d) straight to (B, H, T, d / H) "
                "cuts across tokens. Hint: reshape to (B, T, H, d / H) first, then swap the "
                "token and head axes (and back before merging)."),
    ),
    properties=(_written_slots,),
    shape_hints={"output": "(B, T, d), one row per new token",
                 "keys": "(B, S, d), the whole cache", "values": "(B, S, d), the whole cache"},
    error_hint="x is (B, T, d) and the caches (B, S, d); the new rows go into slots index to "
               "index + T − 1 of axis 1.",
    hint="write x Wk and x Wv into the slots of the new tokens, split heads, let query i "
         "see slots up to index + i, softmax, merge heads, apply Wo.",
)

GENERATE_WITH_CACHE = Exercise(
    exercise_id="09.3",
    function_name="generate_with_cache",
    make_cases=generation_cases,
    reference=generate_with_cache,
    outputs=("tokens", "tokens_per_step", "first_call_tokens", "lost_earlier_keys"),
    mistakes=(
        Mistake(_generation_variant(carry_cache=False),
                "You keep calling step with the cache you started with, so each step sees "
                "only its own token: the cache that step returns holds the new keys and "
                "values. Hint: after each call, use the cache it returned for the next one."),
        Mistake(_generation_variant(carry_cache="prompt"),
                "You give every step the cache that reading the prompt returned, not the one "
                "the step before returned: each new token's keys and values are lost at the "
                "next step. Hint: the cache a call returns is the one the next call needs."),
        Mistake(_generation_variant(index_shift=1),
                "Your cache index is one ahead: you feed the token chosen at position t with "
                "index t + 1, leaving a hole in the cache. Hint: a token's index is its "
                "position in the sequence, counting the prompt from 0."),
        Mistake(_generation_variant(index_shift=-1),
                "Your cache index is one behind: each new token overwrites the slot of the "
                "token before it. Hint: a token's index is its position in the sequence, "
                "counting the prompt from 0."),
        Mistake(_generation_variant(last_prompt_only=True),
                "You fed only the prompt's last token, so the model never read the rest of "
                "the prompt. Hint: the first call reads the whole prompt at index 0."),
        Mistake(_generation_variant(prompt_one_by_one=True),
                "You read the prompt one token per call; the first call reads the whole prompt "
                "at once, at index 0 (the cache is there for what comes after). Hint: feed all "
                "the prompt's tokens in the first call."),
        Mistake(_generation_variant(first_prompt_logits=True),
                "After reading the prompt you chose from the logits of its first position; "
                "the next token follows the last one. Hint: take the logits of the last "
                "position of what you fed."),
    ),
    properties=(_recomputes,),
    shape_hints={"tokens": "the prompt followed by the max_new_tokens new tokens"},
    error_hint="step takes the token ids to feed (a 1-D array), the cache and the index of "
               "the first of them, and returns (logits, cache).",
    hint="feed the prompt once at index 0; then repeatedly take the argmax of the last "
         "logits, append it, and feed it alone at its position with the cache you got back.",
    invoke=invoke_with_tiny_decoder,
    rtol=0.0,
    atol=0.0,
)

KV_CACHE_BYTES = Exercise(
    exercise_id="09.4",
    function_name="kv_cache_bytes",
    make_cases=cache_bytes_cases,
    reference=kv_cache_bytes,
    outputs=("bytes",),
    mistakes=(
        Mistake(_cache_bytes_variant(keys_and_values=1),
                "You counted the keys only: the cache holds a key and a value per position, "
                "head and layer. Hint: there is a factor 2."),
        Mistake(_cache_bytes_variant(per_head=True),
                "You counted d_model numbers per head: the heads split d_model between them, "
                "so together they hold d_model numbers per key. Hint: num_heads × (d_model / "
                "num_heads) = d_model."),
        Mistake(_cache_bytes_variant(head_dim_only=True),
                "You counted one head's d_model / num_heads numbers per key; every head is "
                "cached. Hint: all heads together hold d_model numbers per key."),
        Mistake(_cache_bytes_variant(layers=False),
                "You counted one layer: every layer has its own attention, and its own "
                "cache. Hint: multiply by num_layers."),
        Mistake(_cache_bytes_variant(batch=False),
                "You counted one sequence: each sequence of the batch has its own cache. "
                "Hint: multiply by batch_size."),
        Mistake(_cache_bytes_variant(float32_always=True),
                "Your count does not change with bytes_per_number: you assumed 4 bytes (float32) "
                "for every number. Hint: a float16 cache takes half the bytes; use the size "
                "you are given."),
        Mistake(_cache_bytes_variant(bits=True),
                "Your answer is in bits, 8 times the bytes. Hint: bytes_per_number is "
                "already in bytes."),
    ),
    shape_hints={"bytes": "one number per length: the shape of lengths"},
    hint="count the numbers the cache holds per position (keys and values, every layer, "
         "every head), then multiply by the lengths, the batch and the bytes per number.",
    rtol=0.0,
    atol=0.0,
)

EXERCISES = (TOP_P_FILTER, CACHED_ATTENTION_STEP, GENERATE_WITH_CACHE, KV_CACHE_BYTES)
