"""Lesson 13's accounts of which words mattered, on every backend: attention pooling equals
Keras's dot-product ``Attention`` with one learned query, gradient × input and leave-one-out give
what they promise on models whose answer is known, Kendall's τ_b is SciPy's, shuffled weights
keep their values, and lesson 06's classifier opens up consistently (its own pooling weights
give its own prediction)."""

import keras
import numpy as np
import pytest
import scipy.stats
from keras import ops

from course_lib import explanations
from course_lib.attribution import (
    gradient_times_input,
    kendall_tau,
    leave_one_out,
    permuted_weights,
    rank_correlations,
    without_each_word,
)
from course_lib.layers import AttentionPooling
from course_lib.sentiment_classifier import SentenceClassifier, build_sentence_classifier
from tests.layer_cases import (
    ATOL,
    assert_valid_rows_close,
    padding_mask_for,
    random_tensor,
    randomize_weights,
    to_numpy,
)

pytestmark = pytest.mark.backends

IDS = np.array([[5, 6, 7, 8, 0, 0], [9, 5, 5, 6, 7, 10], [4, 0, 0, 0, 0, 0]], dtype="int32")


def test_attention_pooling_is_keras_attention_with_one_learned_query():
    values = random_tensor((2, 5, 6), 1)
    mask = padding_mask_for(5)
    layer = AttentionPooling()
    layer(values, mask)
    randomize_weights(layer, seed=2)
    pooled, weights = (to_numpy(x) for x in layer(values, mask))
    query = np.broadcast_to(to_numpy(layer.query), (2, 1, 6))
    theirs = keras.layers.Attention()([query, values], mask=[None, mask])  # (B, 1, D)
    assert_valid_rows_close(pooled, to_numpy(theirs)[:, 0], atol=ATOL)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(weights[~mask] == 0.0)
    np.testing.assert_allclose(pooled, np.einsum("bt,btd->bd", weights, values), atol=ATOL)
    other = AttentionPooling()
    other(values, mask)
    randomize_weights(other, seed=3)
    assert np.abs(to_numpy(other(values, mask)[0]) - pooled).max() > 1e-2


def test_gradient_times_input_of_a_linear_function_is_each_words_share():
    inputs = random_tensor((2, 4, 3), 4)
    weights = random_tensor((3,), 5)
    mask = padding_mask_for(4)

    def shares(x):
        return ops.einsum("btd,d->bt", x, weights)

    attribution = gradient_times_input(lambda x: ops.sum(shares(x), axis=-1), inputs, mask)
    np.testing.assert_allclose(attribution, np.where(mask, inputs @ weights, 0.0), rtol=1e-5)
    # for a quadratic f = (Σ_t w·x_t)², gradient × input is 2 f_t · Σ f_t
    attribution = gradient_times_input(lambda x: ops.sum(shares(x), axis=-1) ** 2, inputs)
    each = inputs @ weights
    np.testing.assert_allclose(attribution, 2 * each * each.sum(-1, keepdims=True), rtol=1e-4)


def test_leave_one_out_deletes_the_word_and_closes_the_sentence_up():
    variants, sentence, position = without_each_word(IDS)
    assert len(variants) == 4 + 6 + 1
    np.testing.assert_array_equal(variants[1], [5, 7, 8, 0, 0, 0])
    np.testing.assert_array_equal(variants[4 + 2], [9, 5, 6, 7, 10, 0])  # one of the two 5s
    np.testing.assert_array_equal(variants[-1], [0] * 6)
    assert sentence.tolist() == [0] * 4 + [1] * 6 + [2] and position[-1] == 0

    value = np.arange(12.0) ** 1.5  # an additive model: each word id adds its value

    def predict(ids):
        return np.where(ids > 0, value[ids], 0.0).sum(axis=-1)

    attribution = leave_one_out(predict, IDS, batch_size=3)
    np.testing.assert_allclose(attribution, np.where(IDS > 0, value[IDS], 0.0))

    def order_matters(ids):  # the first word counts twice: deleting moves the next word up
        return predict(ids) + np.where(ids[:, 0] > 0, value[ids[:, 0]], 0.0)

    attribution = leave_one_out(order_matters, IDS)
    assert attribution[0, 0] == pytest.approx(2 * value[5] - value[6])
    with pytest.raises(ValueError, match="one number per sentence: 3 sentences gave"):
        leave_one_out(lambda ids: np.zeros((len(ids), 2)), IDS)


def test_kendall_tau_is_scipys_tau_b_with_ties():
    rng = np.random.default_rng(6)
    for length in (2, 5, 12):
        first = rng.integers(0, 4, size=length).astype(float)  # ties on purpose
        second = first + rng.normal(scale=1.5, size=length)
        assert kendall_tau(first, second) == pytest.approx(
            scipy.stats.kendalltau(first, second).statistic, abs=1e-12)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3])) and np.isnan(kendall_tau([1], [2]))
    mask = IDS > 0
    taus = rank_correlations(np.where(mask, IDS, 0), np.where(mask, -IDS, 0), mask)
    assert taus[0] == -1.0 and taus[1] == -1.0 and np.isnan(taus[2])


def test_permuted_weights_shuffle_the_real_words_only():
    weights = np.where(IDS > 0, np.random.default_rng(7).random(IDS.shape), 0.0)
    shuffled = permuted_weights(weights, IDS > 0, permutations=50, seed=1)
    assert shuffled.shape == (50, 3, 6)
    for p in range(50):
        for row in range(3):
            np.testing.assert_allclose(np.sort(shuffled[p, row]), np.sort(weights[row]))
    assert np.all(shuffled[:, IDS == 0] == 0)
    assert np.mean(np.any(shuffled[:, 1] != weights[1], axis=-1)) > 0.9


@pytest.fixture(scope="module")
def classifier():
    model = build_sentence_classifier(12, seed=3, d_model=8)
    randomize_weights(model, seed=4)
    return model


def test_the_classifier_opens_up_consistently(classifier):
    inside = classifier.explain(IDS)
    probability = to_numpy(classifier(IDS))[:, 0]
    np.testing.assert_allclose(inside["probability"], probability, rtol=1e-5)
    np.testing.assert_allclose(inside["pooling"].sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(inside["pooling"][IDS == 0] == 0)
    np.testing.assert_allclose(inside["self_attention"][IDS > 0].sum(axis=-1), 1.0, rtol=1e-5)
    uniform = build_sentence_classifier(12, pooling="uniform", d_model=8).explain(IDS)
    np.testing.assert_allclose(uniform["pooling"], (IDS > 0) / (IDS > 0).sum(-1, keepdims=True),
                               rtol=1e-6)
    clone = SentenceClassifier.from_config(classifier.get_config())
    clone(IDS)
    clone.set_weights(classifier.get_weights())
    np.testing.assert_allclose(to_numpy(clone(IDS)), to_numpy(classifier(IDS)), atol=1e-6)
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        SentenceClassifier(12, pooling="max")


def test_the_three_accounts_of_the_classifier(classifier):
    accounts = explanations.word_attributions(classifier, IDS)
    for name in explanations.ACCOUNTS:
        assert accounts[name].shape == IDS.shape and np.all(accounts[name][IDS == 0] == 0)
    # leave-one-out of the second word of sentence 0, by hand
    without = np.array([[5, 7, 8, 0, 0, 0]], dtype="int32")
    expected = accounts["probability"][0] - classifier.explain(without)["probability"][0]
    assert accounts["leave_one_out"][0, 1] == pytest.approx(expected, abs=1e-6)
    # gradient × input sums, over the words, to the first-order change of the logit when
    # every word vector goes to 0 (positions stay): here checked by finite differences
    vectors = to_numpy(classifier.word_vectors(IDS)).astype("float64")
    mask = ops.convert_to_tensor(IDS > 0)

    def logit(scale):
        return to_numpy(classifier.logit_from_word_vectors(
            (vectors * scale).astype("float32"), mask)).astype("float64")

    slope = (logit(1.0 + 1e-2) - logit(1.0 - 1e-2)) / 2e-2
    np.testing.assert_allclose(accounts["gradient_times_input"].sum(axis=-1), slope, rtol=2e-2,
                               atol=1e-3)
    agreement = explanations.agreement(accounts)
    assert set(agreement) == {f"{a}/{b}" for a, b in explanations.PAIRS}
    assert np.isnan(agreement["attention/leave_one_out"]["tau"][2])  # one word


def test_the_counterfactual_test_leaves_the_states_alone(classifier):
    test = explanations.counterfactual_test(classifier, IDS, permutations=20, seed=1)
    assert test["permuted"].shape == (20, 3)
    np.testing.assert_allclose(test["permuted"][:, 2], test["probability"][2], rtol=1e-6)
    inside = classifier.explain(IDS)
    own = to_numpy(classifier.logit_from_pooling(inside["states"], inside["pooling"]))
    np.testing.assert_allclose(own, inside["logit"], rtol=1e-6)
    rates = explanations.flip_rates(
        {"probability": np.array([0.9, 0.2]), "permuted": np.array([[0.4, 0.1], [0.8, 0.6]]),
         "uniform": np.array([0.7, 0.7])}, labels=np.array([1, 1]))
    assert rates["permuted_flip_rate"] == 0.5 and rates["uniform_flip_rate"] == 0.5
    assert rates["accuracy"] == 0.5 and rates["permuted_accuracy"] == 0.5
    assert rates["uniform_accuracy"] == 1.0
    assert rates["median_permuted_change"] == pytest.approx(np.median([0.3, 0.25]))  # per row
