"""Weights the repository ships: stored small, read back by Keras as usual.

The translators of lessons 03 and 08 and lesson 09's GPT train longer than a lesson's budget, so
``weights/`` ships them (``scripts/train_translator.py``, ``scripts/train_transformer.py``,
``scripts/train_gpt.py``), each with a JSON record of how it was made and what it scored.
Stored as float16 they take half the space and lose nothing a lesson can measure (their scores
are taken after the round trip).

One way in for every shipped model: :func:`shipped_results` reads a record,
:func:`require_training_vocabularies` checks that a corpus is the one the weights were trained
on, and :func:`load_shipped_weights` fills a built model.
"""

import json
from pathlib import Path

import h5py
import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def shipped_results(file_name, script, weights_dir=None):
    """The JSON record (a dict) that ``script`` wrote to ``weights/file_name``."""
    path = Path(weights_dir or WEIGHTS_DIR) / file_name
    if not path.is_file():
        raise FileNotFoundError(f"No {file_name} in {path.parent}: run {script} first.")
    return json.loads(path.read_text(encoding="utf-8"))


def require_training_vocabularies(corpus, results):
    """Raise a ``ValueError`` unless ``corpus`` has the vocabularies that shipped weights were
    trained with (``results`` holds their fingerprints): other vocabularies would load without
    error and translate nonsense."""
    for side in ("source", "target"):
        stored = results[f"{side}_vocabulary_fingerprint"]
        found = getattr(corpus, f"{side}_vocabulary").fingerprint()
        if stored != found:
            raise ValueError(f"The {side} vocabulary of this corpus ({found}) is not the one "
                             f"the weights were trained with ({stored}): use load_corpus() "
                             f"with its defaults.")


def load_shipped_weights(model, file_name, weights_dir=None):
    """Load ``weights/file_name`` into the built ``model`` and return the model."""
    model.load_weights(Path(weights_dir or WEIGHTS_DIR) / file_name)
    return model


def store_float16(path):
    """Rewrite a Keras ``.weights.h5`` file in place: the model's float32 arrays as float16,
    gzip-compressed, and without the optimizer's state (Adam's moments, twice the model's size,
    which ``save_weights`` includes once the model is compiled). h5py decompresses on reading
    and Keras casts to the variables' float32."""
    temporary = path.with_suffix(".tmp")
    with h5py.File(path, "r") as source, h5py.File(temporary, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value

        def copy(name, item):
            if name.split("/")[0] == "optimizer":
                return
            if isinstance(item, h5py.Group):
                group = target.require_group(name)
                for key, value in item.attrs.items():
                    group.attrs[key] = value
                return
            array = item[()]
            if array.dtype == np.float32:
                array = array.astype("float16")
            options = {"compression": "gzip", "shuffle": True} if array.ndim else {}
            target.create_dataset(name, data=array, **options)

        source.visititems(copy)
    temporary.replace(path)
