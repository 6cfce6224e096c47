"""Generate the learners' exercise notebooks from the solutions (docs/grading.md).

``solutions/NN_topic.ipynb`` is the single source of truth. Its learner copy
``notebooks/exercises/NN_topic.ipynb`` is the same notebook with every region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers, code cells only) replaced by::

    # YOUR CODE HERE
    raise NotImplementedError

at the region's indentation, so the signature and docstring above it stay, and with the outputs
and execution counts of every cell cleared (the learner runs it; CI runs it with nbval, which then
compares nothing and fails only on errors). The output is byte-for-byte reproducible.

Both the solution and its learner copy carry nbgrader's cell metadata (schema version 3), so that
an instructor can drop the solutions into an nbgrader course (docs/grading.md, section 7):

- a cell with solution markers is a **solution** cell, ``ex_NN_M_solution`` (from its first line,
  ``# EXERCISE NN.M``);
- a cell that calls the exercise's check, ``check_<function name>(...)``, is a locked **grade**
  cell worth :data:`POINTS_PER_CHECK`, ``ex_NN_M_check``; under nbgrader a failed check raises,
  so nbgrader scores it 0;
- every other cell (prose, setup, demonstrations) is **locked**, ``locked_<cell id>``.

The generator writes this metadata into the solution notebook itself (metadata only: sources and
outputs stay as they are), since ``nbgrader generate_assignment`` reads it from there.

Usage (``make exercises``)::

    python -m course_lib.exercises solutions/*.ipynb --out notebooks/exercises
    python -m course_lib.exercises solutions/*.ipynb --out notebooks/exercises --check

``--check`` writes nothing and exits 1, naming each learner copy that is missing or differs
from what would be generated, and each solution whose nbgrader metadata is not what it would get.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from course_lib.checks import EXERCISES
from course_lib.grading.submissions import MARKER as EXERCISE_MARKER

BEGIN_SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
END_SOLUTION = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
ANY_MARKER = re.compile(r"### (BEGIN|END) SOLUTION")
CHECK_CALL = re.compile(r"^(check_\w+)\(", re.MULTILINE)

POINTS_PER_CHECK = 1
"""nbgrader points of each exercise's check cell: one per exercise, as in the course's grader."""
NBGRADER_SCHEMA_VERSION = 3
"""The version of nbgrader's cell metadata schema (that of nbgrader 0.9)."""
_EXERCISE_OF_CHECK = {f"check_{exercise.function_name}": exercise_id
                      for exercise_id, exercise in EXERCISES.items()}


class SolutionMarkerError(ValueError):
    """The solution markers of a cell are unbalanced, nested, or outside a code cell."""


def strip_solutions(source: str, where: str) -> str:
    """``source`` with each solution region replaced by ``raise NotImplementedError``."""
    kept: list[str] = []
    indent = None  # the indentation of the open region, None outside one
    for number, line in enumerate(source.split("\n"), start=1):
        begin = BEGIN_SOLUTION.match(line)
        if begin:
            if indent is not None:
                raise SolutionMarkerError(f"{where}, line {number}: BEGIN SOLUTION inside a "
                                          f"solution region")
            indent = begin.group("indent")
            kept += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError"]
        elif END_SOLUTION.match(line):
            if indent is None:
                raise SolutionMarkerError(f"{where}, line {number}: END SOLUTION without BEGIN")
            indent = None
        elif indent is None:
            kept.append(line)
    if indent is not None:
        raise SolutionMarkerError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(kept)


def nbgrader_grade_id(exercise_id: str, role: str) -> str:
    """``ex_05_2_solution`` for exercise 05.2's solution cell (nbgrader ids allow no dots)."""
    return f"ex_{exercise_id.replace('.', '_')}_{role}"


def _nbgrader_cell_metadata(cell, where: str) -> dict:
    """The nbgrader metadata of one cell of a solution notebook."""
    metadata = {"grade": False, "locked": True, "schema_version": NBGRADER_SCHEMA_VERSION,
                "solution": False, "task": False}
    if cell.cell_type == "code" and ANY_MARKER.search(cell.source):
        exercise_ids = EXERCISE_MARKER.findall(cell.source)
        if len(exercise_ids) != 1 or not cell.source.startswith("# EXERCISE"):
            raise SolutionMarkerError(f"{where}: a cell with solution markers must start with "
                                      f"one `# EXERCISE NN.M` line, found {exercise_ids or 'none'}")
        return {**metadata, "grade_id": nbgrader_grade_id(exercise_ids[0], "solution"),
                "locked": False, "solution": True}
    checks = CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []
    exercise_ids = [_EXERCISE_OF_CHECK[name] for name in checks if name in _EXERCISE_OF_CHECK]
    if len(exercise_ids) > 1:
        raise ValueError(f"{where}: one check per cell, so that nbgrader scores each exercise "
                         f"on its own; this cell runs the checks of {', '.join(exercise_ids)}")
    if exercise_ids:
        return {**metadata, "grade_id": nbgrader_grade_id(exercise_ids[0], "check"),
                "grade": True, "points": POINTS_PER_CHECK}
    if "id" not in cell:
        raise ValueError(f"{where} has no cell id, which names it in nbgrader: save the "
                         f"notebook with nbformat 4.5 or later")
    return {**metadata, "grade_id": f"locked_{cell.id}"}


def with_nbgrader_metadata(solution, name: str):
    """A copy of the notebook ``solution`` whose every cell carries nbgrader's metadata.

    Raises ValueError naming the cell when two cells would share a grade id (an exercise
    written or checked twice) or a cell runs two checks.
    """
    notebook = copy.deepcopy(solution)
    cell_of_grade_id: dict[str, int] = {}
    for index, cell in enumerate(notebook.cells):
        where = f"{name}, cell {index + 1}"
        metadata = _nbgrader_cell_metadata(cell, where)
        earlier = cell_of_grade_id.setdefault(metadata["grade_id"], index + 1)
        if earlier != index + 1:
            raise ValueError(f"{where}: nbgrader id {metadata['grade_id']} is also that of cell "
                             f"{earlier}; each exercise has one solution cell and one check cell")
        cell.metadata["nbgrader"] = metadata
    return notebook


def learner_notebook(solution, name: str):
    """The learner copy of the notebook ``solution`` (which is left unchanged), with nbgrader's
    metadata."""
    notebook = with_nbgrader_metadata(solution, name)
    for index, cell in enumerate(notebook.cells):
        where = f"{name}, cell {index + 1}"
        if ANY_MARKER.search(cell.source):
            if cell.cell_type != "code":
                raise SolutionMarkerError(f"{where}: solution markers are only allowed in code "
                                          f"cells (a {cell.cell_type} cell would keep them)")
            cell.source = strip_solutions(cell.source, where)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)  # timings recorded by some runners
    return notebook


def render(notebook) -> str:
    """The notebook as nbformat writes it (sorted keys, one-space indent), ending in a newline."""
    text = nbformat.writes(notebook, version=4)
    return text if text.endswith("\n") else text + "\n"


def generated_texts(solution_path: Path) -> tuple[str, str]:
    """The solution notebook at ``solution_path`` with nbgrader's metadata, and its learner
    copy, as text."""
    solution = with_nbgrader_metadata(nbformat.read(solution_path, as_version=4),
                                      str(solution_path))
    return render(solution), render(learner_notebook(solution, str(solution_path)))


def generated_text(solution_path: Path) -> str:
    """The learner copy of the solution notebook at ``solution_path``, as text."""
    return generated_texts(solution_path)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.exercises",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("solutions", nargs="+", type=Path, help="solution notebooks")
    parser.add_argument("--out", type=Path, required=True, help="folder of the learner copies")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a learner copy is missing or differs")
    arguments = parser.parse_args(argv)

    stale = []
    for solution_path in arguments.solutions:
        target = arguments.out / solution_path.name
        solution_text, text = generated_texts(solution_path)
        for path, expected in ((solution_path, solution_text), (target, text)):
            if not path.exists() or path.read_text(encoding="utf-8") != expected:
                if arguments.check:
                    stale.append(path)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(expected, encoding="utf-8")
        if not arguments.check:
            print(f"{solution_path} -> {target}")
    for target in stale:
        print(f"out of date: {target} (regenerate it with `make exercises`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
