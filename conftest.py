"""Environment for every test run, also when pytest is called directly instead of `make test`.

Notebook kernels started by nbval inherit this process's environment, so setting it here makes
their outputs the same as under `make notebooks`: quiet TensorFlow, stable hashing, no GPU.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def pytest_collection_modifyitems(items):
    """Compare notebooks' stdout and results, never their stderr (docs/conventions.md, section 5).

    TensorFlow's C++ start-up lines and IPython's warnings appear on stderr or not depending on
    how the kernel was started and on what else runs on the machine; they are not part of what
    a lesson teaches.
    """
    for notebook in {item.parent for item in items if hasattr(item.parent, "skip_compare")}:
        if "stderr" not in notebook.skip_compare:
            notebook.skip_compare = (*notebook.skip_compare, "stderr")
