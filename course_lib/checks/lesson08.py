"""Exercises of lesson 08, the Transformer block (``solutions/08_transformer_block.ipynb``).

08.1 ``layer_norm``  08.2 ``pre_ln_block``  08.3 ``DecoderBlock`` (build: a Keras layer)
08.4 ``greedy_decode``.

The references are NumPy. 08.3's check builds the learner's block in the learner's kernel (Keras
is imported there only), sets the weights of its sublayers by name, calls it and returns its
outputs as arrays. 08.4's check hands the learner's decoder a small model, a NumPy function of
the case's arrays, in place of a trained translator.

08.2 takes functions (the sublayers and the norms) as arguments. The grader can only send
arrays into a learner's kernel, so its cases hold the sublayers' *weights*, and ``invoke``
builds the functions from them in the kernel before calling the learner's ``pre_ln_block``;
the reference and the mistakes take the weights directly.
"""

import numpy as np

from course_lib.checks.build import describe_layer_call, float32, numpy_of
from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.checks.lesson07 import KERAS_WEIGHTS, multi_head_attention
from course_lib.numpy_softmax import softmax

GRADING_TIMEOUT_S = 180
"""Keras's import and the block's check take about 25 s of one core; 180 s leaves room for a
busy machine."""

# --- References -----------------------------------------------------------------------------


def layer_norm(x, gamma, beta, eps):
    """LayerNorm over the last axis (the features of each token):
    ``gamma * (x - mean) / sqrt(var + eps) + beta``, the variance without Bessel's correction."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(variance + eps) + beta


def feed_forward(x, W1, b1, W2, b2):
    """The position-wise feed-forward network ``max(0, x W1 + b1) W2 + b2`` (Vaswani et al.
    2017, eq. 2), applied to every token alike."""
    return np.maximum(0.0, np.asarray(x) @ W1 + b1) @ W2 + b2


NORM_EPSILON = 1e-5


def make_sublayers(w_mix, w1, w2, gamma1, beta1, gamma2, beta2):
    """The four functions 08.2 passes to ``pre_ln_block``, built from a case's weights:
    ``(self_attention, feed_forward, norm1, norm2)``.

    ``self_attention(h)``: one head with the identity as query and key projections,
    ``softmax(h hᵀ / √d) h W_mix``, so every token mixes the tokens of its sequence;
    ``feed_forward(h) = max(0, h W1) W2``; ``norm1``, ``norm2``: LayerNorm with their own
    ``gamma`` and ``beta``.
    """

    def self_attention(h):
        h = np.asarray(h, dtype=np.float64)
        scores = h @ np.swapaxes(h, -1, -2) / np.sqrt(h.shape[-1])
        return softmax(scores) @ h @ w_mix

    def feed_forward_net(h):
        return np.maximum(0.0, np.asarray(h, dtype=np.float64) @ w1) @ w2

    def norm1(h):
        return layer_norm(h, gamma1, beta1, NORM_EPSILON)

    def norm2(h):
        return layer_norm(h, gamma2, beta2, NORM_EPSILON)

    return self_attention, feed_forward_net, norm1, norm2


def post_ln_block(x, self_attention, feed_forward, norm1, norm2):
    """The block of Vaswani et al. (post-LN): each sublayer's output is added to its input,
    then the sum is normalised."""
    h = norm1(x + self_attention(x))
    return norm2(h + feed_forward(h))


def pre_ln_block(x, self_attention, feed_forward, norm1, norm2):
    """Pre-LN (Xiong et al. 2020): each sublayer reads a normalised copy of its input, and its
    output is added to the input itself, so ``x`` reaches the output through additions only."""
    h = x + self_attention(norm1(x))
    return h + feed_forward(norm2(h))



def invoke_with_sublayers(function, case):
    """How 08.2 calls the learner's ``pre_ln_block``: with functions built from the case."""
    functions = make_sublayers(case["w_mix"], case["w1"], case["w2"], case["gamma1"],
                               case["beta1"], case["gamma2"], case["beta2"])
    return function(np.asarray(case["x"], dtype=np.float64), *functions)


# --- 08.3: the decoder block ---------------------------------------------------------------

ATTENTION_SUBLAYERS = ("self_attention", "cross_attention")
NORM_SUBLAYERS = ("self_attention_norm", "cross_attention_norm", "feed_forward_norm")
DENSE_SUBLAYERS = ("intermediate", "output_dense")


def _sublayer_weights(case: Case, sublayer: str) -> list[np.ndarray]:
    """The weights of one sublayer, in the order of its ``set_weights``."""
    if sublayer in ATTENTION_SUBLAYERS:
        names = KERAS_WEIGHTS
    elif sublayer in NORM_SUBLAYERS:
        names = ("gamma", "beta")
    else:
        names = ("kernel", "bias")
    return [case[f"{sublayer}__{name}"] for name in names]


def _attend(case, sublayer, query, value, mask, causal):
    weights = dict(zip(KERAS_WEIGHTS, _sublayer_weights(case, sublayer), strict=True))
    return multi_head_attention(query, value, value, *weights.values(), mask, causal)[0]


def _decoder_block(case, x, *, causal=True, decoder_padding=True, encoder_padding=True,
                   pre_ln=False, norm_order=NORM_SUBLAYERS, cross_query="h",
                   cross_source="encoder", feed_forward_residual=True, relu=True,
                   invert_encoder_mask=False, norm_the_sublayer=False):
    """The post-LN decoder block on ``x`` (switches: the usual mistakes); padded decoder
    positions are zeroed (a padded token's output means nothing)."""
    x = np.asarray(x, dtype=np.float64)
    encoder = np.asarray(case["encoder_outputs"], dtype=np.float64)
    decoder_real = np.asarray(case["decoder_padding_mask"], dtype=bool)
    encoder_real = np.asarray(case["encoder_padding_mask"], dtype=bool)
    length = x.shape[1]
    self_mask = np.broadcast_to(decoder_real[:, None, :] if decoder_padding else True,
                                (len(x), length, length))
    cross_keys = ~encoder_real if invert_encoder_mask else encoder_real
    cross_mask = np.broadcast_to(cross_keys[:, None, :] if encoder_padding else True,
                                 (len(x), length, encoder.shape[1]))
    if cross_source != "encoder":
        cross_mask = self_mask
    norms = {name: (lambda h, n=name: layer_norm(h, case[f"{n}__gamma"], case[f"{n}__beta"],
                                                 NORM_EPSILON))
             for name in NORM_SUBLAYERS}
    first, second, third = (norms[name] for name in norm_order)

    def step(h, norm, sublayer, residual=True):
        if pre_ln is True or (pre_ln == "first" and sublayer is self_attention):
            return h + sublayer(norm(h))
        if norm_the_sublayer:
            return h + norm(sublayer(h))
        return norm(h + sublayer(h) if residual else sublayer(h))

    def self_attention(h):
        return _attend(case, "self_attention", h, h, self_mask, causal)

    def cross_attention(h):
        query = x if cross_query == "x" else h
        source = encoder if cross_source == "encoder" else h
        return _attend(case, "cross_attention", query, source, cross_mask, False)

    def feed_forward_net(h):
        weights = (case["intermediate__kernel"], case["intermediate__bias"],
                   case["output_dense__kernel"], case["output_dense__bias"])
        if relu:
            return feed_forward(h, *weights)
        return (h @ weights[0] + weights[1]) @ weights[2] + weights[3]

    h = step(x, first, self_attention)
    h = step(h, second, cross_attention)
    output = step(h, third, feed_forward_net, residual=feed_forward_residual)
    return output * decoder_real[:, :, None]


def decoder_block(case):
    """08.3's reference: the post-LN decoder block (Vaswani et al. 2017; keras_hub's
    TransformerDecoder) on ``x`` and on ``changed_x``: ``(output, output on changed_x)``, each
    ``(B, T, d)`` with the padded decoder positions zeroed."""
    return decoder_block_variant(case)


def decoder_block_variant(case, **variant):
    return (_decoder_block(case, case["x"], **variant),
            _decoder_block(case, case["changed_x"], **variant))


def decoder_block_cases(rng):
    """Decoder and encoder batches of other lengths (T ≠ S), the decoder padded on the right in
    one case and on the left in the other (where a real token's self-attention would reach the
    padding before it), two sizes of heads, weights of spread 1/√width, biases, gammas and betas
    far from 0 and 1 (so a missing or misplaced piece shows); ``changed_x`` redraws the decoder
    tokens from position T // 2 on."""
    cases = []
    for (batch, length, source_length, depth, heads, intermediate, decoder_lengths,
         encoder_lengths, left) in ((2, 5, 6, 8, 2, 16, [5, 3], [6, 4], False),
                                    (3, 4, 3, 6, 3, 12, [4, 2, 3], [3, 3, 1], True)):
        x = rng.normal(size=(batch, length, depth))
        changed = x.copy()
        changed[:, length // 2:] = rng.normal(size=(batch, length - length // 2, depth))
        positions, lengths = np.arange(length)[None], np.asarray(decoder_lengths)[:, None]
        case = {"x": x, "encoder_outputs": rng.normal(size=(batch, source_length, depth)),
                "decoder_padding_mask": (positions >= length - lengths) if left else (
                    positions < lengths),
                "encoder_padding_mask": np.arange(source_length)[None] < np.asarray(
                    encoder_lengths)[:, None],
                "changed_x": changed, "num_heads": heads, "intermediate_dim": intermediate}
        key_dim = depth // heads
        for sublayer in ATTENTION_SUBLAYERS:
            shapes = {"query_kernel": (depth, heads, key_dim), "query_bias": (heads, key_dim),
                      "key_kernel": (depth, heads, key_dim), "key_bias": (heads, key_dim),
                      "value_kernel": (depth, heads, key_dim), "value_bias": (heads, key_dim),
                      "output_kernel": (heads, key_dim, depth), "output_bias": (depth,)}
            for name, shape in shapes.items():
                scale = 0.3 if "bias" in name else 1.2 / np.sqrt(shape[0] * (
                    shape[1] if name == "output_kernel" else 1))
                case[f"{sublayer}__{name}"] = scale * rng.normal(size=shape)
        for sublayer in NORM_SUBLAYERS:
            case[f"{sublayer}__gamma"] = rng.uniform(0.5, 2.0, size=depth)
            case[f"{sublayer}__beta"] = rng.normal(scale=0.5, size=depth)
        case["intermediate__kernel"] = rng.normal(size=(depth, intermediate)) / np.sqrt(depth)
        case["intermediate__bias"] = rng.normal(scale=0.5, size=intermediate)
        case["output_dense__kernel"] = rng.normal(size=(intermediate, depth)) / np.sqrt(
            intermediate)
        case["output_dense__bias"] = rng.normal(scale=0.5, size=depth)
        cases.append(case)
    return cases


def invoke_decoder_block(block_class, case):
    """How 08.3 runs the learner's block, in the learner's kernel: build it, set each sublayer's
    weights by its name, call it on ``x`` and ``changed_x``; padded positions are zeroed."""
    block = block_class(num_heads=int(case["num_heads"]),
                        intermediate_dim=int(case["intermediate_dim"]))
    masks = {"decoder_padding_mask": np.asarray(case["decoder_padding_mask"], dtype=bool),
             "encoder_padding_mask": np.asarray(case["encoder_padding_mask"], dtype=bool)}
    encoder = float32(case["encoder_outputs"])
    block(float32(case["x"]), encoder, **masks)  # builds every sublayer
    for sublayer in (*ATTENTION_SUBLAYERS, *NORM_SUBLAYERS, *DENSE_SUBLAYERS):
        layer = getattr(block, sublayer, None)
        if layer is None or not hasattr(layer, "set_weights"):
            raise AttributeError(f"the check sets the weights of your block's sublayers by "
                                 f"name, and it has no sublayer `{sublayer}`")
        weights = [float32(value) for value in _sublayer_weights(case, sublayer)]
        shapes = [tuple(weight.shape) for weight in layer.weights]
        if shapes != [weight.shape for weight in weights]:
            raise ValueError(f"your sublayer `{sublayer}` has weights of shapes {shapes}; the "
                             f"check sets {[weight.shape for weight in weights]}")
        layer.set_weights(weights)
    real = masks["decoder_padding_mask"][:, :, None]
    return tuple(numpy_of(block(float32(case[inputs]), encoder, **masks)) * real
                 for inputs in ("x", "changed_x"))


def describe_decoder_block(case):
    """What 08.3's block was built with and called on (its sublayers' weights are set)."""
    return describe_layer_call(
        "DecoderBlock", {"num_heads": int(case["num_heads"]),
                         "intermediate_dim": int(case["intermediate_dim"])},
        {"x": case["x"], "encoder_outputs": case["encoder_outputs"],
         "decoder_padding_mask": case["decoder_padding_mask"],
         "encoder_padding_mask": case["encoder_padding_mask"]})


# --- 08.4: greedy decoding ---------------------------------------------------------------------


def toy_model(token_logits, position_logits, source_logits):
    """A small stand-in for a trained translator, ``model((source_ids, decoder_ids)) -> logits
    (B, t, V)``: step t's logits depend on the decoder's token at t, the position t and the
    source (the sum of its ids), so each row writes its own sequence and ends when it will."""
    token_logits, position_logits = np.asarray(token_logits), np.asarray(position_logits)
    source_logits = np.asarray(source_logits)

    def model(inputs):
        source_ids, decoder_ids = (np.asarray(value) for value in inputs)
        steps = decoder_ids.shape[1]
        source_part = source_logits[source_ids.sum(axis=1) % len(source_logits)]  # (B, V)
        return (token_logits[decoder_ids] + position_logits[None, :steps]
                + source_part[:, None, :])

    return model


def _greedy(model, source_ids, start_id, end_id, max_length, pad_id, *, logits_step=-1,
            keep_start=False, pad_after_end=True, stop_together=False, steps=None,
            end_kept=True, feedback=True):
    """Greedy decoding with switches for the usual mistakes."""
    source_ids = np.asarray(source_ids)
    if not feedback:  # one call, start_id at every step: never reads its own outputs
        decoded = np.full((len(source_ids), max_length), start_id)
        logits = np.asarray(model((source_ids, decoded)))
        decoded = np.concatenate([decoded[:, :1], logits.argmax(axis=-1)], axis=1)
        steps = 0
    else:
        decoded = np.full((len(source_ids), 1), start_id)
    for _ in range({"short": max_length - 1, 0: 0}.get(steps, max_length)):
        logits = np.asarray(model((source_ids, decoded)))
        decoded = np.concatenate([decoded, logits[:, logits_step].argmax(axis=-1)[:, None]],
                                 axis=1)
    tokens = decoded if keep_start else decoded[:, 1:]
    ended = np.cumsum(tokens == end_id, axis=1)
    if pad_after_end:
        after = (ended - (tokens == end_id) if end_kept else ended) > 0
        tokens = np.where(after, pad_id, tokens)
    if stop_together and np.any(tokens == end_id):
        first_end = int(np.min(np.argmax(tokens == end_id, axis=1)[np.any(tokens == end_id,
                                                                          axis=1)]))
        tokens[:, first_end + 1:] = pad_id
    return tokens


def greedy_decode(source_ids, start_id, end_id, max_length, pad_id, token_logits,
                  position_logits, source_logits):
    """08.4's reference: the tokens written at steps 1 to ``max_length``, ``pad_id`` after each
    row's first ``end_id`` (which is kept)."""
    model = toy_model(token_logits, position_logits, source_logits)
    return _greedy(model, source_ids, start_id, end_id, max_length, pad_id)


def invoke_greedy_decode(function, case):
    """How 08.4 calls the learner's decoder: with the toy model built from the case."""
    model = toy_model(case["token_logits"], case["position_logits"], case["source_logits"])
    return function(model, np.asarray(case["source_ids"]), int(case["start_id"]),
                    int(case["end_id"]), int(case["max_length"]), int(case["pad_id"]))


def _greedy_mistake(**variant):
    def wrong(source_ids, start_id, end_id, max_length, pad_id, token_logits, position_logits,
              source_logits):
        model = toy_model(token_logits, position_logits, source_logits)
        return _greedy(model, source_ids, start_id, end_id, max_length, pad_id, **variant)
    return wrong


def greedy_cases(rng):
    """Batches whose rows end at different steps (one never ends within max_length), the
    lesson's ids and others (start 5, end 9, pad 0 in a vocabulary of 12). The toy model makes
    the end token likelier as the steps go on, at a pace that differs by source."""
    cases = []
    for batch, vocabulary, start_id, end_id, pad_id, max_length in ((4, 10, 1, 2, 0, 7),
                                                                     (5, 12, 5, 9, 0, 9),
                                                                     (3, 8, 1, 2, 0, 5)):
        token_logits = 2.0 * rng.normal(size=(vocabulary, vocabulary))
        token_logits[:, [start_id, pad_id]] = -10.0  # never written
        position_logits = rng.normal(scale=0.5, size=(max_length + 1, vocabulary))
        position_logits[:, end_id] += np.linspace(-6, 5, max_length + 1)
        source_logits = rng.normal(scale=1.5, size=(7, vocabulary))
        source_logits[:, end_id] = np.linspace(-3, 3, 7)
        source_ids = rng.integers(3, vocabulary, size=(batch, 4))
        cases.append({"source_ids": source_ids, "start_id": start_id, "end_id": end_id,
                      "max_length": max_length, "pad_id": pad_id, "token_logits": token_logits,
                      "position_logits": position_logits, "source_logits": source_logits})
    return cases


def describe_greedy(case):
    """What 08.4's decoder was given: a model (not the arrays it is made of) and the ids."""
    return (f"a model, source_ids of shape {np.shape(case['source_ids'])}, "
            f"start_id={case['start_id']}, end_id={case['end_id']}, "
            f"max_length={case['max_length']}, pad_id={case['pad_id']}")


def first_difference(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """08.4: where the learner's tokens first leave greedy decoding, and what that looks like."""
    tokens, right = mine["tokens"], expected["tokens"]
    if tokens.shape != right.shape:
        return None
    end_id, pad_id = case["end_id"], case["pad_id"]
    wrong_rows = [row for row in range(len(tokens)) if not np.array_equal(tokens[row], right[row])]
    if not wrong_rows:
        return None
    row = wrong_rows[0]
    step = int(np.argmax(tokens[row] != right[row]))
    ends = [np.flatnonzero(right[r] == end_id) for r in range(len(right))]
    own_end = ends[row][0] if len(ends[row]) else None
    if own_end is not None and step > own_end:
        return ("Your rows go on after their end token. Hint: once a row has written end_id, "
                "every position after it is pad_id.")
    if own_end is not None and step == own_end and tokens[row, step] == pad_id:
        return ("Your rows lose their end token: it is replaced by padding too. Hint: the end "
                "token is written, and only what comes after it is padding.")
    other_ends = [int(found[0]) for found in ends if len(found)]
    if tokens[row, step] == pad_id and other_ends and min(other_ends) < step:
        return ("Your decoding stops a row that has not ended because another row has. Hint: "
                "each row ends on its own; the loop stops when every row has ended (or at "
                "max_length).")
    return (f"Row {row} of your tokens first differs from greedy decoding at step {step + 1} "
            f"(you wrote {int(tokens[row, step])}, the model's most likely token there is "
            f"{int(right[row, step])}). Hint: what does the model see at that step, and which "
            f"of its logits belong to the next token?")


# --- Wrong answers that learners write ---------------------------------------------------------


def _layer_norm_variant(axis=-1, ddof=0, eps_outside=False, no_eps=False, swap=False,
                        affine=True, divide_by_variance=False):
    def wrong(x, gamma, beta, eps):
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=axis, keepdims=True)
        variance = x.var(axis=axis, ddof=ddof, keepdims=True)
        if divide_by_variance:
            spread = variance + eps
        elif eps_outside:
            spread = np.sqrt(variance) + eps
        else:
            spread = np.sqrt(variance + (0.0 if no_eps else eps))
        normalised = (x - mean) / spread
        if not affine:
            return normalised
        return beta * normalised + gamma if swap else gamma * normalised + beta

    return wrong


def _post_ln(x, attention, ff, norm1, norm2):
    return post_ln_block(x, attention, ff, norm1, norm2)


def _norm_on_the_residual(x, attention, ff, norm1, norm2):
    h = norm1(x) + attention(norm1(x))
    return norm2(h) + ff(norm2(h))


def _second_residual_from_the_input(x, attention, ff, norm1, norm2):
    h = x + attention(norm1(x))
    return x + ff(norm2(h))


def _norms_swapped(x, attention, ff, norm1, norm2):
    h = x + attention(norm2(x))
    return h + ff(norm1(h))


def _norm_after_the_sublayer(x, attention, ff, norm1, norm2):
    h = x + norm1(attention(x))
    return h + norm2(ff(h))


def _no_residuals(x, attention, ff, norm1, norm2):
    return ff(norm2(attention(norm1(x))))


def _both_sublayers_on_the_input(x, attention, ff, norm1, norm2):
    return x + attention(norm1(x)) + ff(norm2(x))


def _final_norm(x, attention, ff, norm1, norm2):
    h = x + attention(norm1(x))
    return norm2(h + ff(norm2(h)))


def _norm1_for_both(x, attention, ff, norm1, norm2):
    h = x + attention(norm1(x))
    return h + ff(norm1(h))


def _no_norm_before_feed_forward(x, attention, ff, norm1, norm2):
    h = x + attention(norm1(x))
    return h + ff(h)


def _no_norm_before_attention(x, attention, ff, norm1, norm2):
    h = x + attention(x)
    return h + ff(norm2(h))


def _post_ln_without_its_last_norm(x, attention, ff, norm1, norm2):
    h = norm1(x + attention(x))
    return h + ff(h)


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def layer_norm_cases(rng):
    """Tokens × features with T ≠ d (so a norm over the tokens has another pattern), a batch
    with two leading axes, rows far from mean 0 and variance 1, and a nearly constant row with
    a large ``eps`` (so where ``eps`` goes shows); ``gamma`` and ``beta`` not 1 and 0."""
    cases = []
    for shape, eps in (((5, 4), 1e-5), ((2, 3, 6), 0.5), ((4, 8), 1e-3)):
        x = rng.normal(loc=2.0, scale=3.0, size=shape)
        if shape == (4, 8):
            x[1] = 0.7 + 0.01 * rng.normal(size=8)  # variance 1e-4, below eps
        depth = shape[-1]
        cases.append({"x": x, "gamma": rng.uniform(0.5, 2.0, size=depth),
                      "beta": rng.normal(size=depth), "eps": eps})
    return cases


def pre_ln_cases(rng):
    """Batches ``(B, T, d)`` whose tokens are far from normalised (so a norm in the wrong place
    changes the numbers), weights of spread 1/√width, two norms with different gammas and betas
    (so swapping them shows)."""
    cases = []
    for batch, length, depth, hidden in ((2, 4, 6, 12), (1, 5, 4, 8), (3, 3, 8, 16)):
        cases.append({
            "x": rng.normal(loc=1.0, scale=2.0, size=(batch, length, depth)),
            "w_mix": rng.normal(scale=depth ** -0.5, size=(depth, depth)),
            "w1": rng.normal(scale=depth ** -0.5, size=(depth, hidden)),
            "w2": rng.normal(scale=hidden ** -0.5, size=(hidden, depth)),
            "gamma1": rng.uniform(0.5, 1.5, size=depth), "beta1": rng.normal(size=depth),
            "gamma2": rng.uniform(1.5, 2.5, size=depth), "beta2": rng.normal(size=depth)})
    return cases


# --- Diagnoses read from the outputs ----------------------------------------------------------


def _layer_norm_moments(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """After undoing gamma and beta, each token's features should have mean 0."""
    normalised = (mine["output"] - case["beta"]) / case["gamma"]
    means = normalised.mean(axis=-1)
    if np.allclose(means, 0.0, atol=1e-3):
        return None
    return ("After undoing gamma and beta, your tokens' features do not have mean 0 (the means "
            f"go from {means.min():.3g} to {means.max():.3g}). Hint: what is taken away "
            "from each feature before dividing?")


# --- The exercises ----------------------------------------------------------------------------

LAYER_NORM = Exercise(
    exercise_id="08.1",
    function_name="layer_norm",
    make_cases=layer_norm_cases,
    reference=layer_norm,
    outputs=("output",),
    mistakes=(
        Mistake(_layer_norm_variant(axis=-2),
                "You normalised over axis -2, across the tokens (as batch norm does across a "
                "batch); LayerNorm normalises each token over its own features. Hint: which "
                "axis holds a token's features?"),
        Mistake(_layer_norm_variant(axis=0),
                "You normalised over axis 0; LayerNorm normalises each token over its own "
                "features, the last axis. Hint: which axis holds a token's features?"),
        Mistake(_layer_norm_variant(axis=None),
                "You normalised with the mean and variance of the whole array; LayerNorm uses "
                "each token's own. Hint: one mean and one variance per token."),
        Mistake(_layer_norm_variant(ddof=1),
                "Your variance divides by d − 1 (Bessel's correction, as pandas and torch.var "
                "do by default); LayerNorm divides by d. Hint: check the degrees of freedom of "
                "your variance."),
        Mistake(_layer_norm_variant(eps_outside=True),
                "Your eps is outside the square root: (x − mean) / (sqrt(var) + eps). Keras, "
                "PyTorch and the paper put it inside. Hint: the difference shows on a nearly "
                "constant token."),
        Mistake(_layer_norm_variant(no_eps=True),
                "You left out eps: a nearly constant token gets divided by almost 0. Hint: eps "
                "is added to the variance."),
        Mistake(_layer_norm_variant(divide_by_variance=True),
                "You divided by the variance (plus eps), not by its square root, the standard "
                "deviation. Hint: the normalised features have variance 1."),
        Mistake(_layer_norm_variant(swap=True),
                "You swapped gamma and beta: gamma scales the normalised values, beta shifts "
                "them. Hint: which one multiplies?"),
        Mistake(_layer_norm_variant(affine=False),
                "You returned the normalised values without gamma and beta. Hint: the layer "
                "ends with its learned scale and shift."),
    ),
    properties=(_layer_norm_moments,),
    shape_hints={"output": "the shape of x"},
    nan_hint="a token whose features are all equal has variance 0: that is what eps is for.",
    hint="normalise one token (one slice x[..., t, :]) by hand and compare it with yours.",
)

PRE_LN_BLOCK = Exercise(
    exercise_id="08.2",
    function_name="pre_ln_block",
    make_cases=pre_ln_cases,
    reference=pre_ln_block,
    outputs=("output",),
    mistakes=(
        Mistake(_post_ln,
                "That is the post-LN block you were given: norm(x + sublayer(x)). Pre-LN "
                "normalises the sublayer's input and adds its output to the un-normalised x. "
                "Hint: what does each sublayer read, and what is its output added to?"),
        Mistake(_norm_on_the_residual,
                "You add the sublayer's output to norm(x), so the residual path goes through "
                "every LayerNorm and x is lost. Hint: only the sublayer's input is normalised."),
        Mistake(_second_residual_from_the_input,
                "Your second residual adds the block's input x instead of h, the output of the "
                "first step, so self-attention's contribution is dropped. Hint: the second step "
                "starts from where the first ended."),
        Mistake(_norms_swapped,
                "You swapped the norms: norm1 belongs to self-attention, norm2 to the "
                "feed-forward net (each has its own gamma and beta). Hint: which norm goes with "
                "which sublayer?"),
        Mistake(_norm_after_the_sublayer,
                "You normalise the sublayer's output, x + norm(sublayer(x)); pre-LN normalises "
                "its input. Hint: which side of the sublayer does the norm go on?"),
        Mistake(_no_residuals,
                "Your block has no residual connections: the output is the sublayers' "
                "output alone. Hint: each sublayer's output is added to its input."),
        Mistake(_both_sublayers_on_the_input,
                "Both sublayers read the block's input x, side by side; in a Transformer block "
                "the feed-forward net reads h, the output of the self-attention step. Hint: the "
                "two steps run one after the other."),
        Mistake(_final_norm,
                "You normalise the block's output: pre-LN returns the sum itself, so that x "
                "reaches the output through additions only (the final LayerNorm comes once, "
                "after the whole stack). Hint: what is the last operation of the block?"),
        Mistake(_norm1_for_both,
                "You use norm1 before both sublayers; norm2, with its own gamma and beta, "
                "belongs to the feed-forward step. Hint: which norm goes with which sublayer?"),
        Mistake(_no_norm_before_feed_forward,
                "The feed-forward net reads h unnormalised: the second norm is missing. Hint: "
                "each sublayer reads a normalised copy of its input."),
        Mistake(_no_norm_before_attention,
                "Self-attention reads x unnormalised: the first norm is missing. Hint: each "
                "sublayer reads a normalised copy of its input."),
        Mistake(_post_ln_without_its_last_norm,
                "Your first step is post-LN, norm(x + attention(x)), and your second step has "
                "no norm at all: the post-LN block with its final norm missing. Hint: in pre-LN "
                "each sublayer reads a normalised copy of its input, and the sum is left "
                "as it is."),
    ),
    shape_hints={"output": "(B, T, d), the shape of x"},
    hint="write both steps as equations first: what each sublayer reads, and what its output "
         "is added to.",
    invoke=invoke_with_sublayers,
    describe=lambda case: (f"x of shape {np.shape(case['x'])} and four functions, "
                           f"self_attention, feed_forward, norm1 and norm2"),
)


def _block_mistake(**variant):
    def wrong(case):
        return decoder_block_variant(case, **variant)
    return wrong


def block_future_leaks(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """08.3: the outputs before position T // 2 must not move when only later tokens change."""
    output, changed = mine["output"], mine["output_with_later_tokens_changed"]
    if output.shape != changed.shape or output.ndim != 3:
        return None
    first = int(np.flatnonzero(np.any(case["changed_x"] != case["x"], axis=(0, 2)))[0])
    moved = ~np.all(np.isclose(output[:, :first], changed[:, :first], atol=1e-4), axis=-1)
    real = np.asarray(case["decoder_padding_mask"], dtype=bool)[:, :first]
    if np.any(moved & real):
        b, i = np.argwhere(moved & real)[0]
        return (f"The future leaks: the output of token {i} of sequence {b} changes when only "
                f"the decoder's tokens from position {first} on change. Hint: which keys may "
                f"the decoder's self-attention see?")
    return None


DECODER_BLOCK = Exercise(
    exercise_id="08.3",
    function_name="DecoderBlock",
    make_cases=decoder_block_cases,
    reference=decoder_block,
    outputs=("output", "output_with_later_tokens_changed"),
    mistakes=(
        Mistake(_block_mistake(causal=False),
                "Your decoder's self-attention has no causal mask: each token attends to the "
                "tokens after it, so the future leaks. Hint: a decoder's token i may see the "
                "tokens up to i only."),
        Mistake(_block_mistake(decoder_padding=False),
                "Your self-attention lets real tokens attend to the decoder's padding: "
                "`decoder_padding_mask` is ignored, or it hides queries (rows) instead of keys. "
                "Hint: padded decoder tokens must be hidden as keys, the columns of the mask."),
        Mistake(_block_mistake(encoder_padding=False),
                "Your cross-attention ignores `encoder_padding_mask`: the decoder attends to "
                "the encoder's padding. Hint: padded source tokens must be hidden as keys."),
        Mistake(_block_mistake(invert_encoder_mask=True),
                "Your cross-attention's mask has the opposite polarity: it attends to the "
                "encoder's padding and ignores its real tokens. Here True marks a real token "
                "(the Keras convention). Hint: which tokens does True mark?"),
        Mistake(_block_mistake(pre_ln=True),
                "Your block is pre-LN, x + sublayer(norm(x)); this exercise's block is post-LN, "
                "norm(x + sublayer(x)), as Vaswani et al.'s and keras_hub's default. Hint: is "
                "the norm applied to the sublayer's input or to the sum?"),
        Mistake(_block_mistake(pre_ln="first"),
                "Your self-attention step is pre-LN, x + SelfAttention(norm(x)), while the "
                "others are post-LN: this block is post-LN throughout, norm(x + sublayer(x)). "
                "Hint: is the first norm applied to the sublayer's input or to the sum?"),
        Mistake(_block_mistake(norm_the_sublayer=True),
                "You normalise each sublayer's output and then add it to its input, "
                "x + norm(sublayer(x)); post-LN normalises the sum, norm(x + sublayer(x)). "
                "Hint: does the norm come before or after the residual addition?"),
        Mistake(_block_mistake(norm_order=("cross_attention_norm", "self_attention_norm",
                                           "feed_forward_norm")),
                "You swapped the norms of the two attention steps: each sublayer has its own "
                "norm, with its own gamma and beta. Hint: which norm goes with which sublayer?"),
        Mistake(_block_mistake(cross_query="x"),
                "Your cross-attention's queries come from the block's input x; they come from "
                "h, the output of the self-attention step. Hint: the three steps run one after "
                "the other."),
        Mistake(_block_mistake(cross_source="decoder"),
                "Your cross-attention attends to the decoder's own tokens: its keys and values "
                "must come from `encoder_outputs`. Hint: what does a decoder attend to in its "
                "second step?"),
        Mistake(_block_mistake(feed_forward_residual=False),
                "Your feed-forward step has no residual connection: its output replaces h "
                "instead of being added to it. Hint: every sublayer's output is added to its "
                "input before the norm."),
        Mistake(_block_mistake(relu=False),
                "Your feed-forward net has no ReLU: two linear maps in a row are one linear "
                "map. Hint: the intermediate layer has an activation."),
    ),
    properties=(block_future_leaks,),
    shape_hints={"output": "(B, T, d), the shape of x",
                 "output_with_later_tokens_changed": "(B, T, d), the shape of x"},
    invoke=invoke_decoder_block,
    reference_invoke=lambda reference, case: reference(case),
    describe=describe_decoder_block,
    error_hint="the check builds your block with num_heads and intermediate_dim, calls it once "
               "to build its sublayers, sets each sublayer's weights by its name, then calls it "
               "again; keras.layers.MultiHeadAttention's attention_mask is (B, T_query, T_key).",
    hint="compare one step at a time: the self-attention step alone, then the cross-attention "
         "step, then the feed-forward step, each with its residual and its norm.",
    rtol=1e-4,
    atol=5e-5,
)

GREEDY_DECODE = Exercise(
    exercise_id="08.4",
    function_name="greedy_decode",
    make_cases=greedy_cases,
    reference=greedy_decode,
    outputs=("tokens",),
    mistakes=(
        Mistake(_greedy_mistake(logits_step=0),
                "You take the logits of the first decoder step at every step, so your decoder "
                "never moves on. Hint: the model returns logits for every position of the "
                "decoder input; which one predicts the next token?"),
        Mistake(_greedy_mistake(feedback=False),
                "Your decoder never reads its own output: it feeds start_id at every step (one "
                "call for all steps), as if the next inputs were known. Hint: what does the "
                "model see at step t, when it decodes on its own?"),
        Mistake(_greedy_mistake(keep_start=True),
                "Your tokens begin with start_id: one column too many. Hint: return the tokens "
                "written at steps 1 to max_length, not the decoder's input."),
        Mistake(_greedy_mistake(pad_after_end=False),
                "Your rows go on after their end token. Hint: once a row has written end_id, "
                "everything after it is pad_id."),
        Mistake(_greedy_mistake(end_kept=False),
                "Your rows lose their end token: it is replaced by padding too. Hint: the end "
                "token is written, and only what comes after it is padding."),
        Mistake(_greedy_mistake(stop_together=True),
                "Your decoding stops every row when the first row ends. Hint: each row ends on "
                "its own; the loop stops when every row has ended (or at max_length)."),
        Mistake(_greedy_mistake(steps="short"),
                "Your tokens are one step short: you decode max_length - 1 steps. Hint: count "
                "the steps you run."),
    ),
    properties=(first_difference,),
    shape_hints={"tokens": "(B, max_length): the tokens of steps 1 to max_length"},
    invoke=invoke_greedy_decode,
    reference_invoke=lambda reference, case: reference(*case.values()),
    describe=describe_greedy,
    error_hint="the model takes the pair (source_ids, decoder_ids), decoder_ids an integer "
               "array (B, t) that starts with start_id, and returns logits (B, t, V).",
    rtol=0.0,
    atol=0.0,
)

EXERCISES = (LAYER_NORM, PRE_LN_BLOCK, DECODER_BLOCK, GREEDY_DECODE)
