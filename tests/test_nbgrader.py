"""Real nbgrader on the course's notebooks, in a temporary nbgrader course directory.

The course directory holds ``docs/nbgrader_config.py`` and every solution notebook in
``source/exercises/``, as docs/grading.md (section 7) tells an instructor to set it up.

- ``nbgrader generate_assignment`` must make, for EVERY notebook, the same cells (type and
  source) as ``make exercises``, and keep the nbgrader metadata that ``make exercises`` writes.
- ``nbgrader autograde`` must give each solution full marks (one point per exercise) and the
  untouched learner copy 0, cell by cell. Autograding runs every notebook in a kernel, so it is
  done for a subset, :data:`AUTOGRADED`, which keeps this file near 2 minutes on 2 cores: the
  twelve of lessons 01-09 and 11-13, solutions and learner copies, took about 4 minutes under
  load (lessons 01 and 06 train a model in their checks, 31 s and 25 s, and five more import
  Keras, 10 to 15 s each). The subset has every kind of notebook: the NumPy-only ones (02, 09,
  10, 11, 12, 13: a few seconds each), one whose build exercise is a Keras layer (05), and one
  whose check trains a model (06, the shorter of the two trainings, which also proves the
  per-cell timeout of the config long enough). The other notebooks differ from these only in
  their cells, whose metadata the generate test checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.checks import EXERCISES
from course_lib.exercises import generated_text, nbgrader_grade_id, with_nbgrader_metadata

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LEARNER_COPIES = ROOT / "notebooks" / "exercises"
ASSIGNMENT = "exercises"
AUTOGRADED = ("02", "05", "06", "09", "10", "11", "12", "13")
STUDENTS = {"solver": ROOT / "solutions", "untouched": LEARNER_COPIES}
"""Who hands in what: the solution notebooks, and the learner copies as `make exercises` made
them."""
VENV_BIN = Path(sys.executable).parent


def _nbgrader(course: Path, *arguments: str) -> None:
    """Run the nbgrader of this environment in ``course`` (it finds ``alembic`` on PATH)."""
    environment = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                   "PYTHONPATH": str(ROOT)}  # the kernels import this checkout's course_lib
    result = subprocess.run([str(VENV_BIN / "nbgrader"), *arguments], cwd=course, env=environment,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"nbgrader {' '.join(arguments)} failed:\n{result.stderr}"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course directory where ``nbgrader generate_assignment`` has run on every solution."""
    course = tmp_path_factory.mktemp("nbgrader_course")
    shutil.copyfile(ROOT / "docs" / "nbgrader_config.py", course / "nbgrader_config.py")
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for solution in SOLUTIONS:
        shutil.copyfile(solution, source / solution.name)
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    return course


@pytest.fixture(scope="module")
def gradebook(course):
    """The gradebook after ``nbgrader autograde`` has graded each student's notebooks."""
    from nbgrader.api import Gradebook

    for student, folder in STUDENTS.items():
        submitted = course / "submitted" / student / ASSIGNMENT
        submitted.mkdir(parents=True)
        for solution in SOLUTIONS:
            if solution.name[:2] in AUTOGRADED:
                shutil.copyfile(folder / solution.name, submitted / solution.name)
    _nbgrader(course, "autograde", ASSIGNMENT)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as book:
        yield book


def _released(course: Path, solution: Path):
    return nbformat.read(course / "release" / ASSIGNMENT / solution.name, as_version=4)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_generate_assignment_makes_the_learner_copy(course, solution):
    released = _released(course, solution)
    ours = nbformat.reads(generated_text(solution), as_version=4)
    assert [(cell.cell_type, cell.source) for cell in released.cells] == [
        (cell.cell_type, cell.source) for cell in ours.cells]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_generate_assignment_keeps_our_nbgrader_metadata(course, solution):
    """nbgrader adds only a checksum and the cell's type (to detect tampering) to each cell."""
    expected = with_nbgrader_metadata(nbformat.read(solution, as_version=4), solution.name)
    released = _released(course, solution)
    for theirs, ours in zip(released.cells, expected.cells, strict=True):
        metadata = dict(theirs.metadata.nbgrader)
        assert metadata.pop("cell_type") == theirs.cell_type
        metadata.pop("checksum")
        assert metadata == ours.metadata.nbgrader


def _scores(gradebook, solution: Path, student: str) -> dict[str, float]:
    notebook = gradebook.find_submission_notebook(solution.stem, ASSIGNMENT, student)
    return {grade.name: grade.score for grade in notebook.grades}


def _exercise_ids(solution: Path) -> list[str]:
    return sorted(exercise_id for exercise_id in EXERCISES
                  if exercise_id.startswith(f"{solution.name[:2]}."))


AUTOGRADED_SOLUTIONS = [path for path in SOLUTIONS if path.name[:2] in AUTOGRADED]


@pytest.mark.parametrize("solution", AUTOGRADED_SOLUTIONS, ids=lambda path: path.name)
def test_autograde_gives_the_solution_full_marks(gradebook, solution):
    checks = {nbgrader_grade_id(exercise_id, "check") for exercise_id in _exercise_ids(solution)}
    assert _scores(gradebook, solution, "solver") == dict.fromkeys(checks, 1.0)


@pytest.mark.parametrize("solution", AUTOGRADED_SOLUTIONS, ids=lambda path: path.name)
def test_autograde_gives_the_untouched_learner_copy_nothing(gradebook, solution):
    checks = {nbgrader_grade_id(exercise_id, "check") for exercise_id in _exercise_ids(solution)}
    assert _scores(gradebook, solution, "untouched") == dict.fromkeys(checks, 0.0)
