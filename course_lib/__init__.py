"""course_lib: the helper library of "Attention, from the bottleneck to the Transformer".

Each lesson builds a piece from scratch; the piece then lives here so that later lessons import
it instead of re-pasting it.

- ``course_lib.attention``: masked softmax, score functions, scaled dot-product attention, masks.
- ``course_lib.layers``: Bahdanau and Luong attention, multi-head attention, sinusoidal position
  encoding, Transformer encoder and decoder blocks (Keras 3 layers, ``keras.ops`` only).
- ``course_lib.checks``: the learners' self-checks; ``course_lib.grading``: the instructor's grader.
"""

__version__ = "0.1.0"
