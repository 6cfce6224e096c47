"""What the checks of the build exercises do inside the learner's kernel.

A build exercise hands in a class (a Keras layer, a model) rather than a function. Its
:class:`~course_lib.checks.core.Exercise` has an ``invoke`` that builds the learner's class from
the case, sets its weights from the case's arrays by the names the exercise's contract gives,
calls it, and returns NumPy arrays; the grader judges those arrays in its own process, against a
NumPy reference. Keras is imported inside the functions only, so that importing the checks (which
every graded kernel does) stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def float32(value: Any) -> np.ndarray:
    """``value`` as a float32 array: what Keras layers compute in."""
    return np.asarray(value, dtype="float32")


def numpy_of(value: Any) -> np.ndarray:
    """A tensor (any backend), a variable or an array, as a NumPy array."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(value))


def set_weight(layer: Any, name: str, value: Any) -> None:
    """Give ``layer``'s weight ``name`` the value ``value``, or say clearly why it cannot.

    Raises:
        AttributeError: the layer has no weight of that name.
        ValueError: the weight has another shape than the contract's.
    """
    variable = getattr(layer, name, None)
    if variable is None or not hasattr(variable, "assign"):
        raise AttributeError(f"the check sets your layer's weights by name, and it has no weight "
                             f"`{name}` (make it in build() and keep it as an attribute of that "
                             f"name)")
    value = float32(value)
    if tuple(variable.shape) != value.shape:
        raise ValueError(f"your weight `{name}` has shape {tuple(variable.shape)}, but the "
                         f"check sets it to an array of shape {value.shape}")
    variable.assign(value)


def describe_layer_call(class_name: str, arguments: dict[str, Any],
                        inputs: dict[str, Any]) -> str:
    """``"a layer Foo(units=3) called on query of shape (2, 4, 5), mask=None"``."""
    built = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    called = ", ".join(f"{name}=None" if value is None else
                       f"{name} of shape {np.shape(value)}" for name, value in inputs.items())
    return f"a layer {class_name}({built}) called on {called}"
