"""Weights the repository ships: stored small, read back by Keras as usual.

The translators of lessons 03 and 08 train longer than a lesson's budget, so ``weights/`` ships
them (``scripts/train_translator.py``, ``scripts/train_transformer.py``). Stored as float16 they
take half the space and lose nothing a lesson can measure (their scores are taken after the
round trip).
"""

import h5py
import numpy as np


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
