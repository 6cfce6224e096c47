"""Exercises of lesson 01, the bottleneck (``solutions/01_the_bottleneck.ipynb``).

01.1 ``reversal_targets``  01.2 ``masked_mean_pool``  01.3 ``token_and_sequence_accuracy``
01.4 ``AttentionSeq2Seq`` (build: a GRU encoder-decoder with attention that must learn).

01.4 has no single right output: its check trains the learner's model on a reversal task for a
fixed budget, decodes held-out sources greedily, and returns the predictions and a few logits as
arrays; the grader judges them (accuracy against length, padding and causality) in its own
process. Keras is imported only inside :func:`invoke_seq2seq`.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, matches_variant
from course_lib.data import PAD_ID, START_ID, reversal_task

GRADING_TIMEOUT_S = 300
"""Keras's import and two trainings of the model (the self-check's, in the notebook, and the
grader's) take about 60 s of one core; 300 s leaves room for a busy machine."""

REVERSAL = {"min_length": 3, "max_length": 10, "vocabulary_size": 13}
"""01.4's task: reverse sequences of 3 to 10 symbols (ids 3 to 12)."""
REVERSAL_TRAINING = {"examples": 2000, "epochs": 3, "batch_size": 32, "learning_rate": 1e-2}
"""01.4's training budget: the check compiles and fits the learner's model with these."""
REVERSAL_BAR = 0.6
"""01.4's bar: whole-sequence accuracy of greedy decoding on held-out sources of 8 to 10
symbols. A decoder that sees the source only through the encoder's last state reverses short
sequences but falls to a few percent at these lengths with this budget."""
LONG, SHORT = (8, 10), (3, 5)

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
        return ("Your targets start with padding: you reversed the padding too. Hint: only "
                "each row's real tokens are reversed; where does the padding stay?")
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


# --- 01.4: the encoder-decoder with attention ------------------------------------------------


def reversal_data(seed):
    """01.4's data from its case's seed: the training pairs, the held-out pairs, and a few probe
    pairs (sources of every length, for the padding and causality probes)."""
    train = reversal_task(REVERSAL_TRAINING["examples"], seed=seed, **REVERSAL)
    test = reversal_task(400, seed=seed + 1, **REVERSAL)
    return train, test


def _probe(test):
    """Eight held-out pairs, as many lengths as possible, for the padding and causality probes."""
    order = np.argsort(test.source_lengths, kind="stable")
    return order[np.linspace(0, len(order) - 1, 8).astype(int)]


def invoke_seq2seq(model_class, case):
    """How 01.4 runs the learner's class, in the learner's kernel: build it, train it with the
    fixed budget (teacher forcing, Adam with a cosine decay, clipped gradients, padding ignored
    in the loss), decode the held-out sources greedily by running the model on its own growing
    output, and probe its logits with more source padding and with later decoder inputs
    changed."""
    import keras

    seed = int(case["seed"])
    train, test = reversal_data(seed)
    keras.utils.set_random_seed(seed)
    model = model_class(REVERSAL["vocabulary_size"], embedding_dim=16, units=32)
    steps = REVERSAL_TRAINING["epochs"] * -(-len(train) // REVERSAL_TRAINING["batch_size"])
    schedule = keras.optimizers.schedules.CosineDecay(REVERSAL_TRAINING["learning_rate"], steps)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                             ignore_class=PAD_ID))
    model.fit((train.encoder_inputs, train.decoder_inputs), train.targets,
              epochs=REVERSAL_TRAINING["epochs"], batch_size=REVERSAL_TRAINING["batch_size"],
              shuffle=True, verbose=0)

    def logits(sources, decoder_inputs):
        return np.asarray(keras.ops.convert_to_numpy(model((sources, decoder_inputs))))

    decoded = np.full((len(test), 1), START_ID, dtype="int32")
    for _ in range(test.targets.shape[1]):
        next_token = logits(test.encoder_inputs, decoded)[:, -1].argmax(axis=-1)
        decoded = np.concatenate([decoded, next_token[:, None].astype("int32")], axis=1)
    probe = _probe(test)
    sources, inputs = test.encoder_inputs[probe], test.decoder_inputs[probe]
    padded = np.concatenate([sources, np.full((len(probe), 3), PAD_ID, "int32")], axis=1)
    changed = inputs.copy()
    changed[:, inputs.shape[1] // 2:] = (changed[:, inputs.shape[1] // 2:] + 5) % 10 + 3
    return (decoded[:, 1:], logits(sources, inputs), logits(padded, inputs),
            logits(sources, changed))


def _sequence_accuracy(predictions, targets):
    """Greedy outputs are right when they match every real target position (the end token
    included); what comes after the end does not count."""
    real = targets != PAD_ID
    return np.all((predictions == targets) | ~real, axis=1)


def seq2seq_judgement(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """01.4: the logits' contract (shape, padding, causality), then the accuracy bar."""
    _, test = reversal_data(int(case["seed"]))
    predictions, logits = mine["predictions"], mine["logits"]
    vocabulary, steps = REVERSAL["vocabulary_size"], test.targets.shape[1]
    if logits.ndim != 3 or logits.shape[0] != 8 or logits.shape[1:] != (steps, vocabulary):
        return (f"Your model returns an array of shape {logits.shape} for 8 sources and decoder "
                f"inputs of {steps} steps; it must return logits (B, T, {vocabulary}): one score "
                f"per target token, at every decoder step. Hint: what does the last layer "
                f"produce, and for which axis?")
    if not np.allclose(mine["logits_with_more_padding"], logits, atol=1e-4):
        return ("Your model's logits change when the same sources come with more padding: it "
                "reads padding (id 0) as tokens. Hint: where do the encoder and the attention "
                "learn which source positions are padding?")
    half = steps // 2
    if not np.allclose(mine["logits_with_later_inputs_changed"][:, :half], logits[:, :half],
                       atol=1e-4):
        return ("Your decoder's logits at step t change when later decoder inputs change, so "
                "it reads ahead (which it cannot do when it decodes on its own), as attention "
                "weights normalised over the decoder steps instead of the source positions do. "
                "Hint: over which positions must one decoder step's weights sum to 1, and does "
                "any other layer look across the decoder steps?")
    lengths = test.source_lengths
    right = _sequence_accuracy(predictions, test.targets)
    long = float(np.mean(right[(lengths >= LONG[0]) & (lengths <= LONG[1])]))
    short = float(np.mean(right[(lengths >= SHORT[0]) & (lengths <= SHORT[1])]))
    if long >= REVERSAL_BAR:
        return None
    if long < 0.2 and short > 2 * long + 0.15:
        return (f"Your model reverses {short:.0%} of the short held-out sequences ({SHORT[0]} to "
                f"{SHORT[1]} symbols) but only {long:.0%} of the long ones ({LONG[0]} to "
                f"{LONG[1]}; the bar is {REVERSAL_BAR:.0%}): the signature of the bottleneck, a "
                f"decoder that gets little of the source beyond its initial state. Hint: what "
                f"does your decoder read of the source at each step, and can it learn where to "
                f"look?")
    return (f"Your model reverses {long:.0%} of the held-out sequences of {LONG[0]} to "
            f"{LONG[1]} symbols exactly after its training budget ({short:.0%} of those of "
            f"{SHORT[0]} to {SHORT[1]}); the bar is {REVERSAL_BAR:.0%}. Hint: compare your "
            f"model with the lesson's: what does each step of the decoder read and combine?")


def seq2seq_cases(rng):
    """One training run: its seed is the only input (the data come from it)."""
    return [{"seed": int(rng.integers(0, 2**31 - 1))}]


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
                "is always last. Hint: which part of each row is reversed, and where does it "
                "end?"),
        Mistake(lambda sources, end_id, pad_id: reversal_targets(sources, pad_id,
                                                                 pad_id)[:, :-1],
                "Your targets have no end token, and no room for one: they have as many columns "
                "as the sources. Hint: a row with no padding needs room for its end token."),
        Mistake(lambda sources, end_id, pad_id: reversal_targets(sources, pad_id, pad_id),
                "Your targets have no end token. Hint: how would the decoder learn when to "
                "stop?"),
        Mistake(_end_in_last_column,
                "Your end token is in the last column of every row; it belongs right after each "
                "row's own last token (column L). Hint: the decoder must learn to stop when "
                "the sequence is done, not when the array ends."),
    ),
    properties=(padding_at_the_front,),
    shape_hints={"targets": "one row per source, one column more than the sources, for the end "
                            "token"},
    error_hint="each row has its own number of real tokens, L: the rows may need to be "
               "handled one by one.",
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
                "You averaged over the padding too: your mean ignores the mask. Hint: which "
                "positions may count, and how many are there?"),
        Mistake(lambda encoder_outputs, mask: np.sum(encoder_outputs * mask[..., None], axis=1)
                / mask.shape[1],
                "You divided the sum of the real positions by the padded length S, not by the "
                "number of real positions. Hint: each sequence has its own number of real "
                "positions."),
        Mistake(lambda encoder_outputs, mask: np.sum(encoder_outputs * mask[..., None], axis=1),
                "You returned the sum of the real positions, not their mean. Hint: a mean "
                "divides by a count."),
        Mistake(lambda encoder_outputs, mask: masked_mean_pool(encoder_outputs, ~mask),
                "Your mask works the other way round: you averaged the padded positions. Here "
                "True means a real token (the Keras convention). Hint: which positions does True "
                "mark?"),
    ),
    shape_hints={"pooled": "one row per sequence, one column per feature: average over the "
                           "positions, axis 1"},
    nan_hint="a sequence with no real token gives 0/0; its mean is defined as zeros.",
    error_hint="the mask is (B, S) and the outputs (B, S, d): the mask needs an axis to "
               "broadcast against the features.",
    hint="average one sequence by hand, over its real positions only, and compare.",
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
                "use the argument."),
        Mistake(_accuracies_in_percent,
                "Your accuracies are percentages; return fractions between 0 and 1. Hint: what "
                "multiplies your fractions?"),
        Mistake(_correct_counts,
                "You returned the numbers of right tokens and right sequences, not fractions. "
                "Hint: a fraction of what, in each case?"),
        Mistake(lambda predictions, targets, pad_id: token_and_sequence_accuracy(
                    predictions, targets, pad_id)[::-1],
                "Your two accuracies are swapped. Hint: the token accuracy comes first."),
    ),
    properties=(
        matches_variant(
            "token_accuracy", _token_over_all_positions,
            "Your token accuracy counts the padded positions too (where the decoder wrote "
            "after its end token, or padding matched padding). Hint: only the real target "
            "positions count, above and below the fraction."),
        matches_variant(
            "token_accuracy", _token_mean_of_rows,
            "Your token accuracy is the mean of each sequence's accuracy, which gives a short "
            "sequence's tokens more weight than a long one's. Hint: count the right tokens "
            "and the real tokens over the whole batch."),
        matches_variant(
            "sequence_accuracy", _sequence_whole_rows,
            "Your sequence accuracy compares whole rows, so a sequence that is right up to its "
            "end token but followed by other tokens counts as wrong. Hint: a sequence is right "
            "when every one of its real (non-pad) target positions is."),
    ),
    shape_hints={"token_accuracy": "a single number", "sequence_accuracy": "a single number"},
    nan_hint="the denominators are counts of real target tokens and of rows, never zero "
             "here.",
    hint="count by hand on the first two rows: which positions are real, which are right?",
)

ATTENTION_SEQ2SEQ = Exercise(
    exercise_id="01.4",
    function_name="AttentionSeq2Seq",
    make_cases=seq2seq_cases,
    reference=None,
    outputs=("predictions", "logits", "logits_with_more_padding",
             "logits_with_later_inputs_changed"),
    properties=(seq2seq_judgement,),
    invoke=invoke_seq2seq,
    describe=lambda case: (f"AttentionSeq2Seq({REVERSAL['vocabulary_size']}, embedding_dim=16, "
                           f"units=32), trained on {REVERSAL_TRAINING['examples']} pairs"),
    error_hint="the check builds your model, trains it with model.fit on ((source_ids, "
               "decoder_inputs), targets), then calls model((source_ids, decoder_ids)) with "
               "decoder_ids of every length from 1 up: the error's last line says which step "
               "failed.",
)

EXERCISES = (REVERSAL_TARGETS, MASKED_MEAN_POOL, TOKEN_AND_SEQUENCE_ACCURACY, ATTENTION_SEQ2SEQ)
