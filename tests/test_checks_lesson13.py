"""Lesson 13's self-checks: the references agree with the library (the REINFORCE surrogate's
gradient, the straight-through estimator's gradient, leave-one-out), the bandit's policy does
learn, and the diagnoses read from the outputs name mistakes that no registered wrong answer
covers. (Every registered mistake is tested on five seeds in tests/test_checks.py.)"""

import numpy as np
from keras import ops

from course_lib.attribution import input_gradient, leave_one_out
from course_lib.checks import EXERCISES, lesson13, run_check
from course_lib.checks.core import CHECK_SEED
from course_lib.estimators import reinforce_losses, relaxed_one_hot
from course_lib.numpy_softmax import softmax


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- The references agree with the library ----------------------------------------------------


def test_each_bandit_step_follows_the_librarys_reinforce_surrogate():
    case = EXERCISES["13.1"].cases(CHECK_SEED)[1]
    logits, baselines, _ = lesson13.reinforce_bandit(*case.values())
    rate = case["learning_rate"]
    for step in range(3):
        arms = lesson13._sample(softmax(logits[step]), case["uniforms"][step])
        rewards = case["means"][arms] + case["noise"][step]

        def surrogate(x, arms=arms, rewards=rewards, step=step):
            log_pi = ops.take_along_axis(ops.log_softmax(x, axis=-1), arms[:, None], axis=-1)
            return reinforce_losses(log_pi[:, 0], rewards.astype("float32"),
                                    np.full(len(arms), baselines[step], "float32"))[0]

        gradient = input_gradient(surrogate, np.tile(logits[step], (len(arms), 1)))
        np.testing.assert_allclose(logits[step + 1], logits[step] - rate * gradient.mean(axis=0),
                                   rtol=1e-5, atol=1e-6)


def test_the_bandit_learns_the_best_arm_and_the_baseline_the_reward():
    rng = np.random.default_rng(1)
    means = np.array([0.5, 2.0, 1.0, 1.5])
    logits, baselines, mean_rewards = lesson13.reinforce_bandit(
        means, rng.uniform(size=(300, 16)), rng.normal(scale=0.5, size=(300, 16)), 0.5, 0.2)
    assert softmax(logits[-1])[1] > 0.9
    assert abs(baselines[-1] - 2.0) < 0.3
    assert mean_rewards[:5].mean() < 1.6 < 1.9 < mean_rewards[-50:].mean()  # uniform: 1.25


def test_the_sampling_rule_follows_the_probabilities():
    probabilities = np.array([0.1, 0.6, 0.3])
    arms = lesson13._sample(probabilities, np.random.default_rng(2).uniform(size=30_000))
    np.testing.assert_allclose(np.bincount(arms) / len(arms), probabilities, atol=0.01)
    assert lesson13._sample(probabilities, np.array([0.0, 0.1, 0.69, 0.7, 0.999])).tolist() == [
        0, 1, 1, 2, 2]


def test_the_gumbel_reference_is_the_librarys_straight_through_estimator():
    for case in EXERCISES["13.2"].cases(CHECK_SEED):
        logits, uniforms, temperature = case.values()
        sample, jacobian = lesson13.straight_through_gumbel(*case.values())
        perturbed = (logits - np.log(-np.log(uniforms))).astype("float32")
        np.testing.assert_array_equal(sample, ops.convert_to_numpy(
            relaxed_one_hot(perturbed, temperature)))
        for i in range(logits.shape[-1]):  # row i of the Jacobian: the gradient of z_i
            gradient = input_gradient(
                lambda x, i=i, t=temperature: relaxed_one_hot(x, t)[:, i], perturbed)
            np.testing.assert_allclose(jacobian[:, i, :], gradient, rtol=1e-4, atol=1e-6)


def test_leave_one_out_reference_is_the_librarys():
    for case in EXERCISES["13.3"].cases(CHECK_SEED):
        predict = lesson13.make_predict(case["embeddings"], case["positions"], case["query"],
                                        case["output"], case["bias"])
        np.testing.assert_allclose(lesson13.leave_one_out_attribution(predict, case["ids"]),
                                   leave_one_out(predict, case["ids"]), atol=1e-12)


def test_the_handed_in_model_reads_positions_and_ignores_padding():
    case = EXERCISES["13.3"].cases(CHECK_SEED)[0]
    predict = lesson13.make_predict(case["embeddings"], case["positions"], case["query"],
                                    case["output"], case["bias"])
    ids = case["ids"]
    padded = np.concatenate([ids, np.zeros((len(ids), 2), ids.dtype)], axis=1)
    positions = np.concatenate([case["positions"], np.ones((2, case["positions"].shape[1]))])
    longer = lesson13.make_predict(case["embeddings"], positions, case["query"],
                                   case["output"], case["bias"])
    np.testing.assert_allclose(longer(padded), predict(ids), rtol=1e-12)
    reversed_words = ids.copy()
    reversed_words[0] = ids[0, ::-1]  # sentence 0 is full length: same words, other places
    assert abs(predict(reversed_words)[0] - predict(ids)[0]) > 1e-3


# --- Diagnoses read from the outputs ----------------------------------------------------------


def test_rows_that_do_not_start_at_zero_are_named():
    def reinforce_bandit(means, uniforms, noise, learning_rate, baseline_rate):
        logits, baselines, mean_rewards = lesson13.reinforce_bandit(
            means, uniforms, noise, learning_rate, baseline_rate)
        return (logits[1:].repeat([1] * (len(logits) - 2) + [2], axis=0), baselines + 0.1,
                mean_rewards)

    assert reason_for("13.1", reinforce_bandit).startswith(
        "Your first rows are not the starting values")


def test_a_sample_that_is_not_one_hot_is_named():
    def straight_through_gumbel(logits, uniforms, temperature):
        sample, jacobian = lesson13.straight_through_gumbel(logits, uniforms, temperature)
        return 0.9 * sample, jacobian

    assert reason_for("13.2", straight_through_gumbel).startswith("Your sample is not one-hot")


def test_a_diagonal_jacobian_is_named():
    def straight_through_gumbel(logits, uniforms, temperature):
        sample, _ = lesson13.straight_through_gumbel(logits, uniforms, temperature)
        relaxed = softmax((logits - np.log(-np.log(uniforms))) / temperature)
        return sample, np.einsum("bi,ij->bij", relaxed, np.eye(logits.shape[-1])) / temperature

    assert reason_for("13.2", straight_through_gumbel).startswith("Your Jacobian is diagonal")


def test_a_jacobian_whose_columns_do_not_sum_to_zero_is_named():
    def straight_through_gumbel(logits, uniforms, temperature):
        sample, jacobian = lesson13.straight_through_gumbel(logits, uniforms, temperature)
        return sample, jacobian + 0.01

    assert reason_for("13.2", straight_through_gumbel).startswith(
        "Your Jacobian's columns do not sum to 0")


def test_attribution_at_the_padding_is_named():
    def leave_one_out_attribution(predict, ids):
        return lesson13.leave_one_out_attribution(predict, ids) + 0.01

    assert reason_for("13.3", leave_one_out_attribution).startswith(
        "Your attribution is not 0 at the padding")
