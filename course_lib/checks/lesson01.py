"""Exercises of lesson 01, the bottleneck (``solutions/01_the_bottleneck.ipynb``).

01.1 ``reversal_targets``  01.2 ``masked_mean_pool``  01.3 ``token_and_sequence_accuracy``.
All in NumPy, so a graded kernel never imports TensorFlow.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, matches_variant

# --- References -----------------------------------------------------------------------------


def reversal_targets(sources, end_id=2, pad_id=0):
    """Each row's real tokens reversed, then ``end_id``, then padding: ``(N, S + 1)``."""
    sources = np.asarray(sources)
    targets = np.full((sources.shape[0], sources.shape[1] + 1), pad_id, dtype=sources.dtype)
    for row, source in enumerate(sources):
        tokens = source[source != pad_id]
        targets[row, :len(tokens)] = tokens[::-1]
        targets[row, len(tokens)] = end_id
    return targets


def masked_mean_pool(encoder_outputs, mask):
    """The mean of each sequence's encoder outputs over its real positions; zeros for a
    sequence with none."""
    encoder_outputs = np.asarray(encoder_outputs, dtype=np.float64)
    weights = np.asarray(mask, dtype=np.float64)[..., None]  # (B, S, 1)
    totals = np.sum(encoder_outputs * weights, axis=1)  # (B, d)
    counts = np.sum(weights, axis=1)  # (B, 1)
    return np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)


def token_and_sequence_accuracy(predictions, targets, pad_id=0):
    """``(token accuracy, sequence accuracy)`` over the real (non-pad) target positions."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    real = targets != pad_id
    correct = (predictions == targets) & real
    token = correct.sum() / real.sum()
    sequence = np.mean(np.all(correct | ~real, axis=1))
    return float(token), float(sequence)


# --- Inputs: small, and shaped so that each usual mistake shows -----------------------------


def _masked_mean_pool_cases(rng):
    """Batch, length and width all different (so a mean over the wrong axis changes the shape),
    padded positions holding non-zero values (as a GRU's outputs do), a sequence with no
    padding and, in the second case, one with no real token."""
    def pool(batch, length, depth, lengths):
        mask = np.arange(length) < np.asarray(lengths)[:, None]
        return {"encoder_outputs": rng.normal(size=(batch, length, depth)), "mask": mask}

    return [pool(3, 5, 4, rng.permutation([5, 2, 3])),
            pool(4, 7, 3, [6, 0, 7, 1]),
            pool(2, 6, 5, rng.integers(1, 6, size=2))]


def _padded_rows(rng, lengths, width, low, high, pad_id):
    rows = np.full((len(lengths), width), pad_id)
    for row, length in enumerate(lengths):
        rows[row, :length] = rng.integers(low, high, size=length)
    return rows


def _reversal_cases(rng):
    """Rows of different lengths: full (the end token then goes in the last column), one
    token long, and padded; and, last, ids other than the lesson's (pad 14, end 13)."""
    return [
        {"sources": _padded_rows(rng, [4, 6, 1, 3], 6, 3, 13, 0), "end_id": 2, "pad_id": 0},
        {"sources": _padded_rows(rng, rng.permutation([2, 8, 5]), 8, 3, 13, 0),
         "end_id": 2, "pad_id": 0},
        {"sources": _padded_rows(rng, [3, 5, 2], 5, 1, 13, 14), "end_id": 13, "pad_id": 14},
    ]


def _accuracy_case(rng, lengths, width, pad_id, end_id=2, error_rate=0.15):
    """Targets (tokens, end, padding) and predictions with a few errors, some rows that go on
    writing after their end token (a free-running decoder does), others padded after it."""
    targets = _padded_rows(rng, [length + 1 for length in lengths], width, 3, 13, pad_id)
    predictions = targets.copy()
    for row, length in enumerate(lengths):
        targets[row, length] = end_id
        predictions[row, length] = end_id
        wrong = rng.random(length + 1) < error_rate
        predictions[row, :length + 1][wrong] = rng.integers(3, 13, size=wrong.sum())
        if row % 2 == 0:  # junk after the end, where nothing counts
            predictions[row, length + 1:] = rng.integers(3, 13, size=width - length - 1)
    predictions[0, :lengths[0] + 1] = targets[0, :lengths[0] + 1]  # right, junk after its end
    return {"predictions": predictions, "targets": targets, "pad_id": pad_id}


def _accuracy_cases(rng):
    """Rows of different lengths (so a mean of per-row accuracies differs from the fraction of
    tokens), rows right up to their end token but not after it, and a pad id other than 0."""
    return [_accuracy_case(rng, [2, 7, 4, 5, 1, 6], 9, pad_id=0),
            _accuracy_case(rng, [8, 3, 3, 6, 2], 10, pad_id=0, error_rate=0.1),
            _accuracy_case(rng, [3, 5, 1, 4], 7, pad_id=99)]


# --- Wrong implementations that the checks recognise ------------------------------------------


def _reversed_with_padding(sources, end_id=2, pad_id=0):
    """The whole row reversed, padding included, then the end token."""
    sources = np.asarray(sources)
    end = np.full((sources.shape[0], 1), end_id, dtype=sources.dtype)
    return np.concatenate([sources[:, ::-1], end], axis=1)


def _end_in_last_column(sources, end_id=2, pad_id=0):
    """Real tokens reversed, but the end token always in the last column."""
    targets = reversal_targets(sources, pad_id, pad_id)
    targets[:, -1] = end_id
    return targets


# --- Diagnoses --------------------------------------------------------------------------------


def padding_at_the_front(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """A row of the learner's targets that starts with padding: the padding was reversed too."""
    targets = mine["targets"]
    if targets.shape != expected["targets"].shape:
        return None
    padded_rows = np.any(case["sources"] == case["pad_id"], axis=1)
    if np.any(targets[padded_rows, 0] == case["pad_id"]):
        return ("Your targets start with padding: you reversed the padding too. Hint: reverse "
                "only the first L tokens of each row (L = its number of non-pad tokens) and "
                "leave the padding at the end.")
    return None


def _token_over_all_positions(predictions, targets, pad_id=0):
    return float(np.mean(np.asarray(predictions) == np.asarray(targets)))


def _token_mean_of_rows(predictions, targets, pad_id=0):
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    real = targets != pad_id
    per_row = ((predictions == targets) & real).sum(axis=1) / real.sum(axis=1)
    return float(np.mean(per_row))


def _sequence_whole_rows(predictions, targets, pad_id=0):
    return float(np.mean(np.all(np.asarray(predictions) == np.asarray(targets), axis=1)))


def _accuracies_in_percent(predictions, targets, pad_id=0):
    return tuple(100 * value for value in token_and_sequence_accuracy(predictions, targets,
                                                                      pad_id))


def _correct_counts(predictions, targets, pad_id=0):
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    real = targets != pad_id
    correct = (predictions == targets) & real
    return int(correct.sum()), int(np.all(correct | ~real, axis=1).sum())


# --- The exercises ------------------------------------------------------------------------------

REVERSAL_TARGETS = Exercise(
    exercise_id="01.1",
    function_name="reversal_targets",
    make_cases=_reversal_cases,
    reference=reversal_targets,
    outputs=("targets",),
    mistakes=(
        Mistake(lambda sources, end_id, pad_id: reversal_targets(sources, 2, 0),
                "Your function ignores `end_id` and `pad_id` (it uses 2 and 0 whatever they "
                "are). Hint: use the arguments: another vocabulary numbers its special tokens "
                "differently."),
        Mistake(_reversed_with_padding,
                "You reversed the padding too: your rows start with padding and the end token "
                "is always last. Hint: reverse only the first L tokens of each row (L = its "
                "number of non-pad tokens), then write end_id at column L."),
        Mistake(lambda sources, end_id, pad_id: reversal_targets(sources, pad_id,
                                                                 pad_id)[:, :-1],
                "Your targets have no end token, and no room for one: they have as many columns "
                "as the sources. Hint: make them one column wider, (N, S + 1), and write end_id "
                "right after each row's last real token."),
        Mistake(lambda sources, end_id, pad_id: reversal_targets(sources, pad_id, pad_id),
                "Your targets have no end token. Hint: write end_id right after each row's last "
                "real token (column L), or the decoder never learns when to stop."),
        Mistake(_end_in_last_column,
                "Your end token is in the last column of every row; it belongs right after each "
                "row's own last token (column L). Hint: the decoder must learn to stop when "
                "the sequence is done, not when the array ends."),
    ),
    properties=(padding_at_the_front,),
    shape_hints={"targets": "one row per source, one column more than the sources, for the end "
                            "token"},
    error_hint="loop over the rows: tokens = row[row != pad_id], then targets[i, :L] = "
               "tokens[::-1] and targets[i, L] = end_id.",
    hint="work out the first row by hand: its real tokens backwards, end_id, then pad_id.",
    rtol=0.0,
    atol=0.0,
)

MASKED_MEAN_POOL = Exercise(
    exercise_id="01.2",
    function_name="masked_mean_pool",
    make_cases=_masked_mean_pool_cases,
    reference=masked_mean_pool,
    outputs=("pooled",),
    mistakes=(
        Mistake(lambda encoder_outputs, mask: np.mean(encoder_outputs, axis=1),
                "You averaged over the padding too: your mean ignores the mask. Hint: multiply "
                "by the mask (as floats, with a feature axis: mask[..., None]), sum over the "
                "positions, and divide by the number of real positions."),
        Mistake(lambda encoder_outputs, mask: np.sum(encoder_outputs * mask[..., None], axis=1)
                / mask.shape[1],
                "You divided the sum of the real positions by the padded length S, not by the "
                "number of real positions. Hint: divide by mask.sum(axis=1) (kept as a column "
                "with keepdims=True, or [:, None])."),
        Mistake(lambda encoder_outputs, mask: np.sum(encoder_outputs * mask[..., None], axis=1),
                "You returned the sum of the real positions, not their mean. Hint: divide by "
                "the number of real positions of each sequence, mask.sum(axis=1)."),
        Mistake(lambda encoder_outputs, mask: masked_mean_pool(encoder_outputs, ~mask),
                "Your mask works the other way round: you averaged the padded positions. Here "
                "True means a real token (the Keras convention). Hint: keep the positions where "
                "the mask is True."),
    ),
    shape_hints={"pooled": "one row per sequence, one column per feature: average over the "
                           "positions, axis 1"},
    nan_hint="a sequence with no real token gives 0/0; give it zeros (np.divide(..., "
             "where=counts > 0), or divide by np.maximum(counts, 1)).",
    error_hint="the mask (B, S) needs a feature axis to multiply the outputs (B, S, d): "
               "mask[..., None] has shape (B, S, 1).",
    hint="average one sequence by hand: encoder_outputs[0][mask[0]].mean(axis=0).",
)

TOKEN_AND_SEQUENCE_ACCURACY = Exercise(
    exercise_id="01.3",
    function_name="token_and_sequence_accuracy",
    make_cases=_accuracy_cases,
    reference=token_and_sequence_accuracy,
    outputs=("token_accuracy", "sequence_accuracy"),
    mistakes=(
        Mistake(lambda predictions, targets, pad_id: token_and_sequence_accuracy(
                    predictions, targets, 0),
                "Your function ignores `pad_id` (it treats 0 as padding whatever it is). Hint: "
                "compare the targets with pad_id."),
        Mistake(_accuracies_in_percent,
                "Your accuracies are percentages; return fractions between 0 and 1. Hint: do "
                "not multiply by 100."),
        Mistake(_correct_counts,
                "You returned the numbers of right tokens and right sequences, not fractions. "
                "Hint: divide by the number of real target tokens, and by the number of "
                "sequences."),
        Mistake(lambda predictions, targets, pad_id: token_and_sequence_accuracy(
                    predictions, targets, pad_id)[::-1],
                "Your two accuracies are swapped. Hint: return (token_accuracy, "
                "sequence_accuracy), in that order."),
    ),
    properties=(
        matches_variant(
            "token_accuracy", _token_over_all_positions,
            "Your token accuracy counts the padded positions too (where the decoder wrote "
            "after its end token, or padding matched padding). Hint: count only the positions "
            "where targets != pad_id, in both the numerator and the denominator."),
        matches_variant(
            "token_accuracy", _token_mean_of_rows,
            "Your token accuracy is the mean of each sequence's accuracy, which gives a short "
            "sequence's tokens more weight than a long one's. Hint: divide the number of right "
            "tokens by the number of real target tokens, over the whole batch."),
        matches_variant(
            "sequence_accuracy", _sequence_whole_rows,
            "Your sequence accuracy compares whole rows, so a sequence that is right up to its "
            "end token but followed by other tokens counts as wrong. Hint: a sequence is right "
            "when every one of its real (non-pad) target positions is."),
    ),
    shape_hints={"token_accuracy": "a single number", "sequence_accuracy": "a single number"},
    nan_hint="divide by the number of real target tokens (targets != pad_id), which is never "
             "zero here.",
    hint="count by hand on the first two rows: which positions are real, which are right?",
)

EXERCISES = (REVERSAL_TARGETS, MASKED_MEAN_POOL, TOKEN_AND_SEQUENCE_ACCURACY)
