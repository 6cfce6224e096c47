"""The files that carry inputs into a graded kernel and the learner's outputs back out.

Both are ``.npz`` archives of plain arrays, loaded with ``allow_pickle=False`` so that a file
written by a learner's code can hold data but never run code in the grader. What comes back is
only ever *outputs*: the grader compares them with its own reference, on inputs it keeps in its
own memory, so a forged file can at most claim outputs that are then judged like any other.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.checks.core import Case, Outcome, one_line

MAX_RESULT_BYTES = 16 * 2**20
"""A result larger than this (unpacked) is refused rather than loaded: the exercises' outputs
are a few kilobytes, and a learner's file must not exhaust the grader's memory."""


def save_cases(path: Path, cases: list[Case]) -> None:
    """Write the inputs of one exercise: ``case<i>.<argument>`` arrays, in argument order."""
    arrays = {"n_cases": np.array(len(cases))}
    for index, case in enumerate(cases):
        arrays[f"case{index}.__arguments__"] = np.array(list(case), dtype=str)
        for name, value in case.items():
            arrays[f"case{index}.{name}"] = np.asarray(value)
    np.savez(path, **arrays)


def load_cases(path: Path) -> list[Case]:
    """Read :func:`save_cases`' file; 0-d arrays come back as Python scalars (``axis=-1``)."""
    with np.load(path, allow_pickle=False) as archive:
        cases = []
        for index in range(int(archive["n_cases"])):
            names = [str(name) for name in archive[f"case{index}.__arguments__"]]
            arrays = {name: archive[f"case{index}.{name}"] for name in names}
            cases.append({name: value.item() if value.ndim == 0 else value
                          for name, value in arrays.items()})
    return cases


def save_outcomes(path: Path, function_name: str, outcomes: list[Outcome]) -> None:
    """Write what the learner's function gave on each case, atomically (write, then rename), so
    that a kernel killed mid-write leaves no half file behind."""
    arrays = {"function": np.array(function_name), "n_cases": np.array(len(outcomes))}
    for index, outcome in enumerate(outcomes):
        arrays[f"case{index}.error_type"] = np.array(outcome.error_type)
        arrays[f"case{index}.message"] = np.array(outcome.message)
        outputs = outcome.outputs or ()
        arrays[f"case{index}.n_outputs"] = np.array(-1 if outcome.outputs is None
                                                    else len(outputs))
        for position, output in enumerate(outputs):
            arrays[f"case{index}.output{position}"] = output
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(file, **arrays)
    os.replace(partial, path)


@dataclass(frozen=True)
class ReturnedResult:
    """The outputs of one exercise as they came back: the name of the function that was graded
    (empty when none was found) and one :class:`Outcome` per case."""

    function_name: str
    outcomes: list[Outcome]


class UnreadableResultError(Exception):
    """The result file is missing, too big, corrupt, or not in the expected form."""


def _unpacked_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(member.file_size for member in archive.infolist())


def _text(archive, key: str) -> str:
    value = archive[key]
    if value.dtype.kind != "U" or value.ndim != 0:
        raise UnreadableResultError(f"{key} is not a string")
    return one_line(value)


def _numeric(archive, key: str) -> np.ndarray:
    value = archive[key]
    if value.dtype.kind not in "biuf":
        raise UnreadableResultError(f"{key} is not an array of real numbers")
    return value


def load_outcomes(path: Path, expected_cases: int) -> ReturnedResult:
    """Read :func:`save_outcomes`' file, refusing anything that is not exactly that form."""
    try:
        if _unpacked_size(path) > MAX_RESULT_BYTES:
            raise UnreadableResultError(f"larger than {MAX_RESULT_BYTES} bytes")
        with np.load(path, allow_pickle=False) as archive:
            function_name = _text(archive, "function")
            count = int(archive["n_cases"])
            if function_name and count != expected_cases:
                raise UnreadableResultError(f"{count} cases instead of {expected_cases}")
            outcomes = []
            for index in range(count):
                n_outputs = int(archive[f"case{index}.n_outputs"])
                outputs = (tuple(_numeric(archive, f"case{index}.output{position}")
                                 for position in range(n_outputs)) if n_outputs >= 0 else None)
                outcomes.append(Outcome(outputs=outputs,
                                        error_type=_text(archive, f"case{index}.error_type"),
                                        message=_text(archive, f"case{index}.message")))
    except UnreadableResultError:
        raise
    except Exception as error:  # any defect of the file means: no usable result
        raise UnreadableResultError(f"{type(error).__name__}: {error}") from error
    return ReturnedResult(function_name, outcomes)
