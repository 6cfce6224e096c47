"""Keras 3 attention layers built in the lessons, ``keras.ops`` only (any backend).

Each is registered for saving (``package="course_lib"``), has ``get_config``, rejects bad input
with a ``ValueError`` naming the shapes, and, where Keras has a counterpart, offers
``copy_weights_from(keras_layer)`` so a test or a lesson proves the two equal.
"""

from course_lib.layers.alibi_bias import AlibiBias
from course_lib.layers.attention_pooling import AttentionPooling
from course_lib.layers.bahdanau import BahdanauAttention
from course_lib.layers.cached_attention import CachedMultiHeadAttention
from course_lib.layers.class_token import ClassToken
from course_lib.layers.glimpse_sensor import GlimpseSensor
from course_lib.layers.grouped_query_attention import GroupedQueryAttention
from course_lib.layers.local_attention import LocalAttention
from course_lib.layers.luong import LuongAttention
from course_lib.layers.multi_head_attention import MultiHeadAttention
from course_lib.layers.patch_embedding import PatchEmbedding
from course_lib.layers.position_embedding import LearnedPositionEmbedding
from course_lib.layers.position_encoding import SinusoidalPositionEncoding
from course_lib.layers.query_values_attention import QueryValuesAttention
from course_lib.layers.rotary_embedding import RotaryEmbedding
from course_lib.layers.transformer import TransformerDecoderBlock, TransformerEncoderBlock

__all__ = [
    "AlibiBias",
    "AttentionPooling",
    "BahdanauAttention",
    "CachedMultiHeadAttention",
    "ClassToken",
    "GlimpseSensor",
    "GroupedQueryAttention",
    "LearnedPositionEmbedding",
    "LocalAttention",
    "LuongAttention",
    "MultiHeadAttention",
    "PatchEmbedding",
    "QueryValuesAttention",
    "RotaryEmbedding",
    "SinusoidalPositionEncoding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
]
