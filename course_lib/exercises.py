"""Generate the learners' exercise notebooks from the solutions (docs/grading.md).

``solutions/NN_topic.ipynb`` is the single source of truth. Its learner copy
``notebooks/exercises/NN_topic.ipynb`` is the same notebook with every region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers, code cells only) replaced by::

    # YOUR CODE HERE
    raise NotImplementedError

at the region's indentation, so the signature and docstring above it stay, and with the outputs
and execution counts of every cell cleared (the learner runs it; CI runs it with nbval, which then
compares nothing and fails only on errors). The output is byte-for-byte reproducible.

Usage (``make exercises``)::

    python -m course_lib.exercises solutions/*.ipynb --out notebooks/exercises
    python -m course_lib.exercises solutions/*.ipynb --out notebooks/exercises --check

``--check`` writes nothing and exits 1, naming each learner copy that is missing or differs
from what would be generated.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

BEGIN_SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
END_SOLUTION = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
ANY_MARKER = re.compile(r"### (BEGIN|END) SOLUTION")


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


def learner_notebook(solution, name: str):
    """The learner copy of the notebook ``solution`` (which is left unchanged)."""
    notebook = copy.deepcopy(solution)
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


def generated_text(solution_path: Path) -> str:
    """The learner copy of the solution notebook at ``solution_path``, as text."""
    solution = nbformat.read(solution_path, as_version=4)
    return render(learner_notebook(solution, str(solution_path)))


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
        text = generated_text(solution_path)
        if arguments.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target)
        else:
            arguments.out.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"{solution_path} -> {target}")
    for target in stale:
        print(f"out of date: {target} (regenerate it with `make exercises`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
