"""Exercises of lesson 03, Bahdanau attention (``solutions/03_bahdanau_attention.ipynb``).

03.1 ``BahdanauAttention`` (build: a Keras layer, used in a model)  03.2 ``teacher_forcing_inputs``
03.3 ``clipped_precision``.

The references are NumPy. 03.1's check builds the learner's layer in the learner's kernel, sets
its weights from the case by name, calls it, and (once) trains a small model around it for one
step; Keras is imported there only.
"""

from collections import Counter

import numpy as np

from course_lib.checks.build import describe_layer_call, float32, numpy_of, set_weight
from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

GRADING_TIMEOUT_S = 180
"""Keras's import and the layer's check (with one training step) take about 25 s of one core;
180 s leaves room for a busy machine."""

BAHDANAU_WEIGHTS = ("query_kernel", "values_kernel", "score_vector")

# --- References -----------------------------------------------------------------------------


def additive_scores(query, keys, W1, W2, v):
    """Bahdanau's scores ``e_ij = v . tanh(W1 s_i + W2 h_j)`` for a batch: ``(B, Tq, Tk)``."""
    projected_query = np.asarray(query) @ W1  # (B, Tq, u)
    projected_keys = np.asarray(keys) @ W2  # (B, Tk, u)
    hidden = np.tanh(projected_query[:, :, None, :] + projected_keys[:, None, :, :])
    return hidden @ v  # (B, Tq, Tk, u) @ (u,) -> (B, Tq, Tk)


def _bahdanau(query, values, mask, query_kernel, values_kernel, score_vector, train_step=False,
              *, tanh=True, tanh_after=False, sum_units=False, use_mask=True,
              invert_mask=False, softmax_axis=-1, no_softmax=False, mask_after_softmax=False):
    """Bahdanau attention with switches for the usual mistakes: ``(context, weights,
    trained)``, ``trained`` being 1 for each weight a training step moves: all three, except
    the query kernel without the tanh (its term cancels in the softmax, so its gradient is 0)."""
    query, values = np.asarray(query, dtype=np.float64), np.asarray(values, dtype=np.float64)
    steps = query[:, None, :] if query.ndim == 2 else query  # (B, Tq, dq)
    hidden = (steps @ query_kernel)[:, :, None, :] + (values @ values_kernel)[:, None, :, :]
    if tanh and not tanh_after:
        hidden = np.tanh(hidden)
    scores = hidden.sum(axis=-1) if sum_units else hidden @ score_vector  # (B, Tq, Tv)
    if tanh_after:
        scores = np.tanh(scores)
    keep = np.asarray(mask, dtype=bool)[:, None, :]
    keep = ~keep if invert_mask else keep
    if no_softmax:
        weights = np.where(keep, scores, 0.0) if use_mask else scores
    elif mask_after_softmax:
        weights = softmax(scores, axis=softmax_axis) * keep
    else:
        weights = softmax(scores, axis=softmax_axis, mask=keep if use_mask else None)
    context = weights @ values
    if query.ndim == 2:
        context, weights = context[:, 0], weights[:, 0]
    trained = np.ones(len(BAHDANAU_WEIGHTS))
    if train_step:
        trained[0] = 0.0 if not tanh and not no_softmax else 1.0  # the query term cancels
        trained[2] = 0.0 if sum_units else 1.0  # the score vector is not used
    return context, weights, trained


def bahdanau_attention(query, values, mask, query_kernel, values_kernel, score_vector,
                       train_step=False):
    """Bahdanau attention ``(context, weights)`` for a query ``(B, dq)`` or ``(B, Tq, dq)``,
    values ``(B, Tv, dv)`` and a source mask ``(B, Tv)`` (True at a real token), and a third
    output: 1 for each of the three weights, which a training step must move."""
    return _bahdanau(query, values, mask, query_kernel, values_kernel, score_vector, train_step)


def invoke_bahdanau(layer_class, case):
    """How 03.1 runs the learner's layer, in the learner's kernel: build it, set its weights by
    name, call it; on a case with ``train_step``, also train a small model around it for one
    step and report which of its weights moved."""
    import keras

    units = np.shape(case["score_vector"])[0]
    query, values = float32(case["query"]), float32(case["values"])
    mask = np.asarray(case["mask"], dtype=bool)
    layer = layer_class(units=int(units))
    layer(query, values, mask=mask)  # builds the weights
    for name in BAHDANAU_WEIGHTS:
        set_weight(layer, name, case[name])
    returned = layer(query, values, mask=mask)
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        raise TypeError(f"your layer returned {type(returned).__name__}; it must return the "
                        f"pair (context, weights)")
    context, weights = (numpy_of(value) for value in returned)
    trained = np.ones(len(BAHDANAU_WEIGHTS))
    if case["train_step"]:
        trained = _weights_moved_by_a_training_step(keras, layer_class, units, query, values,
                                                    mask)
    return context, weights, trained


def _weights_moved_by_a_training_step(keras, layer_class, units, query, values, mask):
    """Put a fresh layer in a functional model (symbolic inputs with unknown lengths), take one
    SGD step, and say which of its weights changed."""
    keras.utils.set_random_seed(0)
    query_input = keras.Input(query.shape[1:])
    values_input = keras.Input((None, values.shape[-1]))
    mask_input = keras.Input((None,), dtype="bool")
    layer = layer_class(units=int(units))
    context, _ = layer(query_input, values_input, mask=mask_input)
    model = keras.Model([query_input, values_input, mask_input], keras.layers.Dense(1)(context))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = [numpy_of(getattr(layer, name)) for name in BAHDANAU_WEIGHTS]
    target = np.ones((len(query), *model.output_shape[1:]), dtype="float32")
    model.train_on_batch([query, values, mask], target)
    after = [numpy_of(getattr(layer, name)) for name in BAHDANAU_WEIGHTS]
    # A real gradient moves a weight by about 1e-3 at this learning rate; rounding, by 1e-8.
    return np.array([np.max(np.abs(new - old)) > 1e-5 for old, new in zip(before, after,
                                                                          strict=True)], float)


def describe_bahdanau(case):
    """What 03.1's layer was built with and called on (its weights are set by the check)."""
    return describe_layer_call("BahdanauAttention", {"units": np.shape(case["score_vector"])[0]},
                               {"query": case["query"], "values": case["values"],
                                "mask": case["mask"]})


def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
    """The decoder's inputs under teacher forcing: ``start_id``, then the targets shifted one
    step right, with the end token (which the decoder only ever predicts) made padding."""
    targets = np.asarray(targets)
    inputs = np.empty_like(targets)
    inputs[:, 0] = start_id
    inputs[:, 1:] = targets[:, :-1]
    inputs[:, 1:][inputs[:, 1:] == end_id] = pad_id
    return inputs


def _ngram_counts(tokens, n):
    tokens = [str(token) for token in tokens]
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_precision(candidate, reference, n):
    """BLEU's modified n-gram precision: matches clipped to the reference's counts, divided by
    the candidate's number of n-grams; 0.0 when the candidate has no n-gram."""
    candidate_counts, reference_counts = _ngram_counts(candidate, n), _ngram_counts(reference, n)
    total = sum(candidate_counts.values())
    if total == 0:
        return 0.0
    clipped = sum(min(count, reference_counts[ngram])
                  for ngram, count in candidate_counts.items())
    return clipped / total


# --- Inputs -------------------------------------------------------------------------------------


def _bahdanau_cases(rng):
    """All decoder steps at once with fewer queries than source positions (so a transposed
    result has another shape), one decoder state as a 2-D query (one step of a loop), and more
    queries than source positions; query and value depths that differ; padded sources (each
    keeps a real token). The first case also trains a model around the layer for one step."""
    def attention(batch, n_queries, query_depth, n_values, value_depth, units, train_step):
        lengths = rng.integers(1, n_values + 1, size=batch)
        lengths[0] = n_values  # one source without padding
        query_shape = (batch, query_depth) if n_queries is None else (batch, n_queries,
                                                                      query_depth)
        return {"query": rng.normal(size=query_shape),
                "values": rng.normal(size=(batch, n_values, value_depth)),
                "mask": np.arange(n_values)[None, :] < lengths[:, None],
                "query_kernel": rng.normal(size=(query_depth, units)) / np.sqrt(query_depth),
                "values_kernel": rng.normal(size=(value_depth, units)) / np.sqrt(value_depth),
                "score_vector": 1.5 * rng.normal(size=units), "train_step": train_step}
    return [attention(2, 3, 4, 5, 6, 7, True), attention(3, None, 5, 4, 3, 3, False),
            attention(2, 6, 3, 2, 4, 8, False)]


def _targets(rng, lengths, width, low, high, end_id, pad_id):
    targets = np.full((len(lengths), width), pad_id)
    for row, length in enumerate(lengths):
        targets[row, :length] = rng.integers(low, high, size=length)
        targets[row, length] = end_id
    return targets


def _teacher_forcing_cases(rng):
    """Targets as ``course_lib.data`` makes them (tokens, end token, padding): a full row, whose
    end token the shift pushes out, a row that is only the end token, and ids other than the
    lesson's in the last case."""
    return [
        {"targets": _targets(rng, [3, 5, 0, 2], 6, 3, 13, 2, 0),
         "start_id": 1, "end_id": 2, "pad_id": 0},
        {"targets": _targets(rng, rng.permutation([7, 1, 4]), 8, 3, 13, 2, 0),
         "start_id": 1, "end_id": 2, "pad_id": 0},
        {"targets": _targets(rng, [2, 4, 1], 5, 5, 15, 4, 0),
         "start_id": 3, "end_id": 4, "pad_id": 0},
    ]


WORDS = np.array(["the", "cat", "sat", "on", "mat", "a", "dog", "is", "red"])


def _sentence(text):
    return np.array(text.split())


def _precision_cases(rng):
    """Papineni et al.'s examples (the candidate of seven *the*s, and a bigram case), a
    candidate that repeats bigrams, random sentences with repeated words for n = 1 to 4, and a
    candidate shorter than n."""
    def random_pair(length, n):
        candidate = rng.choice(WORDS[:6], size=length)
        reference = candidate.copy()
        changed = rng.random(length) < 0.4
        reference[changed] = rng.choice(WORDS, size=changed.sum())
        return {"candidate": candidate, "reference": reference[: length - int(rng.integers(3))],
                "n": n}
    return [
        {"candidate": _sentence("the the the the the the the"),
         "reference": _sentence("the cat is on the mat"), "n": 1},
        {"candidate": _sentence("it is a guide to action which ensures that the military "
                                "always obeys the commands of the party"),
         "reference": _sentence("it is a guide to action that ensures that the military will "
                                "forever heed party commands"), "n": 2},
        {"candidate": _sentence("the cat sat on the mat and the cat sat"),
         "reference": _sentence("the cat is on the mat"), "n": 2},
        random_pair(12, 1), random_pair(10, 2), random_pair(14, 3), random_pair(9, 4),
        {"candidate": rng.choice(WORDS, size=2), "reference": rng.choice(WORDS, size=5), "n": 3},
    ]


# --- Wrong implementations that the checks recognise ------------------------------------------


def _counted(precision_of_counts):
    """A precision computed from the two n-gram counters, 0.0 for a candidate without n-grams
    (so that a mistake is recognised whether or not the short case is handled)."""
    def precision(candidate, reference, n):
        candidate_counts = _ngram_counts(candidate, n)
        if not candidate_counts:
            return 0.0
        return precision_of_counts(candidate_counts, _ngram_counts(reference, n))
    return precision


@_counted
def _unclipped_precision(candidate_counts, reference_counts):
    matches = sum(count for ngram, count in candidate_counts.items() if ngram in reference_counts)
    return matches / sum(candidate_counts.values())


@_counted
def _distinct_matches(candidate_counts, reference_counts):
    return len(set(candidate_counts) & set(reference_counts)) / sum(candidate_counts.values())


@_counted
def _distinct_precision(candidate_counts, reference_counts):
    return len(set(candidate_counts) & set(reference_counts)) / len(candidate_counts)


@_counted
def _clipped_recall(candidate_counts, reference_counts):
    clipped = sum(min(count, reference_counts[ngram])
                  for ngram, count in candidate_counts.items())
    return clipped / max(sum(reference_counts.values()), 1)


def _missing_last_ngram(candidate, reference, n):
    return clipped_precision(candidate[:-1], reference[:-1], n)


# --- The exercises ------------------------------------------------------------------------------

def _bahdanau_mistake(**variant):
    def wrong(query, values, mask, query_kernel, values_kernel, score_vector, train_step=False):
        return _bahdanau(query, values, mask, query_kernel, values_kernel, score_vector,
                         train_step, **variant)
    return wrong


def weights_not_trained(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """03.1: a training step of a model around the layer must move all three weights."""
    moved = mine["weights_moved_by_training"]
    if moved.shape != (len(BAHDANAU_WEIGHTS),) or np.all(moved == 1):
        return None
    if not all(mine[name].shape == expected[name].shape
               and np.allclose(mine[name], expected[name], rtol=1e-4, atol=2e-5)
               for name in ("context", "weights")):
        return None  # the numbers are wrong too: the other diagnoses say how
    frozen = ", ".join(name for name, flag in zip(BAHDANAU_WEIGHTS, moved, strict=True)
                       if flag != 1)
    return (f"Your layer computes the right numbers, but in a model a training step leaves "
            f"{frozen} unchanged: no gradient reaches it. Hint: how was each weight created, "
            f"and does the computation go through it with keras.ops?")


def masked_sources_attended(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """03.1: weight on padded source positions."""
    weights = mine["weights"]
    if weights.shape != expected["weights"].shape:
        return None
    mask = np.asarray(case["mask"], dtype=bool)
    padding = ~np.broadcast_to(mask if weights.ndim == 2 else mask[:, None, :], weights.shape)
    if np.allclose(weights[padding], 0.0, atol=1e-6):
        return None
    if np.allclose(weights[~padding], 0.0, atol=1e-6):
        return ("Your mask has the opposite polarity: your weights are on the padding and zero "
                "on the real tokens. Here True marks a real source token (the Keras "
                "convention). Hint: which positions does True mark in `mask`?")
    return ("Your weights are not zero on the padded source positions (mask False). Hint: the "
            "softmax must run over the real tokens only.")


BAHDANAU_ATTENTION = Exercise(
    exercise_id="03.1",
    function_name="BahdanauAttention",
    make_cases=_bahdanau_cases,
    reference=bahdanau_attention,
    outputs=("context", "weights", "weights_moved_by_training"),
    mistakes=(
        Mistake(_bahdanau_mistake(tanh=False),
                "Your scores are missing the tanh: without it vᵀ(W₁s + W₂h) = vᵀW₁s + vᵀW₂h is "
                "a query term plus a key term, and the softmax over the keys cancels the query "
                "term, so every decoder step gets the same weights. Hint: where does the "
                "nonlinearity of the scoring network go?"),
        Mistake(_bahdanau_mistake(tanh_after=True),
                "You apply the tanh after the score vector; the score is v · tanh(W₁s + W₂h). "
                "Hint: the tanh is the hidden layer of the scoring network, before v."),
        Mistake(_bahdanau_mistake(sum_units=True),
                "You summed the hidden units of the scoring network instead of weighting them "
                "by `score_vector`. Hint: v turns each (units,) hidden vector into one score."),
        Mistake(_bahdanau_mistake(use_mask=False),
                "Your layer ignores `mask`: padded source positions get weight. Hint: the "
                "softmax runs over the real source tokens only."),
        Mistake(_bahdanau_mistake(mask_after_softmax=True),
                "You zero the padded positions after the softmax, so the real positions' "
                "weights no longer sum to 1. Hint: the softmax runs over the real positions "
                "only: hide the padding before it."),
        Mistake(_bahdanau_mistake(invert_mask=True),
                "Your mask has the opposite polarity: your weights are on the padding and zero "
                "on the real tokens. Here True marks a real source token (the Keras "
                "convention). Hint: which positions does True mark in `mask`?"),
        Mistake(_bahdanau_mistake(softmax_axis=-2),
                "Your softmax runs over the decoder steps (the queries) instead of the source "
                "positions. Hint: each query's weights over the source positions sum to 1."),
        Mistake(_bahdanau_mistake(no_softmax=True),
                "Your weights are the raw scores: they do not sum to 1. Hint: the weights are a "
                "softmax of the scores over the real source positions."),
    ),
    properties=(weights_not_trained, masked_sources_attended),
    shape_hints={"context": "one vector of the values' depth per query: (B, dv) or (B, Tq, dv)",
                 "weights": "one weight per source position for each query: (B, Tv) or "
                            "(B, Tq, Tv)"},
    invoke=invoke_bahdanau,
    reference_invoke=lambda reference, case: reference(*case.values()),
    describe=describe_bahdanau,
    error_hint="the check builds your layer with `units`, calls it once to build it, sets "
               "query_kernel, values_kernel and score_vector by name, then calls it again (with "
               "a 2-D query too); the error's last line says which step failed.",
    nan_hint="every source of the check has a real token: NaN comes from the softmax itself "
             "(an exp that overflows, or 0/0).",
    hint="compute one weight by hand: the scores of one query against every source position, "
         "then the softmax over the real ones.",
    rtol=1e-4,
    atol=2e-5,
)

def _leak_message(how):
    return (f"Your decoder inputs {how}: the decoder would read the very token it must predict "
            f"(or one after it), the leak that makes teacher-forced training look perfect and "
            f"free-running decoding fail. Hint: what does the decoder see at step t, the target "
            f"of step t or of the step before?")


def reads_the_targets(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """03.2: decoder inputs that equal the targets, or the targets shifted left, on most real
    positions: the leak, however the rest (start, end, padding) was handled."""
    inputs, targets = mine["decoder_inputs"], np.asarray(case["targets"])
    if inputs.shape != targets.shape:
        return None
    real = (targets != case["pad_id"]) & (targets != case["end_id"])
    real[:, 0] = False  # column 0 may hold start_id whatever else the learner did
    if np.mean(inputs[real] == targets[real]) > 0.8:
        return _leak_message("are the targets themselves, unshifted")
    ahead = real[:, 2:]  # input t against target t + 1, for t >= 1
    if ahead.any() and np.mean(inputs[:, 1:-1][ahead] == targets[:, 2:][ahead]) > 0.8:
        return _leak_message("are the targets shifted left, so input t is target t + 1")
    return None


TEACHER_FORCING_INPUTS = Exercise(
    exercise_id="03.2",
    function_name="teacher_forcing_inputs",
    make_cases=_teacher_forcing_cases,
    reference=teacher_forcing_inputs,
    outputs=("decoder_inputs",),
    mistakes=(
        Mistake(lambda targets, start_id, end_id, pad_id: np.array(targets),
                _leak_message("are the targets themselves, unshifted")),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [targets[:, 1:], np.full((len(targets), 1), pad_id)], axis=1),
                _leak_message("are the targets shifted left, so input t is target t + 1")),
        Mistake(lambda targets, start_id, end_id, pad_id: teacher_forcing_inputs(targets),
                "Your function ignores `start_id`, `end_id` and `pad_id` (it uses 1, 2 and 0 "
                "whatever they are). Hint: use the arguments."),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [np.full((len(targets), 1), start_id), targets[:, :-1]], axis=1),
                "Your decoder inputs still contain the end token. The decoder only ever "
                "predicts <end>; the step after it has nothing to predict (its target is "
                "padding), so its input is padding too. Hint: what happens to end_id once it "
                "has moved one step right?"),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [np.full((len(targets), 1), start_id), targets], axis=1),
                "Your decoder inputs are one column longer than the targets: you put start_id "
                "in front but kept the last column. Hint: input t must line up with target t, "
                "so the shift pushes one column out."),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [np.full((len(targets), 1), start_id),
                     np.where(targets == end_id, pad_id, targets)], axis=1),
                "Your decoder inputs are one column longer than the targets: you put start_id "
                "in front but kept the last column. Hint: input t must line up with target t, "
                "so the shift pushes one column out."),
    ),
    properties=(reads_the_targets,),
    shape_hints={"decoder_inputs": "the shape of the targets"},
    hint="write the first row by hand: start_id, then the target tokens, then padding.",
    rtol=0.0,
    atol=0.0,
)

CLIPPED_PRECISION = Exercise(
    exercise_id="03.3",
    function_name="clipped_precision",
    make_cases=_precision_cases,
    reference=clipped_precision,
    outputs=("precision",),
    mistakes=(
        Mistake(_unclipped_precision,
                "Your matches are not clipped: an n-gram that the candidate repeats counts every "
                "time, so 'the the the the the the the' scores 7/7 against 'the cat is on the "
                "mat'. Hint: an n-gram counts at most as often as the reference holds it."),
        Mistake(_distinct_matches,
                "You count each matching n-gram once, however often both sentences hold it. "
                "Hint: an n-gram that both sentences hold twice matches twice."),
        Mistake(_distinct_precision,
                "You work with sets of distinct n-grams; BLEU counts them, repeats included, in "
                "the matches and in the total. Hint: what is the denominator for a candidate "
                "that repeats an n-gram?"),
        Mistake(_clipped_recall,
                "You divide by the number of n-grams in the reference (that is recall); BLEU's "
                "precision divides by the number of n-grams in the candidate. Hint: whose "
                "n-grams does a precision count?"),
        Mistake(_missing_last_ngram,
                "You miss the last n-gram of each sentence: a sentence of length L has L - n + 1 "
                "n-grams. Hint: where does your last n-gram start?"),
    ),
    shape_hints={"precision": "a single number"},
    nan_hint="a candidate shorter than n has no n-gram: return 0.0 rather than 0/0.",
    error_hint="a candidate shorter than n has no n-gram, and its precision is then 0.0; to be "
               "counted, an n-gram must be hashable (a tuple, not a list or an array).",
    hint="work Papineni's example by hand: 'the the the the the the the' against 'the cat is "
         "on the mat' gives 2/7 for n = 1.",
)

EXERCISES = (BAHDANAU_ATTENTION, TEACHER_FORCING_INPUTS, CLIPPED_PRECISION)
