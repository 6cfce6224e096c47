"""Lesson 10's library: rotary embedding, ALiBi, grouped-query attention, the sliding-window
mask, their cache (a ring of slots), the GPT's options, and the key/value cache's memory.

Equality with keras_hub (``RotaryEmbedding``, ``AlibiBias``) and Keras
(``GroupQueryAttention``, ``MultiHeadAttention(sliding_window=w)``) at ``atol=1e-5`` on valid
rows, each paired with a case where it must fail; the defining properties (RoPE's scores
depend on the offset only, a cached step equals full attention, a ring of ``w`` slots is
enough for a window ``w``); on TensorFlow and JAX (``@pytest.mark.backends``).
"""

import keras
import keras_hub
import numpy as np
import pytest

from course_lib import generation, gpt
from course_lib.attention import position_visibility, sliding_window_mask
from course_lib.layers import (
    AlibiBias,
    GroupedQueryAttention,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositionEncoding,
    TransformerDecoderBlock,
)
from course_lib.layers.alibi_bias import alibi_slopes
from course_lib.layers.grouped_query_attention import (
    attention_parameters,
    ring_slot_positions,
    ring_write,
)
from course_lib.numpy_softmax import softmax
from tests.layer_cases import (
    assert_differ,
    assert_valid_rows_close,
    padding_mask_for,
    plain_keras_attention,
    random_tensor,
    randomize_weights,
    to_numpy,
)

pytestmark = pytest.mark.backends


@pytest.fixture(autouse=True, scope="module")
def _no_flash_attention():
    with plain_keras_attention():
        yield


def causal(length, key_length=None):
    return np.tril(np.ones((length, key_length or length), bool))


# --- Rotary embedding -------------------------------------------------------------------------


@pytest.mark.parametrize("max_wavelength, start_index", [(10000, 0), (100, 5)])
@pytest.mark.parametrize("shape", [(2, 6, 8), (2, 7, 3, 10)], ids=str)
def test_rotary_embedding_equals_keras_hub(shape, max_wavelength, start_index):
    x = random_tensor(shape, 1)
    theirs = keras_hub.layers.RotaryEmbedding(max_wavelength=max_wavelength)
    ours = RotaryEmbedding(max_wavelength=max_wavelength)
    assert_valid_rows_close(ours(x, start_index=start_index),
                            theirs(x, start_index=start_index))
    # another start, or another wavelength, gives other numbers: the comparison can fail
    assert_differ(ours(x, start_index=start_index + 1), theirs(x, start_index=start_index))
    assert_differ(RotaryEmbedding(max_wavelength=max_wavelength // 10)(x, start_index=start_index),
                  theirs(x, start_index=start_index))


def test_rotary_embedding_with_positions_and_scaling_equals_keras_hub():
    x = random_tensor((2, 5, 2, 6), 2)
    positions = np.array([[3, 9, 4, 0, 7], [1, 1, 2, 30, 5]])
    theirs = keras_hub.layers.RotaryEmbedding(scaling_factor=4.0)
    ours = RotaryEmbedding(scaling_factor=4.0)
    assert_valid_rows_close(ours(x, positions=positions), theirs(x, positions=positions))


def test_rotary_scores_depend_only_on_the_offset():
    """``RoPE(q, m) · RoPE(k, n)`` is a function of ``n − m``: the same pair of vectors at 200
    pairs of positions with 4 offsets gives 4 scores. Lesson 06's sinusoidal encoding, added
    to the vectors instead, gives scores that change with the positions."""
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(1, 1, 16)).astype("float32"), rng.normal(size=(1, 1, 16)).astype(
        "float32")
    rope = RotaryEmbedding(max_wavelength=50)
    for offset in (0, 1, 7, 31):
        starts = rng.integers(0, 400, size=(50, 1))                   # 50 pairs of positions
        rotated_q = to_numpy(rope(np.repeat(q, 50, axis=0), positions=starts))
        rotated_k = to_numpy(rope(np.repeat(k, 50, axis=0), positions=starts + offset))
        scores = np.sum(rotated_q * rotated_k, axis=-1).ravel()
        np.testing.assert_allclose(scores, scores[0], rtol=0, atol=2e-4)
    encoding = to_numpy(SinusoidalPositionEncoding(max_wavelength=50)(
        np.zeros((1, 420, 16), "float32")))[0]
    added = [float(np.sum((q[0, 0] + encoding[m]) * (k[0, 0] + encoding[m + 7])))
             for m in range(0, 400, 40)]
    assert np.ptp(added) > 0.1


def test_rotary_embedding_keeps_norms_and_position_zero():
    x = random_tensor((2, 9, 12), 4)
    rotated = to_numpy(RotaryEmbedding()(x, start_index=3))
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=1e-5)
    np.testing.assert_allclose(to_numpy(RotaryEmbedding()(x))[:, 0], x[:, 0], atol=1e-6)


# --- ALiBi --------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_heads", [1, 4, 6, 8, 12])
def test_alibi_slopes_are_keras_hubs(num_heads):
    theirs = keras_hub.layers.AlibiBias()._get_slopes(num_heads)
    np.testing.assert_allclose(alibi_slopes(num_heads), theirs, rtol=1e-12)
    if num_heads == 8:
        np.testing.assert_allclose(alibi_slopes(8), 0.5 ** np.arange(1, 9))


@pytest.mark.parametrize("num_heads, alibi_bias_max", [(4, 8), (6, 8), (8, 4)])
def test_alibi_weights_equal_keras_hub(num_heads, alibi_bias_max):
    """keras_hub's bias is ``m (j − (Tk − 1))``, ours ``m (j − i)``: they differ by a constant
    on each query row, which the causal softmax removes; on the last row they are equal."""
    scores = random_tensor((2, num_heads, 6, 6), 5)
    theirs = to_numpy(keras_hub.layers.AlibiBias(alibi_bias_max)(scores))
    ours = to_numpy(AlibiBias(alibi_bias_max)(scores))
    mask = causal(6)
    np.testing.assert_allclose(softmax(ours, mask=mask), softmax(theirs, mask=mask), atol=1e-6)
    np.testing.assert_allclose(ours[:, :, -1], theirs[:, :, -1], atol=1e-5)
    assert_differ(ours[:, :, 0], theirs[:, :, 0])               # the scores themselves differ
    other = to_numpy(AlibiBias(alibi_bias_max + 1)(scores))
    assert_differ(softmax(other, mask=mask), softmax(theirs, mask=mask))


def test_alibi_bias_is_minus_slope_times_distance_at_any_position():
    bias = to_numpy(AlibiBias().bias(2, np.array([10, 11]), np.array([3, 10, 11])))
    slopes = alibi_slopes(2)
    expected = -slopes[:, None, None] * np.array([[7, 0, -1], [8, 1, 0]])
    np.testing.assert_allclose(bias, expected, rtol=1e-6)


# --- Sliding-window mask ------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 3, 9])
@pytest.mark.parametrize("use_causal_mask", [True, False], ids=["causal", "band"])
def test_sliding_window_mask_equals_keras_multi_head_attention(window, use_causal_mask):
    x = random_tensor((2, 7, 8), 6)
    theirs = keras.layers.MultiHeadAttention(2, 4, sliding_window=window)
    theirs(x, x)
    randomize_weights(theirs, seed=1)
    ours = MultiHeadAttention(2, 4)
    ours.copy_weights_from(theirs)
    mask = sliding_window_mask(window, 7, causal=use_causal_mask)[None]
    expected, expected_weights = theirs(x, x, use_causal_mask=use_causal_mask,
                                        return_attention_scores=True)
    output, weights = ours(x, x, attention_mask=mask, return_attention_scores=True)
    assert_valid_rows_close(output, expected)
    assert_valid_rows_close(weights, expected_weights)
    np.testing.assert_array_equal(to_numpy(weights) > 0, to_numpy(expected_weights) > 0)
    full = ours(x, x, use_causal_mask=use_causal_mask)
    if window < 7:
        assert_differ(full, expected)                 # without the window: other outputs


def test_sliding_window_mask_with_an_offset():
    mask = to_numpy(sliding_window_mask(3, 2, 8, offset=5))
    np.testing.assert_array_equal(mask, [[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 0]])
    visible = to_numpy(position_visibility(np.array([4]), np.array([-2, 1, 2, 3, 4, 5]), 3))
    np.testing.assert_array_equal(visible, [[0, 0, 1, 1, 1, 0]])


# --- Grouped-query attention --------------------------------------------------------------------

GQA_MASKS = ["causal", "padding", "window"]


def keras_gqa(kv_heads, window=None, use_bias=True, seed=1):
    x = random_tensor((2, 6, 16), 0)
    layer = keras.layers.GroupQueryAttention(4, 4, kv_heads, sliding_window=window,
                                             use_bias=use_bias)
    layer(x, x)
    randomize_weights(layer, seed)
    return layer


@pytest.mark.parametrize("mask_kind", GQA_MASKS)
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_grouped_query_attention_equals_keras(kv_heads, mask_kind):
    query, value = random_tensor((2, 6, 16), 1), random_tensor((2, 6, 16), 2)
    window = 3 if mask_kind == "window" else None
    theirs = keras_gqa(kv_heads, window)
    ours = GroupedQueryAttention(4, 4, kv_heads, sliding_window=window)
    ours.copy_weights_from(theirs)
    kwargs = ({"attention_mask": padding_mask_for(6)[:, None, :]} if mask_kind == "padding"
              else {"use_causal_mask": True})
    assert_valid_rows_close(ours(query, value, **kwargs), theirs(query, value, **kwargs))
    _, ours_weights = ours(query, value, return_attention_scores=True, **kwargs)
    _, theirs_weights = theirs(query, value, return_attention_scores=True, **kwargs)
    assert_valid_rows_close(ours_weights, theirs_weights)
    other = GroupedQueryAttention(4, 4, kv_heads, sliding_window=window)
    other.copy_weights_from(keras_gqa(kv_heads, window, seed=2))
    assert_differ(other(query, value, **kwargs), theirs(query, value, **kwargs))


def test_grouped_query_attention_without_bias_equals_keras():
    x = random_tensor((2, 6, 16), 1)
    theirs = keras_gqa(2, use_bias=False)
    ours = GroupedQueryAttention(4, 4, 2, use_bias=False)
    ours.copy_weights_from(theirs)
    assert_valid_rows_close(ours(x, x, use_causal_mask=True), theirs(x, x, use_causal_mask=True))


def test_grouped_query_attention_with_all_heads_is_multi_head_attention():
    x = random_tensor((2, 6, 16), 3)
    theirs = keras.layers.MultiHeadAttention(4, 4)
    theirs(x, x)
    randomize_weights(theirs, seed=4)
    ours = GroupedQueryAttention(4, 4, 4)
    ours.copy_weights_from(theirs)
    assert_valid_rows_close(ours(x, x, use_causal_mask=True), theirs(x, x, use_causal_mask=True))


def test_query_heads_of_a_group_share_their_key_head():
    """With 4 query heads on 2 key/value heads, query heads 0 and 1 read key head 0: give them
    the same query weights and their attention weights are the same."""
    x = random_tensor((1, 5, 8), 5)
    layer = GroupedQueryAttention(4, 4, 2)
    layer(x, x)
    randomize_weights(layer, seed=6)
    kernel = to_numpy(layer.query_kernel)
    kernel[:, 1], kernel[:, 2] = kernel[:, 0], kernel[:, 0]
    layer.query_kernel.assign(kernel)
    layer.query_bias.assign(np.zeros((4, 4), "float32"))
    _, weights = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    weights = to_numpy(weights)
    np.testing.assert_allclose(weights[0, 1], weights[0, 0], atol=1e-6)   # same group
    assert_differ(weights[0, 2], weights[0, 0])                         # other key head


@pytest.mark.parametrize("kv_heads, use_bias", [(1, True), (2, False), (4, True)])
def test_parameter_count_formula(kv_heads, use_bias):
    layer = keras_gqa(kv_heads, use_bias=use_bias)
    ours = GroupedQueryAttention(4, 4, kv_heads, use_bias=use_bias)
    ours.copy_weights_from(layer)
    expected = attention_parameters(16, 4, 4, kv_heads, use_bias)
    assert layer.count_params() == ours.count_params() == expected


# --- The cache: a ring of slots -------------------------------------------------------------------


@pytest.mark.parametrize("position_encoding, window, slots", [
    (None, None, 9), (None, 3, 3), ("rotary", None, 9), ("rotary", 3, 2), ("alibi", None, 9),
    ("alibi", 4, 9)])
def test_cached_steps_equal_full_attention(position_encoding, window, slots):
    """A prompt of 4 tokens, a chunk of 2, then single tokens: the outputs of full causal
    attention, with a cache as long as the text or a ring of ``w`` (even ``w − 1``) slots."""
    x = random_tensor((2, 9, 16), 7)
    layer = GroupedQueryAttention(4, 4, 2, sliding_window=window,
                                  position_encoding=position_encoding)
    layer(x, x)
    randomize_weights(layer, seed=8)
    full = to_numpy(layer(x, x, use_causal_mask=True))
    cache = np.zeros((2, 2, slots, 2, 4), "float32")
    outputs = []
    for start, stop in ((0, 4), (4, 6), (6, 7), (7, 8), (8, 9)):
        output, cache = layer(x[:, start:stop], x[:, start:stop], cache=cache,
                              cache_update_index=start)
        outputs.append(to_numpy(output))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, rtol=0, atol=1e-5)


def test_ring_write_and_slot_positions():
    slots = np.zeros((1, 3, 1, 1), "float32")
    written = to_numpy(ring_write(slots, np.arange(1, 6, dtype="float32").reshape(1, 5, 1, 1),
                                  2))                  # positions 2…6 → slots 2, 0, 1, 2, 0
    np.testing.assert_array_equal(written.ravel(), [5, 3, 4])   # the last 3 survive
    np.testing.assert_array_equal(to_numpy(ring_slot_positions(3, 7)), [6, 4, 5])
    np.testing.assert_array_equal(to_numpy(ring_slot_positions(4, 2)), [0, 1, -2, -1])


# --- The GPT's options ---------------------------------------------------------------------------

TINY = {"context_length": 12, "num_layers": 2, "num_heads": 4, "d_model": 16,
        "intermediate_dim": 32}
OPTIONS = {"rotary": {"position_scheme": "rotary"}, "alibi": {"position_scheme": "alibi"},
           "gqa": {"num_key_value_heads": 2}, "mqa": {"num_key_value_heads": 1},
           "window": {"sliding_window": 3},
           "rotary_window_gqa": {"position_scheme": "rotary", "sliding_window": 3,
                                 "num_key_value_heads": 2}}


def tiny_gpt(options):
    model = gpt.build_gpt(11, seed=0, **TINY, **options)
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    return model


@pytest.mark.parametrize("name", OPTIONS)
def test_gpt_variants_cached_logits_equal_full_logits(name):
    model = tiny_gpt(OPTIONS[name])
    ids = np.random.default_rng(2).integers(0, 11, size=(2, 10))
    full = to_numpy(model(ids))
    cache = model.empty_cache(2, 10)
    logits, cache = model.call_with_cache(ids[:, :4], cache, 0)
    outputs = [to_numpy(logits)]
    for t in range(4, 10):
        logits, cache = model.call_with_cache(ids[:, t:t + 1], cache, t)
        outputs.append(to_numpy(logits))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, rtol=0, atol=1e-4)
    expected_slots = 3 if "window" in name else 10
    assert tuple(cache.shape) == (2, 2, 2, expected_slots, model.cached_heads, 4)


def test_gpt_options_change_the_model_and_its_parameters():
    base = tiny_gpt({})
    counts = {name: tiny_gpt(options).count_params() for name, options in OPTIONS.items()}
    table = TINY["context_length"] * TINY["d_model"]
    assert counts["rotary"] == counts["alibi"] == base.count_params() - table
    per_block_saving = 2 * (TINY["d_model"] + 1) * (4 - 2) * 4           # keys and values
    assert counts["gqa"] == base.count_params() - TINY["num_layers"] * per_block_saving
    assert counts["window"] == base.count_params()
    ids = np.arange(10)[None] % 11
    assert_differ(tiny_gpt(OPTIONS["window"])(ids), base(ids))
    # lesson 09's model (no option) keeps keras_hub's cached layer; kv heads = heads given
    # explicitly is the same function through GroupedQueryAttention
    assert type(base.blocks[0].self_attention).__name__ == "CachedMultiHeadAttention"
    explicit = tiny_gpt({"num_key_value_heads": 4})
    np.testing.assert_allclose(to_numpy(explicit(ids)), to_numpy(base(ids)), atol=1e-5)


def assert_greedy(model, tokens, prompt_length):
    """Each generated token is the argmax of the model's logits (one full forward pass) at the
    position before it: what uncached greedy decoding would have chosen."""
    chosen = to_numpy(model(tokens)).argmax(-1)[:, prompt_length - 1:-1]
    np.testing.assert_array_equal(chosen, tokens[:, prompt_length:])


def test_rotary_and_alibi_gpts_read_past_their_context():
    for options in (OPTIONS["rotary"], OPTIONS["alibi"]):
        model = tiny_gpt(options)
        assert model.max_positions is None
        tokens = generation.generate(model, [1, 2], 25, greedy=True)   # past 12 positions
        assert tokens.shape == (1, 27)
        assert_greedy(model, tokens, 2)
    learned = tiny_gpt({})
    with pytest.raises(ValueError, match="context_length=12"):
        learned(np.zeros((1, 13), "int32"))


def test_a_windowed_gpt_generates_with_a_ring_of_w_slots():
    model = tiny_gpt({"position_scheme": "rotary", "sliding_window": 3})
    assert tuple(model.empty_cache(1, 40).shape) == (1, 2, 2, 3, 4, 4)
    tokens = generation.generate(model, [1, 2, 3], 20, greedy=True)
    assert_greedy(model, tokens, 3)


def test_gpt_variant_survives_save_and_load(tmp_path):
    model = tiny_gpt(OPTIONS["rotary_window_gqa"])
    model.save(tmp_path / "gpt.keras")
    loaded = keras.models.load_model(tmp_path / "gpt.keras")
    ids = np.arange(9)[None] % 11
    np.testing.assert_allclose(to_numpy(loaded(ids)), to_numpy(model(ids)), atol=1e-6)
    assert loaded.get_config() == model.get_config()


def test_decoder_block_with_options_has_no_keras_hub_weights():
    block = TransformerDecoderBlock(16, 2, position_encoding="rotary")
    hub = keras_hub.layers.TransformerDecoder(16, 2)
    hub(random_tensor((1, 3, 8)))
    with pytest.raises(ValueError, match="only a block without those options"):
        block.copy_weights_from(hub)


# --- Memory ---------------------------------------------------------------------------------------


def test_kv_cache_calculator_gives_the_published_figures():
    """32 layers, d_model 4,096, 32 heads, 32k tokens, bfloat16: about 17.2 GB with
    multi-head attention and about 4.3 GB with 8 key/value heads."""
    mha = generation.kv_cache_bytes(32, 4096, 32, 32_768, dtype="bfloat16")
    gqa = generation.kv_cache_bytes(32, 4096, 32, 32_768, num_key_value_heads=8,
                                    dtype="bfloat16")
    assert round(mha / 1e9, 1) == 17.2 and round(gqa / 1e9, 1) == 4.3
    assert mha == 4 * gqa == 2 ** 34
    window = generation.kv_cache_bytes(32, 4096, 32, 32_768, dtype="bfloat16",
                                       sliding_window=4096)
    assert window * 8 == mha


@pytest.mark.parametrize("name", ["gqa", "mqa", "window"])
def test_kv_cache_calculator_is_the_size_of_the_models_cache(name):
    model = tiny_gpt(OPTIONS[name])
    allocated = to_numpy(model.empty_cache(3, 10)).nbytes
    assert allocated == generation.kv_cache_bytes(
        TINY["num_layers"], TINY["d_model"], TINY["num_heads"], 10, batch_size=3,
        num_key_value_heads=OPTIONS[name].get("num_key_value_heads"),
        sliding_window=OPTIONS[name].get("sliding_window"))


def test_validation_loss_by_position_averages_to_the_validation_loss():
    model = tiny_gpt(OPTIONS["alibi"])
    ids = np.random.default_rng(4).integers(0, 11, size=300)
    by_position = gpt.validation_loss_by_position(model, ids, 20)
    assert by_position.shape == (20,)
    assert gpt.validation_loss(model, ids, 20) == pytest.approx(by_position.mean(), rel=1e-9)
    assert_differ(by_position[:1], by_position[-1:], min_difference=1e-6)
