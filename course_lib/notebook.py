"""The first cell of every lesson: pinned versions, seeds, quiet logs
(``docs/conventions.md``, section 5)."""

import logging
import os
import warnings

KERAS_VERSION = "3.15.1"


def setup(seed):
    """Seed Python, NumPy and the Keras backend, silence framework chatter, check versions.

    Lessons are executed in CI and their text outputs compared with the stored ones, so the
    same seed must give the same numbers and no log line may depend on the machine.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if keras.__version__ != KERAS_VERSION:
        raise RuntimeError(
            f"This course is pinned to Keras {KERAS_VERSION}, but Keras {keras.__version__} "
            f"is installed: run `make setup` (or reinstall with pip install -e .).")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    # keras_hub imports tqdm's notebook front end, which warns that ipywidgets is missing.
    warnings.filterwarnings("ignore", message="IProgress not found")
    keras.utils.set_random_seed(seed)
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, seed {seed}")
