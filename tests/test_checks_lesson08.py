"""Lesson 08's self-checks name each mistake.

Every wrong function below is a mistake a learner makes; its test asserts the sentence the check
prints. The references are checked against Keras and our Transformer blocks. (tests/test_checks.py
holds what every exercise must satisfy; tests/test_grading.py grades the solution notebook and its
learner copy.)
"""

import numpy as np
import pytest

from course_lib.checks import EXERCISES, lesson08, run_check
from course_lib.checks.core import CHECK_SEED

LESSON08_IDS = ["08.1", "08.2", "08.3", "08.4"]


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


def passes(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert verdict.passed, verdict.reason


# The learner's form of each answer: 08.2 takes functions, the others arrays.
LEARNER_REFERENCE = {"08.1": lesson08.layer_norm, "08.2": lesson08.pre_ln_block,
                     "08.3": lesson08.feed_forward, "08.4": lesson08.noam_learning_rate}
PRE_LN_MISTAKES = [lesson08._post_ln, lesson08._norm_on_the_residual,
                   lesson08._second_residual_from_the_input, lesson08._norms_swapped,
                   lesson08._norm_after_the_sublayer, lesson08._no_residuals,
                   lesson08._both_sublayers_on_the_input, lesson08._final_norm]


def learner_forms(exercise_id):
    """``(wrong function as a learner writes it, the message it must get)`` per mistake."""
    mistakes = EXERCISES[exercise_id].mistakes
    if exercise_id == "08.2":
        assert len(PRE_LN_MISTAKES) == len(mistakes)
        return list(zip(PRE_LN_MISTAKES, [m.message for m in mistakes], strict=True))
    return [(m.implementation, m.message) for m in mistakes]


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1, 2])
@pytest.mark.parametrize("exercise_id", LESSON08_IDS)
def test_each_mistake_is_named_by_its_own_message(exercise_id, seed):
    """The mistakes differ from the answer on every seed, and from each other."""
    assert run_check(exercise_id, LEARNER_REFERENCE[exercise_id], seed=seed).passed
    for wrong, message in learner_forms(exercise_id):
        verdict = run_check(exercise_id, wrong, seed=seed)
        assert not verdict.passed
        assert verdict.reason == message


# --- The references agree with Keras and with our blocks --------------------------------------


def test_layer_norm_reference_equals_keras():
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(2, 5, 6)).astype("float32")
    layer = keras.layers.LayerNormalization(epsilon=1e-3)
    layer.build(x.shape)
    gamma, beta = rng.uniform(0.5, 2, 6), rng.normal(size=6)
    layer.set_weights([gamma.astype("float32"), beta.astype("float32")])
    np.testing.assert_allclose(lesson08.layer_norm(x, gamma, beta, 1e-3), np.asarray(layer(x)),
                               atol=1e-5)


def test_feed_forward_and_pre_ln_references_equal_our_encoder_block():
    """Our pre-LN TransformerEncoderBlock computes pre_ln_block with a feed_forward net."""
    import keras
    from keras import ops

    from course_lib.layers import TransformerEncoderBlock

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(2, 4, 8)).astype("float32")
    block = TransformerEncoderBlock(16, num_heads=2, normalize_first=True)
    expected = ops.convert_to_numpy(block(x))
    weights = {w.path.split("/", 1)[1]: np.asarray(ops.convert_to_numpy(w.value), "float64")
               for w in block.weights}

    def norm(name):
        return lambda h: lesson08.layer_norm(h, weights[f"{name}/gamma"],
                                             weights[f"{name}/beta"], 1e-5)

    def attention(h):
        return ops.convert_to_numpy(block.self_attention(h.astype("float32"),
                                                         h.astype("float32")))

    def ffn(h):
        return lesson08.feed_forward(
            h, weights["feedforward_intermediate_dense/kernel"],
            weights["feedforward_intermediate_dense/bias"],
            weights["feedforward_output_dense/kernel"], weights["feedforward_output_dense/bias"])

    ours = lesson08.pre_ln_block(x.astype("float64"), attention, ffn,
                                 norm("self_attention_layer_norm"),
                                 norm("feedforward_layer_norm"))
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_post_ln_example_equals_our_post_ln_block():
    """The post-LN example the notebook gives is TransformerEncoderBlock's default."""
    import keras
    from keras import ops

    from course_lib.layers import TransformerEncoderBlock

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).normal(size=(1, 3, 4)).astype("float32")
    block = TransformerEncoderBlock(8, num_heads=1)
    expected = ops.convert_to_numpy(block(x))
    weights = {w.path.split("/", 1)[1]: np.asarray(ops.convert_to_numpy(w.value), "float64")
               for w in block.weights}

    def norm(name):
        return lambda h: lesson08.layer_norm(h, weights[f"{name}/gamma"],
                                             weights[f"{name}/beta"], 1e-5)

    ours = lesson08.post_ln_block(
        x.astype("float64"),
        lambda h: ops.convert_to_numpy(block.self_attention(h.astype("float32"),
                                                            h.astype("float32"))),
        lambda h: lesson08.feed_forward(
            h, weights["feedforward_intermediate_dense/kernel"],
            weights["feedforward_intermediate_dense/bias"],
            weights["feedforward_output_dense/kernel"], weights["feedforward_output_dense/bias"]),
        norm("self_attention_layer_norm"), norm("feedforward_layer_norm"))
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_noam_reference_peaks_at_warmup():
    steps = np.arange(1, 20001)
    rates = lesson08.noam_learning_rate(steps, 512, 4000)
    assert steps[np.argmax(rates)] == 4000
    assert rates[0] == pytest.approx(512 ** -0.5 * 4000 ** -1.5)
    assert rates.max() == pytest.approx(512 ** -0.5 * 4000 ** -0.5)


# --- 08.1 layer_norm --------------------------------------------------------------------------


def test_layer_norm_alternative_passes():
    def layer_norm(x, gamma, beta, eps):
        centred = x - np.mean(x, axis=-1, keepdims=True)
        return gamma * centred / np.sqrt(np.mean(centred**2, axis=-1, keepdims=True) + eps) + beta

    passes("08.1", layer_norm)


def test_layer_norm_over_the_tokens():
    def layer_norm(x, gamma, beta, eps):
        mean, var = x.mean(axis=-2, keepdims=True), x.var(axis=-2, keepdims=True)
        return gamma * (x - mean) / np.sqrt(var + eps) + beta

    assert reason_for("08.1", layer_norm).startswith("You normalised over axis -2")


def test_layer_norm_with_bessel_correction():
    def layer_norm(x, gamma, beta, eps):
        mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, ddof=1, keepdims=True)
        return gamma * (x - mean) / np.sqrt(var + eps) + beta

    assert reason_for("08.1", layer_norm).startswith("Your variance divides by d − 1")


def test_layer_norm_with_eps_outside_the_root():
    def layer_norm(x, gamma, beta, eps):
        mean, std = x.mean(axis=-1, keepdims=True), x.std(axis=-1, keepdims=True)
        return gamma * (x - mean) / (std + eps) + beta

    assert reason_for("08.1", layer_norm).startswith("Your eps is outside the square root")


def test_layer_norm_forgetting_the_mean_gets_the_mean_diagnosis():
    def layer_norm(x, gamma, beta, eps):
        return gamma * x / np.sqrt(x.var(axis=-1, keepdims=True) + eps) + beta

    assert reason_for("08.1", layer_norm).startswith(
        "After undoing gamma and beta, your tokens' features do not have mean 0")


def test_layer_norm_hard_coded_for_matrices_gets_the_shape_message():
    def layer_norm(x, gamma, beta, eps):
        x = x.reshape(-1, x.shape[-1])
        mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
        return gamma * (x - mean) / np.sqrt(var + eps) + beta

    assert reason_for("08.1", layer_norm).startswith("Your `output` has shape (6, 6), expected "
                                                     "(2, 3, 6)")


# --- 08.2 pre_ln_block ------------------------------------------------------------------------


def test_pre_ln_alternative_passes():
    def pre_ln_block(x, self_attention, feed_forward, norm1, norm2):
        for sublayer, norm in ((self_attention, norm1), (feed_forward, norm2)):
            x = x + sublayer(norm(x))
        return x

    passes("08.2", pre_ln_block)


def test_pre_ln_messages_name_the_mistake():
    expected_starts = ["That is the post-LN block", "You add the sublayer's output to norm(x)",
                       "Your second residual adds the block's input x", "You swapped the norms",
                       "You normalise the sublayer's output", "Your block has no residual",
                       "Both sublayers read the block's input x",
                       "You normalise the block's output"]
    for wrong, start in zip(PRE_LN_MISTAKES, expected_starts, strict=True):
        assert reason_for("08.2", wrong).startswith(start), wrong.__name__


def test_pre_ln_that_raises_names_the_error():
    def pre_ln_block(x, self_attention, feed_forward, norm1, norm2):
        return x + self_attention(norm1(x), x)

    assert reason_for("08.2", pre_ln_block).startswith("`pre_ln_block` raised TypeError")


# --- 08.3 feed_forward ------------------------------------------------------------------------


def test_feed_forward_alternative_passes():
    def feed_forward(x, W1, b1, W2, b2):
        hidden = np.einsum("...d,df->...f", x, W1) + b1
        return np.einsum("...f,fd->...d", np.where(hidden > 0, hidden, 0.0), W2) + b2

    passes("08.3", feed_forward)


def test_feed_forward_without_relu():
    def feed_forward(x, W1, b1, W2, b2):
        return (x @ W1 + b1) @ W2 + b2

    assert reason_for("08.3", feed_forward).startswith("There is no ReLU")


def test_feed_forward_with_relu_on_the_output():
    def feed_forward(x, W1, b1, W2, b2):
        return np.maximum(0, (x @ W1 + b1) @ W2 + b2)

    assert reason_for("08.3", feed_forward).startswith("Your ReLU is on the output")


def test_feed_forward_with_the_weights_in_the_wrong_order_gets_the_error_hint():
    def feed_forward(x, W1, b1, W2, b2):
        return np.maximum(0, x @ W2 + b2) @ W1 + b1

    reason = reason_for("08.3", feed_forward)
    assert reason.startswith("`feed_forward` raised ValueError")
    assert reason.endswith("x @ W1 first, then @ W2.")


def test_feed_forward_with_the_residual():
    def feed_forward(x, W1, b1, W2, b2):
        return x + np.maximum(0, x @ W1 + b1) @ W2 + b2

    assert reason_for("08.3", feed_forward).startswith("You added the residual x")


# --- 08.4 noam_learning_rate ------------------------------------------------------------------


def test_noam_alternative_passes():
    def noam_learning_rate(step, d_model, warmup):
        step = np.asarray(step, dtype=float)
        return np.where(step < warmup, step * warmup ** -1.5, step ** -0.5) / np.sqrt(d_model)

    passes("08.4", noam_learning_rate)


def test_noam_counting_from_zero_is_off_by_one():
    def noam_learning_rate(step, d_model, warmup):
        step = np.asarray(step) + 1
        return d_model ** -0.5 * np.minimum(step ** -0.5, step * warmup ** -1.5)

    assert reason_for("08.4", noam_learning_rate).startswith("Your schedule is off by one")


def test_noam_without_the_model_size_factor():
    def noam_learning_rate(step, d_model, warmup):
        return np.minimum(np.asarray(step) ** -0.5, np.asarray(step) * warmup ** -1.5)

    assert reason_for("08.4", noam_learning_rate).startswith(
        "You left out the factor d_model^-0.5")


def test_noam_with_python_min_gets_the_error_hint():
    def noam_learning_rate(step, d_model, warmup):
        return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)

    reason = reason_for("08.4", noam_learning_rate)
    assert reason.startswith("`noam_learning_rate` raised ValueError")
    assert reason.endswith("use np.minimum (element-wise), not Python's min().")


def test_noam_with_the_wrong_warmup_gets_the_peak_diagnosis():
    def noam_learning_rate(step, d_model, warmup):
        step = np.asarray(step, dtype=float)
        return d_model ** -0.5 * np.minimum(step ** -0.5, step * (2 * warmup) ** -1.5)

    assert reason_for("08.4", noam_learning_rate).startswith("Your learning rate peaks at step")


# --- The grader -------------------------------------------------------------------------------
