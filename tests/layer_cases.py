"""Shared builders for the layer tests: tiny random inputs and masks, weight randomisation,
comparison helpers, and the catalogue of layers that the saving and config tests walk through.

Sizes stay tiny (batch 2, lengths <= 7, depths <= 16) so each backend runs the suite in seconds.
Masks are boolean, True = attend, and always mix masked and unmasked positions.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from course_lib.layers import (
    AlibiBias,
    AttentionPooling,
    BahdanauAttention,
    ClassToken,
    GlimpseSensor,
    GroupedQueryAttention,
    LearnedPositionEmbedding,
    LuongAttention,
    MultiHeadAttention,
    PatchEmbedding,
    RotaryEmbedding,
    SinusoidalPositionEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)

ATOL = 1e-5  # equality with Keras: float32, atol 1e-5 (docs/conventions.md, section 2)
BATCH = 2


def random_tensor(shape, seed=0):
    """Standard-normal float32 array of ``shape``."""
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def length_mask(lengths, max_length):
    """Boolean ``(len(lengths), max_length)`` mask, True at the first ``lengths[b]`` positions."""
    return np.arange(max_length)[None, :] < np.asarray(lengths)[:, None]


def padding_mask_for(length):
    """A ``(BATCH, length)`` padding mask: the first sequence is padded, the second is full."""
    return length_mask([max(1, length - 2), length], length)


def random_bool(shape, seed=0):
    """A random boolean array with both values present."""
    mask = np.random.default_rng(seed).random(shape) < 0.6
    mask.flat[0], mask.flat[-1] = True, False
    return mask


def randomize_weights(layer, seed=0):
    """Give every weight of ``layer`` (biases, LayerNorm gammas included) random values, so that
    a weight left at its initial value, or copied into the wrong place, changes the outputs."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.5, size=tuple(weight.shape)).astype("float32"))


def built_with_random_weights(layer, *inputs, seed=0):
    """``layer`` after a first call on ``inputs`` (which builds it) and ``randomize_weights``."""
    layer(*inputs)
    randomize_weights(layer, seed)
    return layer


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_valid_rows_close(actual, expected, query_mask=None, atol=ATOL):
    """``actual`` equals ``expected`` within ``atol`` on the rows where ``query_mask`` is True
    (all rows when it is None). ``query_mask`` is ``(B, Tq)`` and indexes the first two axes."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape
    if query_mask is not None:
        query_mask = np.asarray(query_mask, bool)
        assert query_mask.any(), "no valid row to compare"
        actual, expected = actual[query_mask], expected[query_mask]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def assert_differ(first, second, min_difference=1e-3):
    """The two tensors differ somewhere by more than ``min_difference`` (a test can fail)."""
    difference = np.abs(to_numpy(first) - to_numpy(second)).max()
    assert difference > min_difference, f"outputs agree to {difference}"


@contextlib.contextmanager
def plain_keras_attention():
    """Keras's reference attention without flash attention (``flash_attention=False`` does not
    turn it off: docs/conventions.md, section 2), restored afterwards."""
    was_enabled = keras.config.is_flash_attention_enabled()
    keras.config.disable_flash_attention()
    try:
        yield
    finally:
        if was_enabled is not False:
            keras.config.enable_flash_attention()


@dataclass
class LayerCase:
    """One layer in a model: how to make it, its inputs (name → shape without the batch axis,
    bool or float) and how the model calls it (``call(layer, inputs_by_name)``)."""

    id: str
    make: Callable
    inputs: dict
    call: Callable
    bool_inputs: tuple = ()

    def data(self):
        """Concrete inputs by name: random floats, padding masks that mix True and False."""
        arrays = {}
        for index, (name, shape) in enumerate(self.inputs.items()):
            if name not in self.bool_inputs:
                arrays[name] = random_tensor((BATCH, *shape), index)
            elif len(shape) == 1:
                arrays[name] = padding_mask_for(shape[0])
            else:
                arrays[name] = random_bool((BATCH, *shape), index)
        return arrays

    def model(self, layer):
        """A functional model with one ``keras.Input`` per input, in ``self.inputs`` order."""
        symbolic = {name: keras.Input(shape, name=name,
                                      dtype="bool" if name in self.bool_inputs else "float32")
                    for name, shape in self.inputs.items()}
        return keras.Model(list(symbolic.values()), self.call(layer, symbolic))

    def built_layer(self, seed=0):
        """The layer, built on ``data()`` and with every weight random."""
        layer = self.make()
        self.call(layer, self.data())
        randomize_weights(layer, seed)
        return layer


def _query_values_case(id, make, query_shape=(5, 6), values_shape=(7, 8)):
    return LayerCase(id, make, {"query": query_shape, "values": values_shape,
                                "mask": values_shape[:1]},
                     lambda layer, x: layer(x["query"], x["values"], mask=x["mask"]),
                     bool_inputs=("mask",))


def _decoder_case(id, normalize_first):
    return LayerCase(
        id, lambda: TransformerDecoderBlock(16, 2, normalize_first=normalize_first),
        {"x": (5, 8), "encoder_outputs": (6, 8), "decoder_padding_mask": (5,),
         "encoder_padding_mask": (6,)},
        lambda layer, x: layer(x["x"], x["encoder_outputs"],
                               decoder_padding_mask=x["decoder_padding_mask"],
                               encoder_padding_mask=x["encoder_padding_mask"]),
        bool_inputs=("decoder_padding_mask", "encoder_padding_mask"))


LAYER_CASES = [
    _query_values_case("bahdanau", lambda: BahdanauAttention(4)),
    _query_values_case("bahdanau_single_step", lambda: BahdanauAttention(4), query_shape=(6,)),
    _query_values_case("luong_dot", lambda: LuongAttention("dot"), query_shape=(5, 8)),
    _query_values_case("luong_general", lambda: LuongAttention("general")),
    _query_values_case("luong_scaled_general", lambda: LuongAttention("general", scaled=True)),
    _query_values_case("luong_concat", lambda: LuongAttention("concat", units=4)),
    LayerCase(
        "multi_head_attention",
        lambda: MultiHeadAttention(2, 4, value_dim=3, dropout=0.1, output_dim=5, seed=1),
        {"query": (5, 6), "value": (7, 8), "key": (7, 4), "attention_mask": (5, 7)},
        lambda layer, x: layer(x["query"], x["value"], key=x["key"],
                               attention_mask=x["attention_mask"],
                               return_attention_scores=True),
        bool_inputs=("attention_mask",)),
    LayerCase(
        "multi_head_attention_causal_no_bias",
        lambda: MultiHeadAttention(2, 4, use_bias=False),
        {"x": (5, 8)},
        lambda layer, x: layer(x["x"], x["x"], use_causal_mask=True)),
    LayerCase(
        "sinusoidal_position_encoding",
        lambda: SinusoidalPositionEncoding(max_wavelength=100),
        {"x": (7, 6)},
        lambda layer, x: x["x"] + layer(x["x"])),
    *(LayerCase(
        f"encoder_block_{name}",
        lambda normalize_first=normalize_first: TransformerEncoderBlock(
            16, 2, normalize_first=normalize_first),
        {"x": (5, 8), "padding_mask": (5,)},
        lambda layer, x: layer(x["x"], padding_mask=x["padding_mask"]),
        bool_inputs=("padding_mask",))
      for name, normalize_first in (("post_ln", False), ("pre_ln", True))),
    _decoder_case("decoder_block_post_ln", False),
    _decoder_case("decoder_block_pre_ln", True),
    LayerCase(
        "decoder_only_block",
        lambda: TransformerDecoderBlock(16, 2, dropout=0.1, activation="gelu"),
        {"x": (5, 8), "decoder_padding_mask": (5,)},
        lambda layer, x: layer(x["x"], decoder_padding_mask=x["decoder_padding_mask"]),
        bool_inputs=("decoder_padding_mask",)),
    LayerCase("patch_embedding", lambda: PatchEmbedding(2, 5), {"images": (6, 4, 3)},
              lambda layer, x: layer(x["images"])),
    LayerCase("patch_embedding_no_bias", lambda: PatchEmbedding(3, 4, use_bias=False),
              {"images": (6, 9, 2)}, lambda layer, x: layer(x["images"])),
    LayerCase("class_token", lambda: ClassToken(), {"tokens": (5, 6)},
              lambda layer, x: layer(x["tokens"])),
    LayerCase("learned_position_embedding", lambda: LearnedPositionEmbedding(9),
              {"x": (7, 6)}, lambda layer, x: x["x"] + layer(x["x"])),
    LayerCase("rotary_embedding", lambda: RotaryEmbedding(max_wavelength=100,
                                                          scaling_factor=2.0),
              {"x": (7, 2, 6)}, lambda layer, x: layer(x["x"], start_index=3)),
    LayerCase("alibi_bias", lambda: AlibiBias(alibi_bias_max=6), {"scores": (3, 5, 5)},
              lambda layer, x: layer(x["scores"])),
    LayerCase(
        "grouped_query_attention",
        lambda: GroupedQueryAttention(4, 4, 2, dropout=0.1, seed=1),
        {"query": (5, 8), "value": (6, 8), "attention_mask": (5, 6)},
        lambda layer, x: layer(x["query"], x["value"], attention_mask=x["attention_mask"],
                               return_attention_scores=True),
        bool_inputs=("attention_mask",)),
    *(LayerCase(
        f"grouped_query_attention_{encoding}_window",
        lambda encoding=encoding: GroupedQueryAttention(4, 4, 1, use_bias=False,
                                                        sliding_window=2,
                                                        position_encoding=encoding),
        {"x": (6, 8)},
        lambda layer, x: layer(x["x"], x["x"], use_causal_mask=True))
      for encoding in ("rotary", "alibi")),
    LayerCase(
        "decoder_only_block_rotary_gqa_window",
        lambda: TransformerDecoderBlock(16, 4, normalize_first=True, num_key_value_heads=2,
                                        position_encoding="rotary", sliding_window=3),
        {"x": (6, 8), "decoder_padding_mask": (6,)},
        lambda layer, x: layer(x["x"], decoder_padding_mask=x["decoder_padding_mask"]),
        bool_inputs=("decoder_padding_mask",)),
    LayerCase("glimpse_sensor", lambda: GlimpseSensor(2), {"images": (4, 6, 2)},
              lambda layer, x: layer(x["images"])),
    # the location of each image: the brightest of the 6 pixels of its first row, 0 … 5
    LayerCase("glimpse_sensor_at_locations", lambda: GlimpseSensor(2), {"images": (4, 6, 1)},
              lambda layer, x: layer(x["images"],
                                     keras.ops.argmax(x["images"][:, 0, :, 0], axis=-1))),
    LayerCase("attention_pooling", lambda: AttentionPooling(), {"values": (5, 6), "mask": (5,)},
              lambda layer, x: layer(x["values"], x["mask"]), bool_inputs=("mask",)),
]
