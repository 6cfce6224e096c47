"""course_lib: the helper library of "Attention, from the bottleneck to the Transformer".

Each lesson builds a piece from scratch; the piece then lives here so that later lessons import
it instead of re-pasting it. One concept per module:

Attention itself
    - ``course_lib.attention``: score functions, the masked softmax, scaled dot-product
      attention, padding and causal masks (``keras.ops``).
    - ``course_lib.layers``: Keras 3 layers (Bahdanau, Luong, local, multi-head attention and
      its key/value-cached form, sinusoidal positions, Transformer encoder and decoder blocks;
      for long contexts, rotary embeddings, ALiBi and grouped-query attention with a sliding
      window and a ring-buffer cache), each equal to its Keras or keras-hub counterpart where
      one exists; the Vision Transformer's patch embedding, class token and learned positions.
    - ``course_lib.efficient_attention``: attention without the n × n matrix (lesson 11):
      exact attention tiled with an online softmax, block-sparse sliding windows with global
      tokens, and linear attention with its recurrent (fixed-size state) causal form.
    - ``course_lib.attention_maps``: reading a trained encoder's attention: attention rollout
      and the mean attention distance of each head (lesson 12).
    - ``course_lib.estimators``: training through a discrete choice (hard attention): the
      REINFORCE surrogate with a learned baseline, the straight-through Gumbel-softmax sample
      (lesson 13).
    - ``course_lib.attribution``: which input words mattered: gradient × input,
      leave-one-out, Kendall's τ between two accounts, shuffled attention weights (lesson 13).
    - ``course_lib.numpy_softmax``: the same softmax in NumPy, for checks and NumPy lessons.
    - ``course_lib.validation``: the input checks whose ``ValueError`` names what was wrong.

Data and models the lessons train
    - ``course_lib.data``: synthetic tasks (the reversal task of lesson 01) and their encoding.
    - ``course_lib.models``: the GRU encoder–decoder, with or without attention, its training
      and greedy decoding.
    - ``course_lib.training``: what every translator's training shares (length buckets, the
      masked loss, the epoch loop, ``TrainingTime``).
    - ``course_lib.translation``: the Tatoeba English–French corpus, its split, vocabularies and
      BLEU/chrF scores.
    - ``course_lib.gru_translator``, ``course_lib.transformer_translator``: lesson 03's and
      lesson 08's translators, with their shipped weights.
    - ``course_lib.shipped_weights``: reading (and writing) the weights in ``weights/``.
    - ``course_lib.sentiment``: the sentiment sentences of lesson 06.
    - ``course_lib.sentiment_classifier``: lesson 06's self-attention sentence classifier,
      opened up for attribution, and the shipped one (lesson 13).
    - ``course_lib.explanations``: lesson 13's questions to that classifier: its attention
      against gradient × input and leave-one-out, and the counterfactual test.
    - ``course_lib.tasks``: the synthetic token tasks and attention classifier of lesson 07.
    - ``course_lib.shakespeare``: Tiny Shakespeare as characters (vocabulary, split, windows).
    - ``course_lib.gpt``: lesson 09's character-level GPT, its training and its shipped weights;
      lesson 10's options (rotary or ALiBi positions, key/value heads, a sliding window) and
      the validation loss at each position.
    - ``course_lib.generation``: greedy, temperature, top-k and top-p decoding, the
      generation loop with or without a key/value cache, and the cache's memory.
    - ``course_lib.recall``: the associative-recall task of lesson 11 and its one-layer model
      with exact or linear attention.
    - ``course_lib.digits``: the 8 × 8 handwritten digits, their fixed stratified split (lessons
      12 and 13).
    - ``course_lib.vision``: lesson 12's image classifiers (a small ViT, an MLP, a CNN), their
      training and the shipped ViT.
    - ``course_lib.forecasting``: the yearly sunspot series, forecasting pairs without
      look-ahead, baselines, the attention and GRU forecasters of lesson 12.
    - ``course_lib.glimpses``: lesson 13's cluttered digits read through one glimpse, soft
      attention against hard attention trained by REINFORCE or the Gumbel-softmax, and the
      bias and variance of their gradients.

Notebooks, exercises and grading
    - ``course_lib.notebook``: the first cell of every lesson (``setup``).
    - ``course_lib.viz``: heat maps, head grids and training curves with token labels.
    - ``course_lib.exercises``: generates the learners' exercise notebooks from ``solutions/``.
    - ``course_lib.checks``: the learners' self-checks; ``course_lib.grading``: the
      instructor's grader.
"""

__version__ = "0.1.0"
