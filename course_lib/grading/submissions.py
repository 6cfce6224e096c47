"""Finding submissions, reading them, and locating each exercise inside them.

An exercise is found by the marker its cell starts with (``# EXERCISE 02.3``, in any case and
spacing) or by its cell tag (``exercise-02.3``), wherever the learner moved that cell. The graded
function (or class, for a build exercise) is looked up by name after the whole notebook has run; if
the learner renamed it, the one function or class defined in the marked cell is graded instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.reader import NotJSONError

from course_lib.checks.core import Exercise, one_line

MARKER = re.compile(r"^[ \t]*#[ \t]*EXERCISE[ \t]+(\d{2}\.\d+)\b", re.IGNORECASE | re.MULTILINE)
RAW_MARKER = re.compile(r"#[ \t]*EXERCISE[ \t]+(\d{2}\.\d+)\b", re.IGNORECASE)
TAG = re.compile(r"^exercise-(\d{2}\.\d+)$", re.IGNORECASE)
FUNCTION_DEFINITION = re.compile(r"^(?:def|class)[ \t]+([A-Za-z_]\w*)[ \t]*[(:]", re.MULTILINE)
MAX_NOTEBOOK_BYTES = 20 * 2**20


class InvalidNotebookError(Exception):
    """The file is not a notebook that Jupyter could open."""


class LessonError(Exception):
    """The lesson of some notebook cannot be told: the message says what to do."""


@dataclass(frozen=True)
class Submission:
    """One learner's notebook; the student is named after the file (``alice.ipynb`` → alice)."""

    student: str
    path: Path


def find_submissions(paths: list[Path]) -> list[Submission]:
    """The ``.ipynb`` files named, and those directly inside the folders named (hidden ones,
    such as ``.ipynb_checkpoints``, left out), sorted by student name."""
    files = []
    for path in paths:
        if path.is_dir():
            files += [child for child in sorted(path.glob("*.ipynb"))
                      if not child.name.startswith(".")]
        else:
            files.append(path)
    return sorted((Submission(file.stem, file) for file in files), key=lambda s: s.student)


def read_submission(path: Path) -> str:
    """The text of the notebook at ``path``. The grader reads each file once, before any
    student's code runs, and works from this copy only.

    Raises:
        InvalidNotebookError: the file is too large or is not UTF-8 text.
    """
    with open(path, "rb") as file:
        data = file.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebookError(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidNotebookError("the file is not UTF-8 text") from error


def parse_notebook(text: str) -> nbformat.NotebookNode:
    """The notebook in ``text``, converted to format 4 and validated.

    Raises:
        InvalidNotebookError: with one line saying what is wrong with the notebook.
    """
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except NotJSONError as error:
        raise InvalidNotebookError("the file is not JSON (truncated or not a notebook?)") from error
    except Exception as error:  # whatever is wrong, the notebook cannot be run
        raise InvalidNotebookError(one_line(f"{type(error).__name__}: {error}")) from error
    return notebook


def exercise_ids_of_cell(cell) -> set[str]:
    """The exercises a code cell is marked with, by its source text or its tags."""
    ids = set(MARKER.findall(cell.source))
    for tag in cell.get("metadata", {}).get("tags", []):
        match = TAG.match(str(tag))
        if match:
            ids.add(match.group(1))
    return ids


def exercise_cells(notebook) -> dict[str, list[int]]:
    """For each exercise id found, the indices of the code cells marked with it."""
    cells: dict[str, list[int]] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            for exercise_id in sorted(exercise_ids_of_cell(cell)):
                cells.setdefault(exercise_id, []).append(index)
    return cells


def lessons_of(notebook) -> set[str]:
    """The lesson numbers (``"02"``) of the exercises marked in the notebook."""
    return {exercise_id.split(".")[0] for exercise_id in exercise_cells(notebook)}


def lessons_in_text(text: str) -> set[str]:
    """The lessons of the ``# EXERCISE NN.M`` markers found anywhere in a file's text: how the
    lesson of a notebook too broken to be read is told."""
    return {exercise_id.split(".")[0] for exercise_id in RAW_MARKER.findall(text)}


def raw_text(path: Path) -> str:
    """The text of a file that is not a readable notebook, as far as it can be decoded."""
    with open(path, "rb") as file:
        return file.read(MAX_NOTEBOOK_BYTES).decode("utf-8", errors="replace")


def assign_lessons(found: dict[str, set[str]], known: set[str], requested: list[str] | None,
                   unreadable: frozenset[str] = frozenset()) -> dict[str, tuple[str, ...]]:
    """The lessons each student is graded on.

    ``found`` maps each student to the lessons of the markers in their notebook (for a notebook
    that could not be read, one of ``unreadable``, those in its raw text). With ``requested``
    (``--lesson``), everyone is graded on those. Otherwise each notebook is graded on its own
    lesson; a notebook with no marker of a known lesson is graded on the lesson of the others
    when they all share one. An unreadable notebook whose lesson cannot be told is graded on
    none (its row says why).

    Raises:
        LessonError: a notebook holds the exercises of several lessons, or has no marker while
            the others are of several lessons; the message says what to do.
    """
    if requested:
        return {student: tuple(sorted(set(requested))) for student in found}
    lessons = {student: sorted(marked & known) for student, marked in found.items()}
    mixed = {student: marked for student, marked in lessons.items() if len(marked) > 1}
    if mixed:
        student, marked = sorted(mixed.items())[0]
        raise LessonError(f"{student}.ipynb holds exercises of lessons {', '.join(marked)}: "
                          f"pass --lesson for each lesson to grade it on (e.g. --lesson "
                          f"{marked[0]} --lesson {marked[1]}), or split the notebook")
    present = sorted({marked[0] for marked in lessons.values() if marked})
    if not present:
        raise LessonError("no exercise of a known lesson found in the submissions; pass "
                          "--lesson NN")
    unknown = sorted(student for student, marked in lessons.items()
                     if not marked and student not in unreadable)
    if unknown and len(present) > 1:
        raise LessonError(f"{unknown[0]}.ipynb has no `# EXERCISE NN.M` marker, so its lesson is "
                          f"unknown, and the others are of lessons {', '.join(present)}: grade "
                          f"each lesson's notebooks separately, or pass --lesson NN")
    fallback = (present[0],) if len(present) == 1 else ()
    return {student: tuple(marked) if marked else fallback
            for student, marked in lessons.items()}


def functions_defined(notebook, cell_indices: list[int]) -> list[str]:
    """The top-level functions and classes defined in the last of the given cells (the one that
    wins when the notebook runs top to bottom)."""
    if not cell_indices:
        return []
    return FUNCTION_DEFINITION.findall(notebook.cells[cell_indices[-1]].source)


def candidate_names(exercise: Exercise, defined: list[str]) -> list[str]:
    """The names to grade, in order: the exercise's own, then the marked cell's only function."""
    renamed = defined if len(defined) == 1 and defined[0] != exercise.function_name else []
    return [exercise.function_name, *renamed]
