"""The solutions' own code, for the tests of the build exercises.

The tests of a build exercise run the class or function that ``solutions/NN_*.ipynb`` defines,
and wrong versions of it made by editing one line of its source, as a learner's slip would:
so the check is tested against the code learners are shown, not against a copy of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
MARKER = re.compile(r"^# EXERCISE (\d{2}\.\d+)", re.MULTILINE)


def _notebook(lesson: str):
    path = next(SOLUTIONS.glob(f"{lesson}_*.ipynb"))
    return nbformat.read(path, as_version=4)


def exercise_source(exercise_id: str) -> str:
    """The source of the solution cell marked ``# EXERCISE <exercise_id>``."""
    for cell in _notebook(exercise_id[:2]).cells:
        if cell.cell_type == "code" and exercise_id in MARKER.findall(cell.source):
            return cell.source
    raise KeyError(f"no cell marked # EXERCISE {exercise_id}")


def setup_source(lesson: str) -> str:
    """The source of the notebook's first code cell (its imports)."""
    return next(cell.source for cell in _notebook(lesson).cells if cell.cell_type == "code")


def edited(source: str, *replacements: tuple[str, str]) -> str:
    """``source`` with each ``(old, new)`` replaced once; fails if ``old`` is not there, so a
    test never silently runs the unedited solution."""
    for old, new in replacements:
        if source.count(old) != 1:
            raise ValueError(f"{old!r} occurs {source.count(old)} times in the solution")
        source = source.replace(old, new)
    return source


def solution_object(exercise_id: str, name: str, *replacements: tuple[str, str],
                    extra_cells: tuple[str, ...] = ()):
    """The object ``name`` defined by the solution's setup cell, ``extra_cells`` (e.g. an
    earlier exercise it uses) and its exercise cell, edited by ``replacements``."""
    namespace: dict = {}
    exec(compile(setup_source(exercise_id[:2]), "setup", "exec"), namespace)  # noqa: S102
    for cell_id in extra_cells:
        exec(compile(exercise_source(cell_id), cell_id, "exec"), namespace)  # noqa: S102
    source = edited(exercise_source(exercise_id), *replacements)
    exec(compile(source, exercise_id, "exec"), namespace)  # noqa: S102
    return namespace[name]
