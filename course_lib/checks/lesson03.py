"""Exercises of lesson 03, Bahdanau attention (``solutions/03_bahdanau_attention.ipynb``).

03.1 ``additive_scores``  03.2 ``teacher_forcing_inputs``  03.3 ``clipped_precision``.
All in NumPy, so a graded kernel never imports TensorFlow.
"""

from collections import Counter

import numpy as np

from course_lib.checks.core import Exercise, Mistake
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def additive_scores(query, keys, W1, W2, v):
    """Bahdanau's scores ``e_ij = v . tanh(W1 s_i + W2 h_j)`` for a batch: ``(B, Tq, Tk)``."""
    projected_query = np.asarray(query) @ W1  # (B, Tq, u)
    projected_keys = np.asarray(keys) @ W2  # (B, Tk, u)
    hidden = np.tanh(projected_query[:, :, None, :] + projected_keys[:, None, :, :])
    return hidden @ v  # (B, Tq, Tk, u) @ (u,) -> (B, Tq, Tk)


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


def _score_cases(rng):
    """Fewer queries than keys (so a transposed result has another shape), a single decoder step
    (Tq = 1), more queries than keys, and query and key depths that differ except in one case."""
    def scores(batch, n_queries, query_depth, n_keys, key_depth, units):
        return {"query": rng.normal(size=(batch, n_queries, query_depth)),
                "keys": rng.normal(size=(batch, n_keys, key_depth)),
                "W1": rng.normal(size=(query_depth, units)) / np.sqrt(query_depth),
                "W2": rng.normal(size=(key_depth, units)) / np.sqrt(key_depth),
                "v": rng.normal(size=units)}
    return [scores(2, 3, 4, 5, 6, 7), scores(3, 1, 5, 4, 5, 3), scores(1, 6, 3, 2, 4, 8)]


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

ADDITIVE_SCORES = Exercise(
    exercise_id="03.1",
    function_name="additive_scores",
    make_cases=_score_cases,
    reference=additive_scores,
    outputs=("scores",),
    mistakes=(
        Mistake(lambda query, keys, W1, W2, v: (
                    (query @ W1)[:, :, None, :] + (keys @ W2)[:, None, :, :]) @ v,
                "Your scores are missing the tanh: without it vᵀ(W₁s + W₂h) = vᵀW₁s + vᵀW₂h is "
                "a query term plus a key term, and the softmax over the keys cancels the query "
                "term. Hint: apply np.tanh to the sum before multiplying by v."),
        Mistake(lambda query, keys, W1, W2, v: np.tanh(
                    ((query @ W1)[:, :, None, :] + (keys @ W2)[:, None, :, :]) @ v),
                "You apply the tanh after multiplying by v; the score is v · tanh(W₁s + W₂h). "
                "Hint: tanh the (B, Tq, Tk, units) sum first, then contract its last axis "
                "with v."),
        Mistake(lambda query, keys, W1, W2, v: np.tanh(
                    (query @ W1)[:, :, None, :] + (keys @ W2)[:, None, :, :]).sum(axis=-1),
                "You summed the tanh layer's units instead of weighting them by v. Hint: "
                "multiply by v (hidden @ v) rather than summing over the last axis."),
        Mistake(lambda query, keys, W1, W2, v: softmax(
                    additive_scores(query, keys, W1, W2, v)),
                "You returned the attention weights (a softmax over the keys); this exercise "
                "asks for the scores e before the softmax. Hint: leave out the softmax."),
    ),
    shape_hints={"scores": "one row per query, one column per key, for each batch entry"},
    error_hint="W1 (dq, units) multiplies the query and W2 (dk, units) the keys; to pair every "
               "query with every key, add (B, Tq, 1, units) and (B, 1, Tk, units).",
    hint="compute one score by hand: v @ np.tanh(query[0, 0] @ W1 + keys[0, 0] @ W2).",
)

TEACHER_FORCING_INPUTS = Exercise(
    exercise_id="03.2",
    function_name="teacher_forcing_inputs",
    make_cases=_teacher_forcing_cases,
    reference=teacher_forcing_inputs,
    outputs=("decoder_inputs",),
    mistakes=(
        Mistake(lambda targets, start_id, end_id, pad_id: np.array(targets),
                "Your decoder inputs are the targets themselves: at every step the decoder "
                "would read the very token it must predict, a leak that makes training look "
                "perfect. Hint: shift the targets one step right, behind start_id."),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [targets[:, 1:], np.full((len(targets), 1), pad_id)], axis=1),
                "You shifted the targets left, so the decoder reads the token after the next "
                "one and never sees start_id. Hint: shift right: input t is target t - 1, and "
                "input 0 is start_id."),
        Mistake(lambda targets, start_id, end_id, pad_id: teacher_forcing_inputs(targets),
                "Your function ignores `start_id`, `end_id` and `pad_id` (it uses 1, 2 and 0 "
                "whatever they are). Hint: use the arguments."),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [np.full((len(targets), 1), start_id), targets[:, :-1]], axis=1),
                "Your decoder inputs still contain the end token. The decoder only ever "
                "predicts <end>; the step after it has nothing to predict (its target is "
                "padding), so its input is padding too. Hint: replace end_id by pad_id after "
                "the shift."),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [np.full((len(targets), 1), start_id), targets], axis=1),
                "Your decoder inputs are one column longer than the targets: you put start_id "
                "in front but kept the last column. Hint: drop the targets' last column "
                "(targets[:, :-1]) so that input t lines up with target t."),
        Mistake(lambda targets, start_id, end_id, pad_id: np.concatenate(
                    [np.full((len(targets), 1), start_id),
                     np.where(targets == end_id, pad_id, targets)], axis=1),
                "Your decoder inputs are one column longer than the targets: you put start_id "
                "in front but kept the last column. Hint: drop the targets' last column "
                "(targets[:, :-1]) so that input t lines up with target t."),
    ),
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
                "mat'. Hint: count each n-gram at most as often as it occurs in the reference, "
                "min(candidate count, reference count)."),
        Mistake(_distinct_matches,
                "You count each matching n-gram once, however often both sentences hold it. "
                "Hint: count it min(candidate count, reference count) times (collections."
                "Counter counts them)."),
        Mistake(_distinct_precision,
                "You work with sets of distinct n-grams; BLEU counts them. Hint: count each "
                "n-gram min(candidate count, reference count) times, and divide by the number "
                "of n-grams in the candidate, repeats included."),
        Mistake(_clipped_recall,
                "You divide by the number of n-grams in the reference (that is recall); BLEU's "
                "precision divides by the number of n-grams in the candidate. Hint: a candidate "
                "of length L has L - n + 1 n-grams."),
        Mistake(_missing_last_ngram,
                "You miss the last n-gram of each sentence: a sentence of length L has L - n + 1 "
                "n-grams. Hint: range(len(tokens) - n + 1)."),
    ),
    shape_hints={"precision": "a single number"},
    nan_hint="a candidate shorter than n has no n-gram: return 0.0 rather than 0/0.",
    error_hint="build the n-grams as tuples, tuple(tokens[i:i + n]) for i in "
               "range(len(tokens) - n + 1), count them with collections.Counter, and return "
               "0.0 for a candidate shorter than n.",
    hint="work Papineni's example by hand: 'the the the the the the the' against 'the cat is "
         "on the mat' gives 2/7 for n = 1.",
)

EXERCISES = (ADDITIVE_SCORES, TEACHER_FORCING_INPUTS, CLIPPED_PRECISION)
