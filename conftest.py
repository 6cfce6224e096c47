"""Environment for every test run, also when pytest is called directly instead of `make test`.

Notebook kernels started by nbval inherit this process's environment, so setting it here makes
their outputs the same as under `make notebooks`: quiet TensorFlow, stable hashing, no GPU.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
