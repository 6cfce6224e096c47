"""The code the grader runs *inside* a learner's kernel, once the learner's cells have run.

It calls the learner's function on the grader's inputs and writes what came back to a file.
It judges nothing: the learner's code shares this process and could patch anything here, so
the comparison with the reference happens in the grader's own process (``scoring.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_lib.checks import EXERCISES
from course_lib.checks.core import run_learner_function
from course_lib.grading.exchange import load_cases, save_outcomes


def _find_function(namespace: dict[str, Any], candidate_names: Sequence[str]):
    """The first candidate name bound to something callable, as ``(name, object)``."""
    for name in candidate_names:
        candidate = namespace.get(name)
        if callable(candidate):
            return name, candidate
    return "", None


def run_exercise(namespace: dict[str, Any], exercise_id: str, candidate_names: Sequence[str],
                 inputs_path: str, result_path: str) -> None:
    """Call the learner's function for ``exercise_id`` on every case, write the outcomes.

    ``candidate_names`` are, in order of preference, the exercise's function name and the
    functions defined in the learner's exercise cell (in case the learner renamed it).
    """
    exercise = EXERCISES[exercise_id]
    name, function = _find_function(namespace, candidate_names)
    if function is None:
        save_outcomes(Path(result_path), "", [])
        return
    outcomes = [run_learner_function(exercise, function, case)
                for case in load_cases(Path(inputs_path))]
    save_outcomes(Path(result_path), name, outcomes)


def harness_source(exercise_id: str, candidate_names: Sequence[str], inputs_path: Path,
                   result_path: Path) -> str:
    """The code cell that runs :func:`run_exercise` in the learner's namespace."""
    return (f"__import__('course_lib.grading.harness', fromlist=['run_exercise']).run_exercise("
            f"globals(), {exercise_id!r}, {list(candidate_names)!r}, {str(inputs_path)!r}, "
            f"{str(result_path)!r})")
