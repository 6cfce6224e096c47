"""The self-checks of lessons 01, 03 and 04 name each usual mistake.

(tests/test_checks.py holds what every exercise must satisfy; tests/test_grading.py grades the
solution notebooks and their learner copies.)"""

from collections import Counter

import numpy as np
import pytest

from course_lib.checks import EXERCISES, lesson01, lesson03, lesson04, run_check
from course_lib.checks.core import CHECK_SEED, Outcome, diagnose
from tests.exercise_sources import solution_object


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- 01.1 reversal_targets ---------------------------------------------------------------------


def test_reversing_the_padding_too():
    def reversal_targets(sources, end_id=2, pad_id=0):
        return np.concatenate([np.flip(sources, axis=1),
                               np.full((len(sources), 1), end_id)], axis=1)

    assert reason_for("01.1", reversal_targets).startswith("You reversed the padding too")


def test_reversing_the_padding_with_the_end_token_in_its_place():
    def reversal_targets(sources, end_id=2, pad_id=0):
        targets = np.full((sources.shape[0], sources.shape[1] + 1), pad_id)
        for row, source in enumerate(sources):
            length = np.sum(source != pad_id)
            targets[row, :-1] = source[::-1]  # padding first, then the tokens backwards
            targets[row, length] = end_id
        return targets

    assert reason_for("01.1", reversal_targets).startswith(
        "Your targets start with padding: you reversed the padding too")


def test_no_end_token():
    def reversal_targets(sources, end_id=2, pad_id=0):
        return np.array([np.concatenate([row[row != pad_id][::-1], row[row == pad_id]])
                         for row in sources])

    assert "no end token, and no room for one" in reason_for("01.1", reversal_targets)


def test_end_token_in_the_last_column():
    def reversal_targets(sources, end_id=2, pad_id=0):
        targets = lesson01.reversal_targets(sources, end_id, pad_id)
        targets[targets == end_id] = pad_id
        targets[:, -1] = end_id
        return targets

    assert reason_for("01.1", reversal_targets).startswith("Your end token is in the last column")


def test_hard_coded_special_ids():
    def reversal_targets(sources, end_id=2, pad_id=0):
        return lesson01.reversal_targets(sources)

    assert "ignores `end_id` and `pad_id`" in reason_for("01.1", reversal_targets)


# --- 01.2 masked_mean_pool ---------------------------------------------------------------------


def test_mean_over_the_padding_too():
    def masked_mean_pool(encoder_outputs, mask):
        return encoder_outputs.mean(axis=1)

    assert reason_for("01.2", masked_mean_pool).startswith("You averaged over the padding too")


def test_divided_by_the_padded_length():
    def masked_mean_pool(encoder_outputs, mask):
        return (encoder_outputs * mask[:, :, None]).mean(axis=1)

    assert "by the padded length S" in reason_for("01.2", masked_mean_pool)


def test_empty_sequence_gives_nan():
    def masked_mean_pool(encoder_outputs, mask):
        weights = mask[..., None].astype(float)
        return (encoder_outputs * weights).sum(axis=1) / weights.sum(axis=1)

    reason = reason_for("01.2", masked_mean_pool)
    assert reason.startswith("There is NaN or infinity in your `pooled`")
    assert "no real token gives 0/0" in reason


def test_mask_without_a_feature_axis():
    def masked_mean_pool(encoder_outputs, mask):
        return (encoder_outputs * mask).sum(axis=1) / np.maximum(mask.sum(1, keepdims=True), 1)

    reason = reason_for("01.2", masked_mean_pool)
    assert reason.startswith("`masked_mean_pool` raised ValueError")
    assert reason.endswith("Hint: the mask is (B, S) and the outputs (B, S, d): the mask needs an "
                           "axis to broadcast against the features.")


def test_mean_over_the_features():
    def masked_mean_pool(encoder_outputs, mask):
        return encoder_outputs.mean(axis=-1) * mask

    reason = reason_for("01.2", masked_mean_pool)
    assert reason.startswith("Your `pooled` has shape (3, 5), expected (3, 4)")
    assert "average over the positions, axis 1" in reason


def test_mask_read_the_other_way_round():
    def masked_mean_pool(encoder_outputs, mask):
        return lesson01.masked_mean_pool(encoder_outputs, np.logical_not(mask))

    assert "mask works the other way round" in reason_for("01.2", masked_mean_pool)


# --- 01.3 token_and_sequence_accuracy ----------------------------------------------------------


def test_token_accuracy_counting_padding():
    def token_and_sequence_accuracy(predictions, targets, pad_id=0):
        real = targets != pad_id
        sequence = np.mean(np.all((predictions == targets) | ~real, axis=1))
        return np.mean(predictions == targets), sequence

    assert reason_for("01.3", token_and_sequence_accuracy).startswith(
        "Your token accuracy counts the padded positions too")


def test_token_accuracy_as_a_mean_of_rows():
    def token_and_sequence_accuracy(predictions, targets, pad_id=0):
        real = targets != pad_id
        per_row = [np.mean(p[r] == t[r]) for p, t, r in zip(predictions, targets, real,
                                                            strict=True)]
        return np.mean(per_row), np.mean([np.all(p[r] == t[r]) for p, t, r in zip(
            predictions, targets, real, strict=True)])

    assert "mean of each sequence's accuracy" in reason_for("01.3", token_and_sequence_accuracy)


def test_sequence_accuracy_comparing_after_the_end_token():
    def token_and_sequence_accuracy(predictions, targets, pad_id=0):
        real = targets != pad_id
        token = np.sum((predictions == targets) & real) / np.sum(real)
        return token, np.mean(np.all(predictions == targets, axis=1))

    assert reason_for("01.3", token_and_sequence_accuracy).startswith(
        "Your sequence accuracy compares whole rows")


def test_accuracies_in_percent_and_swapped():
    def in_percent(predictions, targets, pad_id=0):
        token, sequence = lesson01.token_and_sequence_accuracy(predictions, targets, pad_id)
        return round(100 * token, 8), 100 * sequence

    def swapped(predictions, targets, pad_id=0):
        return lesson01.token_and_sequence_accuracy(predictions, targets, pad_id)[::-1]

    assert "percentages" in reason_for("01.3", in_percent)
    assert "swapped" in reason_for("01.3", swapped)


def test_one_accuracy_instead_of_two():
    def token_and_sequence_accuracy(predictions, targets, pad_id=0):
        return lesson01.token_and_sequence_accuracy(predictions, targets, pad_id)[0]

    assert reason_for("01.3", token_and_sequence_accuracy) == (
        "`token_and_sequence_accuracy` returned one float, but it should return a tuple "
        "(token_accuracy, sequence_accuracy).")


# --- 01.4 AttentionSeq2Seq (build: trains) -----------------------------------------------------
# Each run trains a small model (about 10 s of one core): a few seeds, the solution and three
# usual slips: the bottleneck, the unmasked source and the softmax over the decoder steps.

WITH_CONTEXT = ("return self.classifier(self.combine(ops.concatenate([decoder_outputs, context], "
                "axis=-1)))")


def seq2seq(*replacements):
    return solution_object("01.4", "AttentionSeq2Seq", *replacements)


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1])
def test_the_solution_seq2seq_reaches_the_bar_on_every_seed(seed):
    verdict = run_check("01.4", seq2seq(), seed=seed)
    assert verdict.passed, verdict.reason


@pytest.mark.parametrize("seed", [CHECK_SEED, 0])
def test_the_bottleneck_fails_on_every_seed_with_its_signature(seed):
    """The same model without the attention: the decoder reads the source through its initial
    state only."""
    verdict = run_check("01.4", seq2seq(
        (WITH_CONTEXT, "return self.classifier(self.combine(decoder_outputs))")), seed=seed)
    assert not verdict.passed and "the signature of the bottleneck" in verdict.reason, (
        verdict.reason)


def test_a_seq2seq_that_reads_padding_is_named():
    verdict = run_check("01.4", seq2seq(
        ("mask=source_mask)             # state: after the last", ")"),
        ("weights = masked_softmax(scores, source_mask[:, None, :])",
         "weights = masked_softmax(scores, None)")))
    assert not verdict.passed
    assert verdict.reason.startswith("Your model's logits change when the same sources come "
                                     "with more padding")


def test_a_seq2seq_whose_attention_is_normalised_over_the_decoder_steps_is_named():
    """The softmax over the wrong axis (the queries'): each weight then depends on every
    decoder step's output, later ones included."""
    verdict = run_check("01.4", seq2seq(
        ("weights = masked_softmax(scores, source_mask[:, None, :])",
         "weights = ops.softmax(scores, axis=1) * ops.cast(source_mask[:, None, :], "
         "scores.dtype)")))
    assert not verdict.passed
    assert "normalised over the decoder steps instead of the source positions" in (
        verdict.reason), verdict.reason


def test_the_seq2seq_judgement_reads_the_arrays_alone():
    """The grader's path, on made-up outputs: perfect predictions pass; a decoder that reads
    ahead, or whose logits have the wrong shape, is named without any training."""
    exercise = EXERCISES["01.4"]
    case = exercise.cases(CHECK_SEED)[0]
    _, test = lesson01.reversal_data(case["seed"])
    logits = np.random.default_rng(0).normal(size=(8, test.targets.shape[1], 13))
    ahead = logits.copy()
    ahead[:, 0] += 1.0
    right = (test.targets, logits, logits, logits)
    assert diagnose(exercise, [case], [Outcome(outputs=right)], [None]).passed
    leaky = diagnose(exercise, [case], [Outcome(outputs=(test.targets, logits, logits, ahead))],
                     [None])
    assert "reads ahead" in leaky.reason
    flat = diagnose(exercise, [case], [Outcome(outputs=(test.targets, logits[..., 0],
                                                         logits[..., 0], logits[..., 0]))],
                    [None])
    assert flat.reason.startswith("Your model returns an array of shape (8, 11)")


# --- 03.1 BahdanauAttention (build) ---------------------------------------------------------

SEEDS = (CHECK_SEED, 0, 1)


def bahdanau(*replacements):
    return solution_object("03.1", "BahdanauAttention", *replacements)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_layer_passes_on_every_seed(seed):
    verdict = run_check("03.1", bahdanau(), seed=seed)
    assert verdict.passed, verdict.reason


SOFTMAX = "weights = masked_softmax(scores, None if mask is None else mask[:, None, :])"
BAHDANAU_SLIPS = {
    "no tanh": (("hidden = ops.tanh(projected_query + projected_values)",
                 "hidden = projected_query + projected_values"), "missing the tanh"),
    "mask ignored": ((SOFTMAX, "weights = masked_softmax(scores, None)"),
                     "Your layer ignores `mask`"),
    "mask inverted": ((SOFTMAX, SOFTMAX.replace("mask[:, None, :]", "~mask[:, None, :]")),
                      "Your mask has the opposite polarity"),
    "mask after the softmax": ((SOFTMAX, "weights = masked_softmax(scores, None) * (1.0 if mask "
                                "is None else ops.cast(mask[:, None, :], scores.dtype))"),
                               "You zero the padded positions after the softmax"),
    "units summed": (("scores = ops.matmul(hidden, self.score_vector)",
                      "scores = ops.sum(hidden, axis=-1)"), "instead of weighting them by"),
    "frozen weight": (('self.score_vector = self.add_weight(name="score_vector", '
                       'shape=(self.units,))', 'self.score_vector = self.add_weight('
                       'name="score_vector", shape=(self.units,), trainable=False)'),
                      "a training step leaves score_vector unchanged"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("slip", sorted(BAHDANAU_SLIPS))
def test_a_slip_in_the_bahdanau_layer_is_named_on_every_seed(slip, seed):
    replacement, message = BAHDANAU_SLIPS[slip]
    verdict = run_check("03.1", bahdanau(replacement), seed=seed)
    assert not verdict.passed and message in verdict.reason, verdict.reason


def test_a_layer_for_three_dimensional_queries_only_names_the_call():
    verdict = run_check("03.1", bahdanau(("single_step = len(query.shape) == 2",
                                          "single_step = False")))
    assert not verdict.passed
    assert "query of shape (3, 5)" in verdict.reason, verdict.reason


# --- 03.2 teacher_forcing_inputs ---------------------------------------------------------------


LEAK = "the leak that makes teacher-forced training look perfect"


def test_decoder_reads_the_answer():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        return targets.copy()

    reason = reason_for("03.2", teacher_forcing_inputs)
    assert reason.startswith("Your decoder inputs are the targets themselves") and LEAK in reason


def test_decoder_reads_the_answer_with_the_ends_made_padding():
    """Not shifted, but otherwise tidy: still the leak, not a difference of numbers."""
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        inputs = np.where(targets == end_id, pad_id, targets)
        inputs[:, 0] = np.where(inputs[:, 0] == pad_id, pad_id, inputs[:, 0])
        return inputs

    reason = reason_for("03.2", teacher_forcing_inputs)
    assert reason.startswith("Your decoder inputs are the targets themselves") and LEAK in reason


def test_decoder_reads_the_answer_behind_a_start_token_written_over_it():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        inputs = targets.copy()
        inputs[:, 0] = start_id
        return inputs

    assert LEAK in reason_for("03.2", teacher_forcing_inputs)


def test_shifted_left():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        shifted = np.roll(targets, -1, axis=1)
        shifted[:, -1] = pad_id
        return shifted

    reason = reason_for("03.2", teacher_forcing_inputs)
    assert reason.startswith("Your decoder inputs are the targets shifted left") and LEAK in reason


def test_shifted_left_with_a_start_token_in_front():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        shifted = np.roll(targets, -1, axis=1)
        shifted[:, -1] = pad_id
        shifted[:, 0] = start_id
        return np.where(shifted == end_id, pad_id, shifted)

    reason = reason_for("03.2", teacher_forcing_inputs)
    assert "shifted left" in reason and LEAK in reason


def test_end_token_kept_in_the_inputs():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        inputs = np.roll(targets, 1, axis=1)
        inputs[:, 0] = start_id
        return inputs

    assert "still contain the end token" in reason_for("03.2", teacher_forcing_inputs)


def test_start_token_prepended_without_dropping_a_column():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        inputs = np.where(targets == end_id, pad_id, targets)
        return np.hstack([np.full((len(targets), 1), start_id), inputs])

    assert "one column longer than the targets" in reason_for("03.2", teacher_forcing_inputs)


def test_hard_coded_decoder_ids():
    def teacher_forcing_inputs(targets, start_id=1, end_id=2, pad_id=0):
        return lesson03.teacher_forcing_inputs(targets, 1, 2, 0)

    assert "ignores `start_id`, `end_id` and `pad_id`" in reason_for("03.2",
                                                                       teacher_forcing_inputs)


# --- 03.3 clipped_precision --------------------------------------------------------------------


def _ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def test_unclipped_precision():
    def clipped_precision(candidate, reference, n):
        candidate_ngrams, reference_ngrams = _ngrams(candidate, n), set(_ngrams(reference, n))
        if not candidate_ngrams:
            return 0.0
        return sum(ngram in reference_ngrams for ngram in candidate_ngrams) / len(
            candidate_ngrams)

    assert reason_for("03.3", clipped_precision).startswith("Your matches are not clipped")


def test_precision_of_distinct_ngrams():
    def clipped_precision(candidate, reference, n):
        candidate_ngrams = set(_ngrams(candidate, n))
        if not candidate_ngrams:
            return 0.0
        return len(candidate_ngrams & set(_ngrams(reference, n))) / len(candidate_ngrams)

    assert reason_for("03.3", clipped_precision).startswith("You work with sets")


def test_recall_instead_of_precision():
    def clipped_precision(candidate, reference, n):
        candidate_counts, reference_counts = (Counter(_ngrams(candidate, n)),
                                              Counter(_ngrams(reference, n)))
        matches = sum((candidate_counts & reference_counts).values())
        return matches / max(sum(reference_counts.values()), 1)

    assert "(that is recall)" in reason_for("03.3", clipped_precision)


def test_last_ngram_missed():
    def clipped_precision(candidate, reference, n):
        candidate_counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n))
        reference_counts = Counter(tuple(reference[i:i + n]) for i in range(len(reference) - n))
        total = sum(candidate_counts.values())
        return sum((candidate_counts & reference_counts).values()) / total if total else 0.0

    assert reason_for("03.3", clipped_precision).startswith("You miss the last n-gram")


def test_short_candidate_divides_by_zero():
    def clipped_precision(candidate, reference, n):
        candidate_counts, reference_counts = (Counter(_ngrams(candidate, n)),
                                              Counter(_ngrams(reference, n)))
        return sum((candidate_counts & reference_counts).values()) / sum(
            candidate_counts.values())

    reason = reason_for("03.3", clipped_precision)
    assert reason.startswith("`clipped_precision` raised ZeroDivisionError")
    assert "a candidate shorter than n has no n-gram, and its precision is then 0.0" in reason


def test_a_correct_precision_written_with_counter_intersection_passes():
    def clipped_precision(candidate, reference, n):
        candidate_counts, reference_counts = (Counter(_ngrams(list(candidate), n)),
                                              Counter(_ngrams(list(reference), n)))
        total = sum(candidate_counts.values())
        return sum((candidate_counts & reference_counts).values()) / total if total else 0.0

    assert run_check("03.3", clipped_precision).passed


# --- 04.1 concat_score -------------------------------------------------------------------------


def test_concatenated_in_the_wrong_order():
    def concat_score(query, keys, W, v):
        Tq, Tk = query.shape[1], keys.shape[1]
        pairs = np.concatenate([np.repeat(keys[:, None], Tq, axis=1),
                                np.repeat(query[:, :, None], Tk, axis=2)], axis=-1)
        return np.tanh(pairs @ W) @ v

    assert reason_for("04.1", concat_score).startswith("You concatenated in the wrong order")


def test_concat_without_tanh():
    def concat_score(query, keys, W, v):
        Tq, Tk = query.shape[1], keys.shape[1]
        pairs = np.concatenate([np.repeat(query[:, :, None], Tk, axis=2),
                                np.repeat(keys[:, None], Tq, axis=1)], axis=-1)
        return (pairs @ W) @ v

    assert reason_for("04.1", concat_score).startswith("Your scores are missing the tanh")


def test_concat_transposed():
    def concat_score(query, keys, W, v):
        return np.swapaxes(lesson04.concat_score(query, keys, W, v), 1, 2)

    assert "is transposed" in reason_for("04.1", concat_score)


def test_concat_with_the_wrong_split_of_w():
    def concat_score(query, keys, W, v):
        half = W.shape[0] // 2  # right only when dq == dk
        return np.tanh((query @ W[:half])[:, :, None] + (keys @ W[half:])[:, None]) @ v

    reason = reason_for("04.1", concat_score)
    assert reason.startswith("`concat_score` raised ValueError")
    assert "W has dq + dk rows, one per feature of [q; k]" in reason


# --- 04.2 local_m_mask -------------------------------------------------------------------------


def test_local_m_window_too_narrow():
    def local_m_mask(target_length, source_length, D):
        t, s = np.arange(target_length)[:, None], np.arange(source_length)
        return np.abs(s - t) < D

    assert "two positions too narrow" in reason_for("04.2", local_m_mask)


def test_local_m_mask_polarity():
    def local_m_mask(target_length, source_length, D):
        t, s = np.ogrid[:target_length, :source_length]
        return np.abs(s - t) > D

    assert "other way round" in reason_for("04.2", local_m_mask)


def test_local_m_window_with_unclipped_slices():
    def local_m_mask(target_length, source_length, D):
        mask = np.zeros((target_length, source_length), dtype=bool)
        for t in range(target_length):
            mask[t, t - D:t + D + 1] = True
        return mask

    assert "negative start counts from the end" in reason_for("04.2", local_m_mask)


def test_local_m_mask_transposed():
    def local_m_mask(target_length, source_length, D):
        return lesson04.local_m_mask(target_length, source_length, D).T

    assert reason_for("04.2", local_m_mask).startswith("Your `mask` is transposed")


def test_local_m_window_looking_ahead_only():
    def local_m_mask(target_length, source_length, D):
        t, s = np.ogrid[:target_length, :source_length]
        return (s >= t) & (s <= t + D)

    assert "only looks ahead" in reason_for("04.2", local_m_mask)


# --- 04.3 predicted_positions ------------------------------------------------------------------


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_positions_scaled_by_the_padded_length():
    def predicted_positions(query, W_p, v_p, source_mask):
        return source_mask.shape[1] * _sigmoid(np.tanh(query @ W_p) @ v_p)

    assert "padded length S" in reason_for("04.3", predicted_positions)


def test_positions_without_sigmoid():
    def predicted_positions(query, W_p, v_p, source_mask):
        return source_mask.sum(1, keepdims=True) * (np.tanh(query @ W_p) @ v_p)

    assert reason_for("04.3", predicted_positions).startswith("You forgot the sigmoid")


def test_positions_with_lengths_not_broadcast():
    def predicted_positions(query, W_p, v_p, source_mask):
        return source_mask.sum(1) * _sigmoid(np.tanh(query @ W_p) @ v_p)

    reason = reason_for("04.3", predicted_positions)
    assert reason.startswith("`predicted_positions` raised ValueError")
    assert reason.endswith("the lengths need an axis for the target steps.")


def test_positions_not_scaled():
    def predicted_positions(query, W_p, v_p, source_mask):
        return _sigmoid(np.tanh(query @ W_p) @ v_p)

    assert "between 0 and 1" in reason_for("04.3", predicted_positions)


# --- 04.4 LocalPAttention (build) ------------------------------------------------------------


def local_p(*replacements):
    return solution_object("04.4", "LocalPAttention", *replacements)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_local_p_layer_passes_on_every_seed(seed):
    verdict = run_check("04.4", local_p(), seed=seed)
    assert verdict.passed, verdict.reason


LOCAL_P_SLIPS = {
    "sigma = D": (("sigma = self.half_width / 2", "sigma = self.half_width"),
                  "Your Gaussian has σ = D"),
    "no gaussian": (("weights = masked_softmax(scores, window) * ops.exp(-offsets**2 / (2 * "
                     "sigma**2))", "weights = masked_softmax(scores, window)"),
                    "without the Gaussian"),
    "window into the padding": (("& real[:, None, :]", ""), "not clipped to the sentence"),
    "padded length": (("lengths = ops.sum(ops.cast(real, query.dtype), axis=1, keepdims=True)",
                       "lengths = ops.cast(ops.shape(values)[1], query.dtype)"),
                      "scaled by the padded length S"),
    "no sigmoid": (("lengths * ops.sigmoid(ops.matmul(hidden, self.position_vector))",
                    "lengths * ops.matmul(hidden, self.position_vector)"), "have no sigmoid"),
    "renormalised": (("return ops.matmul(weights, values), weights, positions",
                      "weights = weights / ops.sum(weights, axis=-1, keepdims=True)\n"
                      "        return ops.matmul(weights, values), weights, positions"),
                     "You renormalised the weights"),
    "window at the floor": (("window = (ops.abs(offsets) <= self.half_width)",
                             "window = (ops.abs(source[None, None, :] - ops.floor(positions)[:, :, "
                             "None]) <= self.half_width)"), "centred on the position rounded down"),
    "rounded position": (("offsets = source[None, None, :] - positions[:, :, None]",
                          "offsets = source[None, None, :] - ops.round(positions)[:, :, None]"),
                         "You rounded p_t"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("slip", sorted(LOCAL_P_SLIPS))
def test_a_slip_in_the_local_p_layer_is_named_on_every_seed(slip, seed):
    replacement, message = LOCAL_P_SLIPS[slip]
    verdict = run_check("04.4", local_p(replacement), seed=seed)
    assert not verdict.passed and message in verdict.reason, verdict.reason


def test_a_local_p_layer_with_the_window_one_too_wide_is_seen_from_the_weights():
    verdict = run_check("04.4", local_p(("<= self.half_width)", "<= self.half_width + 1)")))
    assert not verdict.passed
    assert verdict.reason.startswith("Your weights are not zero outside the window")


# --- The grader's path: outputs that came back as data ------------------------------------------


def test_diagnosis_of_integer_and_boolean_outputs_returned_as_data():
    for exercise_id in ("01.1", "03.2", "04.2"):
        exercise = EXERCISES[exercise_id]
        cases = exercise.cases(7)
        right = [Outcome(outputs=tuple(np.asarray(output).astype(
                     bool if exercise_id == "04.2" else np.int64) for output in
                     exercise.reference_outputs(case))) for case in cases]
        references = [exercise.reference_outputs(case) for case in cases]
        assert diagnose(exercise, cases, right, references).passed
        wrong = [Outcome(outputs=(np.asarray(outputs[0])[..., ::-1],)) for outputs in references]
        assert not diagnose(exercise, cases, wrong, references).passed
