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
from tests.exercise_sources import solution_object


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


def passes(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert verdict.passed, verdict.reason


# The learner's form of 08.2's answer takes functions, as the reference does.
PRE_LN_MISTAKES = [lesson08._post_ln, lesson08._norm_on_the_residual,
                   lesson08._second_residual_from_the_input, lesson08._norms_swapped,
                   lesson08._norm_after_the_sublayer, lesson08._no_residuals,
                   lesson08._both_sublayers_on_the_input, lesson08._final_norm,
                   lesson08._norm1_for_both, lesson08._no_norm_before_feed_forward,
                   lesson08._no_norm_before_attention, lesson08._post_ln_without_its_last_norm]


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1, 2])
def test_each_pre_ln_mistake_is_named_by_its_own_message(seed):
    """The mistakes of 08.2, written as a learner writes them (with the functions they get)."""
    assert run_check("08.2", lesson08.pre_ln_block, seed=seed).passed
    mistakes = EXERCISES["08.2"].mistakes
    assert len(PRE_LN_MISTAKES) == len(mistakes)
    for wrong, mistake in zip(PRE_LN_MISTAKES, mistakes, strict=True):
        verdict = run_check("08.2", wrong, seed=seed)
        assert not verdict.passed and verdict.reason == mistake.message


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
                       "You normalise the block's output", "You use norm1 before both",
                       "The feed-forward net reads h unnormalised",
                       "Self-attention reads x unnormalised",
                       "Your first step is post-LN"]
    for wrong, start in zip(PRE_LN_MISTAKES, expected_starts, strict=True):
        assert reason_for("08.2", wrong).startswith(start), wrong.__name__


def test_pre_ln_that_raises_names_the_error_and_only_what_the_function_received():
    def pre_ln_block(x, self_attention, feed_forward, norm1, norm2):
        return x + self_attention(norm1(x), x)

    reason = reason_for("08.2", pre_ln_block)
    assert reason.startswith("`pre_ln_block` raised TypeError")
    assert "four functions, self_attention, feed_forward, norm1 and norm2" in reason
    assert "w_mix" not in reason and "gamma1" not in reason


def test_pre_ln_otherwise_wrong_quotes_only_what_the_function_received():
    def pre_ln_block(x, self_attention, feed_forward, norm1, norm2):
        return lesson08.pre_ln_block(x, self_attention, feed_forward, norm1, norm2) + 0.1

    reason = reason_for("08.2", pre_ln_block)
    assert reason.startswith("Your `output` is off by up to 0.1")
    assert "w_mix" not in reason and "gamma1" not in reason


# --- 08.3 DecoderBlock (build) ----------------------------------------------------------------

SEEDS = (CHECK_SEED, 0, 1)


def block(*replacements):
    return solution_object("08.3", "DecoderBlock", *replacements)


def test_decoder_block_reference_equals_keras_hub():
    """The NumPy reference is keras_hub's TransformerDecoder (post-LN) with the same weights,
    on the real decoder tokens."""
    import keras_hub

    exercise = EXERCISES["08.3"]
    for case in exercise.cases(CHECK_SEED):
        theirs = keras_hub.layers.TransformerDecoder(int(case["intermediate_dim"]),
                                                     int(case["num_heads"]),
                                                     layer_norm_epsilon=1e-5)
        x, encoder = case["x"].astype("float32"), case["encoder_outputs"].astype("float32")
        masks = {"decoder_padding_mask": case["decoder_padding_mask"],
                 "encoder_padding_mask": case["encoder_padding_mask"]}
        theirs(x, encoder, **masks)
        for ours, their_name in (("self_attention", "_self_attention_layer"),
                                 ("self_attention_norm", "_self_attention_layer_norm"),
                                 ("cross_attention", "_cross_attention_layer"),
                                 ("cross_attention_norm", "_cross_attention_layer_norm"),
                                 ("intermediate", "_feedforward_intermediate_dense"),
                                 ("output_dense", "_feedforward_output_dense"),
                                 ("feed_forward_norm", "_feedforward_layer_norm")):
            getattr(theirs, their_name).set_weights(
                [w.astype("float32") for w in lesson08._sublayer_weights(case, ours)])
        expected = np.asarray(theirs(x, encoder, **masks))
        real = case["decoder_padding_mask"]
        np.testing.assert_allclose(exercise.call_model(exercise.reference, case)[0][real],
                                   expected[real], atol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_block_passes_on_every_seed(seed):
    verdict = run_check("08.3", block(), seed=seed)
    assert verdict.passed, verdict.reason


CROSS = "looked_up = self.cross_attention(h, encoder_outputs, attention_mask=cross_mask)"
BLOCK_SLIPS = {
    "no causal mask": (("use_causal_mask=True", "use_causal_mask=False"),
                       "has no causal mask"),
    "encoder padding ignored": ((CROSS, CROSS.replace("attention_mask=cross_mask",
                                                      "attention_mask=None")),
                                "ignores `encoder_padding_mask`"),
    "decoder padding ignored": (("attention_mask=self_mask, use_causal_mask=True",
                                 "use_causal_mask=True"), "attend to the decoder's padding"),
    "decoder padding on the queries": (
        ("decoder_padding_mask[:, None, :]", "decoder_padding_mask[:, :, None]"),
        "it hides queries (rows) instead of keys"),

    "pre-LN first step": (("h = self.self_attention_norm(x + attended)",
                           "h = x + self.self_attention(*[self.self_attention_norm(x)] * 2, "
                           "attention_mask=self_mask, use_causal_mask=True)"),
                          "Your self-attention step is pre-LN"),
    "cross-attention from x": ((CROSS, CROSS.replace("self.cross_attention(h,",
                                                     "self.cross_attention(x,")),
                               "queries come from the block's input x"),
    "no feed-forward residual": (("return self.feed_forward_norm(h + self.output_dense(",
                                  "return self.feed_forward_norm(self.output_dense("),
                                 "no residual connection"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("slip", sorted(BLOCK_SLIPS))
def test_a_slip_in_the_block_fails_on_every_seed_with_its_name(slip, seed):
    replacement, message = BLOCK_SLIPS[slip]
    verdict = run_check("08.3", block(replacement), seed=seed)
    assert not verdict.passed
    assert message is None or message in verdict.reason, verdict.reason


@pytest.mark.parametrize("seed", SEEDS)
def test_a_block_that_normalises_each_sublayer_before_the_residual_is_named(seed):
    """x + norm(sublayer(x)) at every step: neither post-LN nor pre-LN."""
    verdict = run_check("08.3", block(
        ("h = self.self_attention_norm(x + attended)",
         "h = x + self.self_attention_norm(attended)"),
        ("h = self.cross_attention_norm(h + looked_up)",
         "h = h + self.cross_attention_norm(looked_up)"),
        ("return self.feed_forward_norm(h + self.output_dense(self.intermediate(h)))",
         "return h + self.feed_forward_norm(self.output_dense(self.intermediate(h)))")), seed=seed)
    assert not verdict.passed
    assert verdict.reason.startswith("You normalise each sublayer's output and then add it"), (
        verdict.reason)


def test_a_block_whose_sublayer_has_another_name_is_told_the_contract():
    verdict = run_check("08.3", block(("self.feed_forward_norm = ", "self.ffn_norm = "),
                                      ("return self.feed_forward_norm(", "return self.ffn_norm(")))
    assert not verdict.passed and "has no sublayer `feed_forward_norm`" in verdict.reason


# --- 08.4 greedy_decode -----------------------------------------------------------------------


def decoder(*replacements):
    return solution_object("08.4", "greedy_decode", *replacements)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_decoder_passes_on_every_seed(seed):
    verdict = run_check("08.4", decoder(), seed=seed)
    assert verdict.passed, verdict.reason


DECODER_SLIPS = {
    "first position's logits": (("logits[:, -1].argmax(axis=-1)", "logits[:, 0].argmax(axis=-1)"),
                                "You take the logits of the first decoder step"),
    "start token kept": (("tokens[:, :decoded.shape[1] - 1] = decoded[:, 1:]",
                          "tokens = np.full((len(source_ids), max_length + 1), pad_id)\n"
                          "    tokens[:, :decoded.shape[1]] = decoded"),
                         "Your tokens begin with start_id"),
    "no padding after the end": (("next_token = np.where(ended, pad_id, next_token)",
                                  "next_token = next_token"),
                                 "Your rows go on after their end token"),
    "stops at the first end": (("if ended.all():", "if ended.any():"),
                               "stops every row when the first row ends"),
    "no feedback": (("logits = keras.ops.convert_to_numpy(model((source_ids, decoded)))\n"
                     "        next_token = logits[:, -1].argmax(axis=-1)",
                     "logits = keras.ops.convert_to_numpy(model((source_ids, np.full((len("
                     "source_ids), max_length), start_id))))\n        next_token = logits[:, "
                     "decoded.shape[1] - 1].argmax(axis=-1)"),
                    "Your decoder never reads its own output"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("slip", sorted(DECODER_SLIPS))
def test_a_slip_in_the_decoder_is_named_on_every_seed(slip, seed):
    replacement, message = DECODER_SLIPS[slip]
    verdict = run_check("08.4", decoder(replacement), seed=seed)
    assert not verdict.passed and message in verdict.reason, verdict.reason


def test_a_decoder_that_argmaxes_over_the_wrong_axis_is_told_where_it_first_differs():
    verdict = run_check("08.4", decoder(("logits[:, -1].argmax(axis=-1)",
                                         "logits[:, -1].argmax(axis=0)[:1].repeat(len(logits))")))
    assert not verdict.passed and verdict.reason.startswith("Row 0 of your tokens first differs")
