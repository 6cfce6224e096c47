"""Exercises of lesson 13, hard attention and explanations
(``solutions/13_hard_attention_and_explanations.ipynb``).

13.1 ``reinforce_bandit`` (the build exercise: REINFORCE with a learned baseline trains a policy
over the arms of a bandit, every draw given as a uniform number so that the run is exact)
13.2 ``straight_through_gumbel`` (the Gumbel-max sample from uniform numbers, and the Jacobian of
the relaxed sample that the straight-through estimator back-propagates)
13.3 ``leave_one_out_attribution`` (for a model handed in: a small attention-pooling classifier
with positions, built by ``invoke`` from the case's weights).
All in NumPy, so a graded kernel never imports TensorFlow.

Conventions: a policy's logits and the scores are ``(…, K)``; a choice is sampled from
probabilities ``π`` with a uniform number ``u`` as the first ``k`` whose cumulative probability
``π_0 + … + π_k`` exceeds ``u``; sentences are ``(B, T)`` ids right-padded with ``PAD_ID = 0``.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, matches_variant
from course_lib.numpy_softmax import softmax

PAD_ID = 0
UNKNOWN_ID = 1

# --- References -----------------------------------------------------------------------------


def _sample(probabilities, uniforms):
    """``(K,)`` probabilities, ``(B,)`` uniforms → ``(B,)`` arms: the first arm whose cumulative
    probability exceeds the uniform number."""
    cumulative = np.cumsum(probabilities)
    return np.minimum(np.searchsorted(cumulative, uniforms, side="right"),
                      len(probabilities) - 1)


def _bandit_variant(means, uniforms, noise, learning_rate, baseline_rate, subtract=True,
                    update_baseline_first=False, sign=1.0, centre=True, greedy=False,
                    reduce=np.mean, baseline_rule="step", frozen_policy=False):
    """The reference with one switch flipped (each mistake below is one flip)."""
    means = np.asarray(means, dtype=np.float64)
    steps, _ = np.shape(uniforms)
    logits, baseline = np.zeros(len(means)), 0.0
    logit_rows, baselines, mean_rewards = [logits.copy()], [baseline], []
    first_probabilities = softmax(logits)
    for step in range(steps):
        probabilities = first_probabilities if frozen_policy else softmax(logits)
        if greedy:
            arms = np.full(np.shape(uniforms)[1], np.argmax(probabilities))
        else:
            arms = _sample(probabilities, uniforms[step])
        rewards = means[arms] + noise[step]
        mean_rewards.append(np.mean(rewards))
        if update_baseline_first:
            baseline = baseline + baseline_rate * np.mean(rewards - baseline)
        advantages = rewards - baseline if subtract else rewards
        scores = np.eye(len(means))[arms] - (probabilities if centre else 0.0)  # ∇ log π_k
        logits = logits + sign * learning_rate * reduce(advantages[:, None] * scores, axis=0)
        if not update_baseline_first:
            if baseline_rule == "step":
                baseline = baseline + baseline_rate * np.mean(rewards - baseline)
            elif baseline_rule == "mean":
                baseline = float(np.mean(rewards))
            elif baseline_rule == "no_minus":
                baseline = baseline + baseline_rate * np.mean(rewards)
        logit_rows.append(logits.copy())
        baselines.append(baseline)
    return np.array(logit_rows), np.array(baselines), np.array(mean_rewards)


def reinforce_bandit(means, uniforms, noise, learning_rate, baseline_rate):
    """REINFORCE with a learned baseline on a ``K``-armed bandit: logits and baseline start at
    0; at each step every play samples an arm from ``π = softmax(logits)`` with its uniform
    number, gets ``means[k] + noise``, and then ``logits += lr · mean((r − b)(e_k − π))``,
    ``b += baseline_rate · mean(r − b)``. Returns ``(logits (T + 1, K), baselines (T + 1,),
    mean_rewards (T,))``: rows 0 the start, row t + 1 after step t; the mean reward of each
    step's plays."""
    return _bandit_variant(means, uniforms, noise, learning_rate, baseline_rate)


def _gumbel_variant(logits, uniforms, temperature, noise="gumbel", noise_in_sample=True,
                    soft_forward=False, scale_first=False, inverse_temperature=True,
                    outer=True, noise_in_jacobian=True):
    logits, uniforms = np.asarray(logits, dtype=np.float64), np.asarray(uniforms)
    gumbel = {"gumbel": -np.log(-np.log(uniforms)), "exponential": -np.log(uniforms),
              "flipped": np.log(-np.log(uniforms))}[noise]
    perturbed = logits / temperature + gumbel if scale_first else logits + gumbel
    relaxed = softmax(perturbed if scale_first else perturbed / temperature)
    chosen = np.argmax(perturbed if noise_in_sample else logits, axis=-1)
    sample = relaxed if soft_forward else np.eye(logits.shape[-1])[chosen]
    y = relaxed if noise_in_jacobian else softmax(logits / temperature)
    jacobian = np.einsum("bi,ij->bij", y, np.eye(logits.shape[-1]))
    if outer:
        jacobian = jacobian - y[:, :, None] * y[:, None, :]
    if inverse_temperature:
        jacobian = jacobian / temperature
    return sample, jacobian


def straight_through_gumbel(logits, uniforms, temperature):
    """The straight-through Gumbel-softmax: ``g = −log(−log u)``; the forward sample is the
    one-hot of ``argmax(logits + g)``; the backward pass uses the Jacobian of
    ``y = softmax((logits + g) / τ)``, ``∂y_i/∂s_j = (y_i δ_ij − y_i y_j) / τ``. Returns
    ``(sample (B, K), jacobian (B, K, K))``."""
    return _gumbel_variant(logits, uniforms, temperature)


def make_predict(embeddings, positions, query, output, bias):
    """The model handed to 13.3: ``ids (N, T) → P(positive) (N,)``. Each real word's state is
    ``E[id] + P[t]``; attention pooling ``a = softmax_t(q · h_t)`` over the real words;
    ``P = σ(v · Σ_t a_t h_t + c)``; a sentence of padding only gets ``σ(c)``."""

    def predict(ids):
        ids = np.asarray(ids)
        states = embeddings[ids] + positions[:ids.shape[1]]  # (N, T, d)
        real = ids != PAD_ID
        scores = np.where(real, states @ query, -np.inf)  # (N, T)
        shifted = np.exp(scores - np.max(np.where(real, scores, -1e300), axis=-1,
                                         keepdims=True))
        weights = np.where(real, shifted, 0.0)
        weights = weights / np.maximum(weights.sum(axis=-1, keepdims=True), 1e-300)
        pooled = np.einsum("nt,ntd->nd", weights, states)
        return 1.0 / (1.0 + np.exp(-(pooled @ output + bias)))

    return predict


def _without(words, t, how):
    """The sentence ``words`` (real ids) without word ``t``, as ``how`` removes it."""
    if how == "delete":
        return np.delete(words, t)
    if how == "pad":
        return np.where(np.arange(len(words)) == t, PAD_ID, words)
    if how == "unknown":
        return np.where(np.arange(len(words)) == t, UNKNOWN_ID, words)
    if how == "truncate":
        return words[:t]
    if how == "roll":
        return np.concatenate([np.delete(words, t), words[t:t + 1]])
    raise ValueError(how)


def _leave_one_out_variant(predict, ids, how="delete", sign=1.0, absolute=False):
    ids = np.asarray(ids)
    full = predict(ids)
    attribution = np.zeros(ids.shape)
    for n, row in enumerate(ids):
        words = row[row != PAD_ID]
        for t in range(len(words)):
            variant = np.full(ids.shape[1], PAD_ID)
            kept = _without(words, t, how)
            variant[:len(kept)] = kept
            attribution[n, t] = sign * (full[n] - predict(variant[None])[0])
    return np.abs(attribution) if absolute else attribution


def leave_one_out_attribution(predict, ids):
    """``predict(ids) − predict(ids without word t)`` for every real word, the word deleted and
    the sentence closed up and re-padded: ``(B, T)``, 0 at padding."""
    return _leave_one_out_variant(predict, ids)


# --- Wrong answers that learners write ---------------------------------------------------------


def _bandit_mistake(**variant):
    def wrong(means, uniforms, noise, learning_rate, baseline_rate):
        return _bandit_variant(means, uniforms, noise, learning_rate, baseline_rate, **variant)
    return wrong


def _gumbel_mistake(**variant):
    def wrong(logits, uniforms, temperature):
        return _gumbel_variant(logits, uniforms, temperature, **variant)
    return wrong


def _leave_one_out_mistake(**variant):
    def wrong(predict, ids):
        return _leave_one_out_variant(predict, ids, **variant)
    return wrong


def invoke_with_model(function, case):
    """How 13.3 calls the learner's function: with the model built from the case's weights."""
    predict = make_predict(case["embeddings"], case["positions"], case["query"],
                           case["output"], case["bias"])
    return function(predict, np.asarray(case["ids"]))


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def bandit_cases(rng):
    """Arms with distinct means of both signs, far from 0 (so a missing baseline changes every
    step), noisy rewards, a few plays per step and enough steps for the policy to move."""
    cases = []
    for arms, steps, plays in ((3, 6, 4), (4, 12, 5), (5, 25, 8)):
        cases.append({"means": rng.permutation(np.linspace(1.0, 3.0, arms))
                      + rng.uniform(-0.2, 0.2),
                      "uniforms": rng.uniform(size=(steps, plays)),
                      "noise": rng.normal(scale=0.5, size=(steps, plays)),
                      "learning_rate": float(rng.choice([0.3, 0.5])),
                      "baseline_rate": float(rng.choice([0.2, 0.4]))})
    return cases


def gumbel_cases(rng):
    """Temperatures other than 1 (so a missing 1/τ or noise added after scaling shows), scores
    close together (so the noise decides the choice)."""
    cases = []
    for batch, arms, temperature in ((4, 3, 0.5), (6, 5, 2.0), (5, 4, 0.7)):
        cases.append({"logits": rng.normal(scale=0.7, size=(batch, arms)),
                      "uniforms": rng.uniform(0.02, 0.98, size=(batch, arms)),
                      "temperature": temperature})
    return cases


def leave_one_out_cases(rng):
    """Sentences of different lengths with padding, a model whose positions matter (so
    deleting a word differs from blanking it in place), weights large enough to move the
    prediction."""
    cases = []
    for sentences, length, vocabulary, depth in ((3, 6, 12, 4), (4, 7, 15, 5)):
        ids = np.zeros((sentences, length), dtype=np.int64)
        for row in range(sentences):
            count = int(rng.integers(2, length + 1)) if row else length
            ids[row, :count] = rng.integers(2, vocabulary, size=count)
        cases.append({"embeddings": rng.normal(size=(vocabulary, depth)),
                      "positions": rng.normal(size=(length, depth)),
                      "query": rng.normal(size=depth),
                      "output": rng.normal(scale=1.5, size=depth),
                      "bias": float(rng.normal(scale=0.3)),
                      "ids": ids})
    return cases


# --- Diagnoses read from the outputs ----------------------------------------------------------


def starts_at_zero(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Row 0 of both outputs is the start: zero logits, a zero baseline."""
    logits, baselines = mine["logits"], mine["baselines"]
    if logits.shape != expected["logits"].shape or baselines.shape != expected["baselines"].shape:
        return None
    if np.allclose(logits[0], 0.0) and np.isclose(baselines[0], 0.0):
        return None
    return ("Your first rows are not the starting values: row 0 holds the logits and the "
            "baseline before any step (all zero). Hint: record the values before the first "
            "step, then once after each step.")


def sample_is_one_hot(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    sample = mine["sample"]
    if sample.shape != expected["sample"].shape:
        return None
    if np.all(np.isin(sample, (0.0, 1.0))) and np.allclose(sample.sum(axis=-1), 1.0):
        return None
    return ("Your sample is not one-hot: the forward pass of the straight-through estimator "
            "reads exactly one choice per row. Hint: the relaxed softmax belongs to the "
            "backward pass only.")


def jacobian_columns_sum_to_zero(case: Case, mine: NamedOutputs,
                                 expected: NamedOutputs) -> str | None:
    jacobian = mine["jacobian"]
    if jacobian.shape != expected["jacobian"].shape:
        return None
    if np.allclose(jacobian.sum(axis=1), 0.0, atol=1e-8):
        return None
    return ("Your Jacobian's columns do not sum to 0, but the relaxed sample always sums to 1, "
            "so no change of the scores can change its sum. Hint: the derivative of a softmax "
            "has a term for the normalisation, besides the diagonal.")


def zero_at_padding(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    attribution = mine["attribution"]
    padding = np.asarray(case["ids"]) == PAD_ID
    if attribution.shape != padding.shape or np.all(attribution[padding] == 0.0):
        return None
    return ("Your attribution is not 0 at the padding: a padding position is not a word and "
            "has nothing to leave out. Hint: only positions holding a real word get a value.")


# --- The exercises ----------------------------------------------------------------------------

REINFORCE_BANDIT = Exercise(
    exercise_id="13.1",
    function_name="reinforce_bandit",
    make_cases=bandit_cases,
    reference=reinforce_bandit,
    outputs=("logits", "baselines", "mean_rewards"),
    mistakes=(
        Mistake(_bandit_mistake(subtract=False),
                "Your policy steps use the reward itself, not the reward minus the baseline: the "
                "baseline is learned but never used. Hint: the advantage r − b multiplies the "
                "score of the chosen arm."),
        Mistake(_bandit_mistake(update_baseline_first=True),
                "You updated the baseline before the policy step, so the step's advantage "
                "already saw this step's rewards. Hint: compute the advantages with the "
                "baseline as it was before the step, then update both."),
        Mistake(_bandit_mistake(sign=-1.0),
                "Your policy moves away from the arms that pay more: the step goes down the "
                "expected reward. Hint: REINFORCE climbs the reward, so the logits move along "
                "the advantage times the score."),
        Mistake(_bandit_mistake(centre=False),
                "Your score of a choice is its one-hot e_k alone; the gradient of log π_k with "
                "respect to the logits also subtracts π. Hint: differentiate log softmax at the "
                "chosen arm."),
        Mistake(_bandit_mistake(greedy=True),
                "Every play takes the most probable arm instead of sampling one, so the policy "
                "never explores. Hint: each play's uniform number picks the first arm whose "
                "cumulative probability exceeds it."),
        Mistake(_bandit_mistake(reduce=np.sum),
                "Your policy step sums over the plays instead of averaging, so its size grows "
                "with the number of plays. Hint: the estimate of the gradient is the mean over "
                "the step's plays."),
        Mistake(_bandit_mistake(baseline_rule="mean"),
                "Your baseline jumps to each step's mean reward instead of moving towards it by "
                "baseline_rate. Hint: one gradient step on the squared error (r − b)², with "
                "step size baseline_rate."),
        Mistake(_bandit_mistake(baseline_rule="no_minus"),
                "Your baseline adds the rewards without subtracting itself, so it grows without "
                "limit instead of tracking the average reward. Hint: the step on (r − b)² is "
                "proportional to r − b."),
        Mistake(_bandit_mistake(frozen_policy=True),
                "Your plays always sample from the starting probabilities: the policy is "
                "computed once, before the loop. Hint: recompute the softmax of the current "
                "logits at every step."),
    ),
    properties=(starts_at_zero,),
    shape_hints={"logits": "(steps + 1, arms)", "baselines": "(steps + 1,)",
                 "mean_rewards": "(steps,)"},
    error_hint="uniforms and noise are (steps, plays); means is (arms,); keep the logits as a "
               "vector of arms and the baseline as one number.",
    hint="each play's arm must come from its own uniform number (the first arm whose "
         "cumulative probability exceeds it), not from a random generator; then run two steps "
         "by hand on a 3-armed case and compare each row of your logits.",
)

STRAIGHT_THROUGH_GUMBEL = Exercise(
    exercise_id="13.2",
    function_name="straight_through_gumbel",
    make_cases=gumbel_cases,
    reference=straight_through_gumbel,
    outputs=("sample", "jacobian"),
    mistakes=(
        Mistake(_gumbel_mistake(noise="exponential"),
                "Your noise is −log u, exponential noise; Gumbel noise is −log(−log u). Hint: "
                "two logarithms, each with a minus sign."),
        Mistake(_gumbel_mistake(noise="flipped"),
                "Your noise has the wrong sign: log(−log u) instead of −log(−log u). Hint: "
                "large uniform numbers must give large noise."),
        Mistake(_gumbel_mistake(noise_in_sample=False),
                "Your sample is the argmax of the logits alone, the same choice every time. "
                "Hint: the Gumbel-max trick takes the argmax of the logits plus the noise."),
        Mistake(_gumbel_mistake(soft_forward=True),
                "Your forward sample is the relaxed softmax, not a one-hot choice. Hint: the "
                "forward pass reads exactly one choice; the softmax serves the backward pass."),
        Mistake(_gumbel_mistake(scale_first=True),
                "You divided the logits by the temperature before adding the noise; the "
                "relaxed sample divides their sum, softmax((s + g) / τ). Hint: add the noise "
                "first, then divide."),
        Mistake(_gumbel_mistake(inverse_temperature=False),
                "Your Jacobian misses the factor 1/τ that dividing by the temperature brings. "
                "Hint: the chain rule through (s + g) / τ."),
        Mistake(_gumbel_mistake(noise_in_jacobian=False),
                "Your Jacobian is that of softmax(s / τ), without the noise; the backward pass "
                "differentiates the relaxed sample that was drawn. Hint: use the same y as "
                "the forward pass's noise gave."),
    ),
    properties=(sample_is_one_hot,
                matches_variant("jacobian", lambda logits, uniforms, temperature:
                                _gumbel_variant(logits, uniforms, temperature, outer=False)[1],
                                "Your Jacobian is diagonal: y_i δ_ij / τ alone. Hint: every "
                                "y_i also falls when another score rises, by y_i y_j / τ."),
                jacobian_columns_sum_to_zero),
    shape_hints={"sample": "(batch, choices)", "jacobian": "(batch, choices, choices)"},
    error_hint="logits and uniforms are (batch, choices); the Jacobian has one (choices, "
               "choices) matrix per row.",
    hint="for one row, compute y by hand, then ∂y_i/∂s_j for i = j and for i ≠ j.",
)

LEAVE_ONE_OUT = Exercise(
    exercise_id="13.3",
    function_name="leave_one_out_attribution",
    make_cases=leave_one_out_cases,
    reference=leave_one_out_attribution,
    outputs=("attribution",),
    mistakes=(
        Mistake(_leave_one_out_mistake(how="pad"),
                "You blanked the word with padding in place; the word is to be deleted and the "
                "sentence closed up, so the words after it move one place forward. Hint: build "
                "the shorter sentence from the other words, then pad it at the end."),
        Mistake(_leave_one_out_mistake(how="unknown"),
                "You replaced the word by the unknown word; leave-one-out deletes it. Hint: the "
                "shorter sentence has one word fewer."),
        Mistake(_leave_one_out_mistake(how="truncate"),
                "Your shorter sentence stops before the word, dropping every word after it too. "
                "Hint: keep the words on both sides of the one you leave out."),
        Mistake(_leave_one_out_mistake(how="roll"),
                "Your shorter sentence still holds the word, moved to the end. Hint: the word "
                "must be gone, and the freed place padded."),
        Mistake(_leave_one_out_mistake(sign=-1.0),
                "Your attributions have the opposite sign: the prediction without the word "
                "minus the prediction with it. Hint: a word that pushes the prediction up "
                "should get a positive value."),
        Mistake(_leave_one_out_mistake(absolute=True),
                "You returned the size of each change, not the change itself: a word that "
                "pushes the prediction down must get a negative value. Hint: keep the sign."),
    ),
    properties=(zero_at_padding,),
    shape_hints={"attribution": "(sentences, tokens), like ids"},
    error_hint="predict takes a (N, T) array of ids, padded with 0, and returns (N,) "
               "probabilities; ids is (B, T).",
    hint="for one sentence, write out each shorter sentence and its prediction, and compare "
         "with your rows.",
    invoke=invoke_with_model,
)

EXERCISES = (REINFORCE_BANDIT, STRAIGHT_THROUGH_GUMBEL, LEAVE_ONE_OUT)
