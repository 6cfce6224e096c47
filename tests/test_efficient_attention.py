"""``course_lib.efficient_attention`` against the dense computation it replaces: tiled exact
attention, block-sparse attention and linear attention, with padding and causal masks, and what
``keras.ops.dot_product_attention(flash_attention=True)`` does here."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.attention import scaled_dot_product_attention
from course_lib.efficient_attention import (
    block_sparse_attention,
    causal_linear_attention,
    elu_feature_map,
    linear_attention,
    linear_attention_weights,
    longformer_mask,
    tiled_attention,
)
from tests.layer_cases import ATOL, assert_differ, length_mask, random_tensor, to_numpy

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "notebooks" / "results" / "11_efficient_attention_benchmark.json"
N, D, DV = 11, 8, 5  # one length for every test: on JAX each new shape costs a compilation


def sequence(seed=0, batch=2, length=N):
    """Query, keys and values ``(batch, length, ·)``, float32."""
    return (random_tensor((batch, length, D), seed), random_tensor((batch, length, D), seed + 1),
            random_tensor((batch, length, DV), seed + 2))


# The first sequence is padded at both ends: with a causal mask its first 3 queries may attend no
# key at all (they must get a zero output), and its last 2 keys are padding.
KEY_MASK = length_mask([N - 2, N], N)
KEY_MASK[0, :3] = False


def dense(query, keys, values, mask):
    return to_numpy(scaled_dot_product_attention(query, keys, values, mask=mask)[0])


@pytest.mark.parametrize("block_size, causal", [(4, False), (64, False), (1, True), (4, True)],
                         ids=["padding-block4", "padding-block64", "causal-block1",
                              "causal-block4"])
def test_tiled_attention_equals_scaled_dot_product_attention(block_size, causal):
    query, keys, values = sequence()
    expected = to_numpy(scaled_dot_product_attention(query, keys, values,
                                                     mask=KEY_MASK[:, None, :], causal=causal)[0])
    output = tiled_attention(query, keys, values, mask=KEY_MASK[:, None, :], causal=causal,
                             block_size=block_size)
    np.testing.assert_allclose(to_numpy(output), expected, rtol=0, atol=ATOL)
    if causal:
        np.testing.assert_array_equal(to_numpy(output)[0, :3], 0.0)  # nothing to attend


def test_tiled_attention_with_a_full_mask_and_heads_and_fewer_queries():
    query = random_tensor((2, 3, 4, D), 1)  # (B, H, Tq, d), Tq < Tk
    keys, values = random_tensor((2, 3, N, D), 2), random_tensor((2, 3, N, DV), 3)
    mask = np.random.default_rng(0).random((2, 1, 4, N)) < 0.5  # (B, 1, Tq, Tk)
    mask[0, 0, 1] = False  # one query with no key
    expected = to_numpy(scaled_dot_product_attention(query, keys, values, mask=mask)[0])
    output = tiled_attention(query, keys, values, mask=mask, block_size=3)
    np.testing.assert_allclose(to_numpy(output), expected, rtol=0, atol=ATOL)
    assert_differ(output, tiled_attention(query, keys, values, block_size=3))


def test_tiled_attention_compiles():
    query, keys, values = sequence()
    if keras.backend.backend() == "jax":
        import jax

        compiled = jax.jit(lambda q, k, v: tiled_attention(q, k, v, causal=True, block_size=4))
    else:
        import tensorflow as tf

        compiled = tf.function(
            lambda q, k, v: tiled_attention(q, k, v, causal=True, block_size=4),
            jit_compile=True)
    expected = scaled_dot_product_attention(query, keys, values, causal=True)[0]
    np.testing.assert_allclose(to_numpy(compiled(query, keys, values)), to_numpy(expected),
                               rtol=0, atol=ATOL)


def test_sliding_window_mask_is_the_longformer_pattern():
    mask = longformer_mask(6, window=1, global_tokens=1)
    expected = np.array([[1, 1, 1, 1, 1, 1],
                         [1, 1, 1, 0, 0, 0],
                         [1, 1, 1, 1, 0, 0],
                         [1, 0, 1, 1, 1, 0],
                         [1, 0, 0, 1, 1, 1],
                         [1, 0, 0, 0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(longformer_mask(6, 1, 1, causal=True), np.tril(expected))


# (window, global tokens, block size, causal): blocks as wide as the window, narrower (two
# neighbouring blocks each side), wider, and a window longer than the sequence.
@pytest.mark.parametrize("window, global_tokens, block_size, causal", [
    (2, 0, None, False), (3, 2, 2, False), (2, 1, 5, True), (20, 1, None, True)],
    ids=lambda value: str(value))
def test_block_sparse_attention_equals_the_dense_masked_computation(window, global_tokens,
                                                                   block_size, causal):
    query, keys, values = sequence(3)
    pattern = longformer_mask(N, window, global_tokens, causal)
    expected = dense(query, keys, values, pattern & KEY_MASK[:, None, :])
    output = block_sparse_attention(query, keys, values, window, global_tokens,
                                    key_mask=KEY_MASK, causal=causal, block_size=block_size)
    np.testing.assert_allclose(to_numpy(output), expected, rtol=0, atol=ATOL)


def test_block_sparse_attention_with_heads_and_one_padding_mask_for_all_of_them():
    query, keys = random_tensor((2, 3, N, D), 1), random_tensor((2, 3, N, D), 2)
    values = random_tensor((2, 3, N, DV), 3)
    key_mask = KEY_MASK[:, None, :]  # (B, 1, n): the same padding for every head
    expected = dense(query, keys, values, longformer_mask(N, 2, 1) & key_mask[..., None, :])
    output = block_sparse_attention(query, keys, values, 2, 1, key_mask=key_mask, block_size=3)
    np.testing.assert_allclose(to_numpy(output), expected, rtol=0, atol=ATOL)


def test_block_sparse_attention_is_not_full_attention():
    query, keys, values = sequence(3)
    assert_differ(block_sparse_attention(query, keys, values, window=2, global_tokens=1),
                  dense(query, keys, values, None))


def test_linear_attention_is_its_parallel_form():
    query, keys, values = sequence(5)
    weights = to_numpy(linear_attention_weights(query, keys, mask=KEY_MASK[:, None, :]))
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(weights[~np.broadcast_to(KEY_MASK[:, None, :], weights.shape)],
                                  0.0)
    output = linear_attention(query, keys, values, key_mask=KEY_MASK)
    np.testing.assert_allclose(to_numpy(output), weights @ values, rtol=0, atol=ATOL)
    assert_differ(output, dense(query, keys, values, KEY_MASK[:, None, :]))  # not softmax


def token_by_token(query, keys, values, key_mask):
    """The recurrence in NumPy: ``S += φ(k_t) v_tᵀ``, ``z += φ(k_t)``, one token at a time."""
    phi_q = to_numpy(elu_feature_map(query))
    phi_k = to_numpy(elu_feature_map(keys)) * key_mask[..., None]
    outputs = np.zeros(values.shape[:-1] + (values.shape[-1],))
    state = np.zeros((len(query), D, DV))
    normaliser = np.zeros((len(query), D))
    for t in range(query.shape[1]):
        state += phi_k[:, t, :, None] * values[:, t, None, :]
        normaliser += phi_k[:, t]
        denominator = np.einsum("bd,bd->b", phi_q[:, t], normaliser)
        numerator = np.einsum("bd,bdv->bv", phi_q[:, t], state)
        outputs[:, t] = np.where(denominator[:, None] > 0,
                                 numerator / np.where(denominator > 0, denominator, 1)[:, None], 0)
    return outputs


@pytest.mark.parametrize("chunk_size", [1, 3, 64], ids=lambda c: f"chunk{c}")
def test_causal_linear_attention_is_a_recurrence_equal_to_the_masked_parallel_form(chunk_size):
    query, keys, values = sequence(7)
    weights = to_numpy(linear_attention_weights(query, keys, mask=KEY_MASK[:, None, :],
                                                causal=True))
    output = to_numpy(causal_linear_attention(query, keys, values, key_mask=KEY_MASK,
                                              chunk_size=chunk_size))
    np.testing.assert_allclose(output, weights @ values, rtol=0, atol=ATOL)
    np.testing.assert_allclose(output, token_by_token(query, keys, values, KEY_MASK), rtol=0,
                               atol=ATOL)
    np.testing.assert_array_equal(output[0, :3], 0.0)  # no key at or before them


def test_causal_linear_attention_does_not_read_the_future():
    query, keys, values = sequence(7)
    changed = values.copy()
    changed[:, -1] += 1.0
    before = to_numpy(causal_linear_attention(query, keys, values, chunk_size=4))
    after = to_numpy(causal_linear_attention(query, keys, changed, chunk_size=4))
    np.testing.assert_allclose(before[:, :-1], after[:, :-1], rtol=0, atol=ATOL)
    assert_differ(before[:, -1], after[:, -1])


@pytest.mark.parametrize("call, message", [
    (lambda q, k, v: tiled_attention(q, k[:, :4], v), r"Key and value lengths must agree"),
    (lambda q, k, v: tiled_attention(q, k, v, mask=KEY_MASK), r"`mask` of shape \(2, 11\)"),
    (lambda q, k, v: tiled_attention(q, k, v, block_size=0), r"`block_size` must be"),
    (lambda q, k, v: block_sparse_attention(q[:, :4], k, v, 2),
     r"Query and key lengths must agree .*\(2, 4, 8\).*\(2, 11, 8\)"),
    (lambda q, k, v: block_sparse_attention(q, k, v, 2, key_mask=KEY_MASK[:, :4]),
     r"`key_mask` of shape \(2, 4\)"),
    (lambda q, k, v: linear_attention(q, k[..., :3], v), r"Query and key depths must agree"),
    (lambda q, k, v: causal_linear_attention(q, k, v, chunk_size=2.5), r"`chunk_size` must be"),
])
def test_bad_input_names_what_was_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call(*sequence())


HALF_PRECISION_TOLERANCE = {"float16": 2e-2, "bfloat16": 1.5e-1}  # as for the layers' policies


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["tiled", "block_sparse", "linear", "causal_linear"])
def test_half_precision_inputs_give_half_precision_outputs(name, dtype):
    """A layer under a mixed dtype policy calls these functions with float16 or bfloat16
    tensors: the output keeps that type and the float32 numbers within its precision."""
    calls = {"tiled": lambda q, k, v: tiled_attention(q, k, v, mask=KEY_MASK[:, None, :],
                                                      causal=True, block_size=4),
             "block_sparse": lambda q, k, v: block_sparse_attention(
                 q, k, v, window=2, global_tokens=1, key_mask=KEY_MASK),
             "linear": lambda q, k, v: linear_attention(q, k, v, key_mask=KEY_MASK),
             "causal_linear": lambda q, k, v: causal_linear_attention(q, k, v, chunk_size=4)}
    inputs = sequence()
    half = calls[name](*(ops.cast(x, dtype) for x in inputs))
    assert ops.dtype(half) == dtype
    np.testing.assert_allclose(to_numpy(ops.cast(half, "float32")), to_numpy(calls[name](*inputs)),
                               rtol=0, atol=HALF_PRECISION_TOLERANCE[dtype])


def test_flash_attention_here_does_what_the_benchmark_recorded():
    """The benchmark's JSON records, per backend, what asking Keras for flash attention did on
    this kind of machine (a CPU); the same call now must do the same."""
    recorded = json.loads(BENCHMARK.read_text(encoding="utf-8"))["flash_attention"]
    query = np.random.default_rng(0).standard_normal((1, 16, 1, 8)).astype("float32")
    with pytest.raises(Exception) as refused:  # noqa: B017 - which one is the backend's to say
        ops.dot_product_attention(query, query, query, flash_attention=True)
    line = f"flash_attention=True: {type(refused.value).__name__}: {refused.value}"
    assert line in recorded[keras.backend.backend()]
