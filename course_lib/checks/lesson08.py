"""Exercises of lesson 08, the Transformer block (``solutions/08_transformer_block.ipynb``).

08.1 ``layer_norm``  08.2 ``pre_ln_block``  08.3 ``feed_forward``  08.4 ``noam_learning_rate``.
All in NumPy, so a graded kernel never imports TensorFlow.

08.2 takes functions (the sublayers and the norms) as arguments. The grader can only send
arrays into a learner's kernel, so its cases hold the sublayers' *weights*, and ``invoke``
builds the functions from them in the kernel before calling the learner's ``pre_ln_block``;
the reference and the mistakes take the weights directly.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

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


def noam_learning_rate(step, d_model, warmup):
    """``d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)`` (Vaswani et al. 2017, eq. 3),
    ``step`` counted from 1."""
    step = np.asarray(step, dtype=np.float64)
    return d_model ** -0.5 * np.minimum(step ** -0.5, step * warmup ** -1.5)


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


def _feed_forward_variant(relu_hidden=True, relu_output=False, bias_after_relu=False,
                          first_bias=True, second_bias=True, residual=False):
    def wrong(x, W1, b1, W2, b2):
        x = np.asarray(x, dtype=np.float64)
        hidden = x @ W1 + (0.0 if bias_after_relu or not first_bias else b1)
        if relu_hidden:
            hidden = np.maximum(0.0, hidden)
        if bias_after_relu:
            hidden = hidden + b1
        output = hidden @ W2 + (b2 if second_bias else 0.0)
        if relu_output:
            output = np.maximum(0.0, output)
        return x + output if residual else output

    return wrong


def _noam_variant(shift=0, scale_power=-0.5, use_max=False, warmup_power=-1.5,
                  rising_with_step=True):
    def wrong(step, d_model, warmup):
        step = np.asarray(step, dtype=np.float64) + shift
        rising = (step if rising_with_step else 1.0) * warmup ** warmup_power
        pick = np.maximum if use_max else np.minimum
        return d_model ** scale_power * pick(step ** -0.5, rising)

    return wrong


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


def feed_forward_cases(rng):
    """One sequence ``(T, d)`` and batches ``(B, T, d)``, ``d ≠ d_ff`` (so weights used in the
    wrong order fail to multiply), biases of either sign (so about half the hidden units are
    negative before the ReLU and a missing or misplaced ReLU shows)."""
    cases = []
    for leading, depth, hidden in (((5,), 4, 10), ((2, 3), 6, 8), ((3, 2), 3, 12)):
        cases.append({"x": rng.normal(size=(*leading, depth)),
                      "W1": rng.normal(scale=depth ** -0.5, size=(depth, hidden)),
                      "b1": rng.normal(scale=0.5, size=hidden),
                      "W2": rng.normal(scale=hidden ** -0.5, size=(hidden, depth)),
                      "b2": rng.normal(scale=0.5, size=depth)})
    return cases


def noam_cases(rng):
    """Steps from 1 (where an off-by-one shows most) through the warm-up to well after it, for
    a few ``d_model`` and ``warmup``; the warm-up step itself included."""
    cases = []
    for d_model, warmup in ((512, 4000), (128, 100), (256, int(rng.integers(500, 2000)))):
        steps = np.unique(np.concatenate([
            [1, 2, 3, warmup - 1, warmup, warmup + 1, 10 * warmup],
            rng.integers(1, 20 * warmup, size=6)]))
        cases.append({"step": steps.astype(np.int64), "d_model": d_model, "warmup": warmup})
    return cases


# --- Diagnoses read from the outputs ----------------------------------------------------------


def _layer_norm_moments(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """After undoing gamma and beta, each token's features should have mean 0."""
    normalised = (mine["output"] - case["beta"]) / case["gamma"]
    means = normalised.mean(axis=-1)
    if np.allclose(means, 0.0, atol=1e-3):
        return None
    return ("After undoing gamma and beta, your tokens' features do not have mean 0 (the means "
            f"go from {means.min():.3g} to {means.max():.3g}). Hint: subtract the mean of the "
            "last axis, x.mean(axis=-1, keepdims=True), before dividing.")


def _noam_peak(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """The schedule must rise until ``warmup`` and fall after it."""
    steps, rates = np.asarray(case["step"]), mine["learning_rate"]
    if rates.shape != steps.shape or not np.all(np.isfinite(rates)):
        return None
    peak = steps[int(np.argmax(rates))]
    if peak == case["warmup"]:
        return None
    return (f"Your learning rate peaks at step {peak}, not at warmup = {case['warmup']}. "
            "Hint: it grows linearly (step · warmup^-1.5) during the warm-up and falls as "
            "step^-0.5 after; the two meet at step = warmup.")


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
                "batch); LayerNorm normalises each token over its own features. Hint: use "
                "axis=-1 with keepdims=True for the mean and the variance."),
        Mistake(_layer_norm_variant(axis=0),
                "You normalised over axis 0; LayerNorm normalises each token over its own "
                "features, the last axis. Hint: use axis=-1 with keepdims=True for the mean "
                "and the variance."),
        Mistake(_layer_norm_variant(axis=None),
                "You normalised with the mean and variance of the whole array; LayerNorm uses "
                "each token's own. Hint: x.mean(axis=-1, keepdims=True), and the same for "
                "var."),
        Mistake(_layer_norm_variant(ddof=1),
                "Your variance divides by d − 1 (ddof=1, Bessel's correction, as pandas and "
                "torch.var do by default); LayerNorm divides by d. Hint: np.var(x, axis=-1, "
                "keepdims=True) (ddof=0) or the mean of the squared deviations."),
        Mistake(_layer_norm_variant(eps_outside=True),
                "Your eps is outside the square root: (x − mean) / (sqrt(var) + eps). Keras, "
                "PyTorch and the paper put it inside. Hint: divide by np.sqrt(var + eps); the "
                "difference shows on a nearly constant token."),
        Mistake(_layer_norm_variant(no_eps=True),
                "You left out eps: a nearly constant token gets divided by almost 0. Hint: "
                "divide by np.sqrt(var + eps)."),
        Mistake(_layer_norm_variant(divide_by_variance=True),
                "You divided by the variance (plus eps), not by its square root, the standard "
                "deviation. Hint: (x − mean) / np.sqrt(var + eps)."),
        Mistake(_layer_norm_variant(swap=True),
                "You swapped gamma and beta: gamma scales the normalised values, beta shifts "
                "them. Hint: gamma * normalised + beta."),
        Mistake(_layer_norm_variant(affine=False),
                "You returned the normalised values without gamma and beta. Hint: finish with "
                "gamma * normalised + beta (the layer's learned scale and shift)."),
    ),
    properties=(_layer_norm_moments,),
    shape_hints={"output": "the shape of x"},
    nan_hint="a token whose features are all equal has variance 0: eps belongs inside the "
             "square root, np.sqrt(var + eps).",
    hint="normalise each token (each slice x[..., t, :]) by its own mean and variance, then "
         "scale by gamma and shift by beta.",
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
                "Hint: h = x + self_attention(norm1(x))."),
        Mistake(_norm_on_the_residual,
                "You add the sublayer's output to norm(x), so the residual path goes through "
                "every LayerNorm and x is lost. Hint: normalise only the sublayer's input: "
                "h = x + self_attention(norm1(x))."),
        Mistake(_second_residual_from_the_input,
                "Your second residual adds the block's input x instead of h, the output of the "
                "first sublayer, so self-attention's contribution is dropped. Hint: "
                "return h + feed_forward(norm2(h))."),
        Mistake(_norms_swapped,
                "You swapped the norms: norm1 belongs to self-attention, norm2 to the "
                "feed-forward net (each has its own gamma and beta). Hint: "
                "h = x + self_attention(norm1(x)); h + feed_forward(norm2(h))."),
        Mistake(_norm_after_the_sublayer,
                "You normalise the sublayer's output, x + norm(sublayer(x)); pre-LN normalises "
                "its input. Hint: x + sublayer(norm(x))."),
        Mistake(_no_residuals,
                "Your block has no residual connections: the output is the sublayers' "
                "output alone. Hint: add each sublayer's output to its input, "
                "h = x + self_attention(norm1(x))."),
        Mistake(_both_sublayers_on_the_input,
                "Both sublayers read the block's input x, side by side; in a Transformer block "
                "the feed-forward net reads h, the output of the self-attention step. Hint: "
                "h = x + self_attention(norm1(x)), then h + feed_forward(norm2(h))."),
        Mistake(_final_norm,
                "You normalise the block's output: pre-LN returns the sum itself, so that x "
                "reaches the output through additions only (the final LayerNorm comes once, "
                "after the whole stack). Hint: return h + feed_forward(norm2(h))."),
    ),
    shape_hints={"output": "(B, T, d), the shape of x"},
    hint="pre-LN is two lines: h = x + self_attention(norm1(x)); return h + "
         "feed_forward(norm2(h)).",
    invoke=invoke_with_sublayers,
)

FEED_FORWARD = Exercise(
    exercise_id="08.3",
    function_name="feed_forward",
    make_cases=feed_forward_cases,
    reference=feed_forward,
    outputs=("output",),
    mistakes=(
        Mistake(_feed_forward_variant(relu_hidden=False),
                "There is no ReLU: two linear maps in a row are one linear map, W1 W2. Hint: "
                "np.maximum(0, x @ W1 + b1) before the second layer."),
        Mistake(_feed_forward_variant(relu_hidden=False, relu_output=True),
                "Your ReLU is on the output; it belongs on the hidden layer (the output must "
                "be free to be negative, it is added to the residual). Hint: "
                "np.maximum(0, x @ W1 + b1) @ W2 + b2."),
        Mistake(_feed_forward_variant(relu_output=True),
                "You apply a ReLU to the output as well; only the hidden layer has one. Hint: "
                "np.maximum(0, x @ W1 + b1) @ W2 + b2."),
        Mistake(_feed_forward_variant(bias_after_relu=True),
                "You add b1 after the ReLU; it goes inside, before it. Hint: "
                "np.maximum(0, x @ W1 + b1)."),
        Mistake(_feed_forward_variant(first_bias=False),
                "You left out b1. Hint: np.maximum(0, x @ W1 + b1)."),
        Mistake(_feed_forward_variant(second_bias=False),
                "You left out b2. Hint: ... @ W2 + b2."),
        Mistake(_feed_forward_variant(residual=True),
                "You added the residual x: it belongs to the block around the feed-forward net "
                "(x + FFN(x)), not to FFN itself. Hint: return the network's output alone."),
    ),
    shape_hints={"output": "the shape of x: (..., d)"},
    error_hint="x is (..., d), W1 (d, d_ff), W2 (d_ff, d): x @ W1 first, then @ W2.",
    hint="FFN(x) = max(0, x W1 + b1) W2 + b2, the same for every token.",
)

NOAM_LEARNING_RATE = Exercise(
    exercise_id="08.4",
    function_name="noam_learning_rate",
    make_cases=noam_cases,
    reference=noam_learning_rate,
    outputs=("learning_rate",),
    mistakes=(
        Mistake(_noam_variant(shift=1),
                "Your schedule is off by one: you compute the rate of step + 1 (counting the "
                "first step as 0). The paper's step_num starts at 1: at step 1 the rate is "
                "d_model^-0.5 · warmup^-1.5. Hint: use `step` as given."),
        Mistake(_noam_variant(shift=-1),
                "Your schedule is off by one: you compute the rate of step − 1, so step 1 gets "
                "0. Hint: use `step` as given; it starts at 1."),
        Mistake(_noam_variant(scale_power=0.0),
                "You left out the factor d_model^-0.5, so every rate is √d_model times too "
                "large. Hint: multiply by d_model ** -0.5."),
        Mistake(_noam_variant(scale_power=0.5),
                "You multiplied by √d_model instead of dividing by it. Hint: d_model ** -0.5."),
        Mistake(_noam_variant(use_max=True),
                "You took the maximum of the two branches; the schedule is their minimum "
                "(the rising line during the warm-up, the falling curve after). Hint: "
                "np.minimum(step ** -0.5, step * warmup ** -1.5)."),
        Mistake(_noam_variant(warmup_power=-0.5),
                "Your warm-up line is step · warmup^-0.5; it is step · warmup^-1.5, so that it "
                "meets step^-0.5 exactly at step = warmup. Hint: warmup ** -1.5."),
        Mistake(_noam_variant(rising_with_step=False),
                "Your warm-up branch is the constant warmup^-1.5: it must grow with the step. "
                "Hint: step * warmup ** -1.5."),
    ),
    properties=(_noam_peak,),
    shape_hints={"learning_rate": "one rate per step: the shape of `step`"},
    error_hint="`step` is an array: use np.minimum (element-wise), not Python's min().",
    hint="lr = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5), element-wise over the steps.",
    rtol=1e-6,
    atol=0.0,
)

EXERCISES = (LAYER_NORM, PRE_LN_BLOCK, FEED_FORWARD, NOAM_LEARNING_RATE)
