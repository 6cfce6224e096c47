"""The exercise generator: learner copies come from the solutions, and both kinds run cleanly."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.checks import EXERCISES
from course_lib.exercises import (
    POINTS_PER_CHECK,
    SolutionMarkerError,
    generated_text,
    generated_texts,
    learner_notebook,
    main,
    strip_solutions,
    with_nbgrader_metadata,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LEARNER_COPIES = ROOT / "notebooks" / "exercises"


def test_there_are_solution_notebooks():
    assert SOLUTIONS, "solutions/ holds no notebook"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_committed_learner_copy_is_what_the_generator_makes(solution):
    committed = LEARNER_COPIES / solution.name
    assert committed.exists(), f"{committed} is missing: run `make exercises`"
    assert committed.read_text(encoding="utf-8") == generated_text(solution), (
        f"{committed} is out of date: run `make exercises`")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_committed_solution_carries_the_nbgrader_metadata_the_generator_writes(solution):
    assert solution.read_text(encoding="utf-8") == generated_texts(solution)[0], (
        f"{solution}'s nbgrader metadata is out of date: run `make exercises`")


def _cell_roles(notebook) -> list[tuple[str, bool, bool, bool, float | None]]:
    return [(cell.metadata.nbgrader["grade_id"], cell.metadata.nbgrader["solution"],
             cell.metadata.nbgrader["grade"], cell.metadata.nbgrader["locked"],
             cell.metadata.nbgrader.get("points")) for cell in notebook.cells]


def test_nbgrader_metadata_marks_solutions_checks_and_locks_the_rest():
    new_code, new_markdown = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    notebook = nbformat.v4.new_notebook(cells=[
        new_markdown("# Lesson 02", id="intro"),
        new_code("from course_lib.checks import (\n    check_masked_softmax,\n)", id="setup"),
        new_code("# EXERCISE 02.2\ndef masked_softmax(scores, mask):\n    ### BEGIN SOLUTION\n"
                 "    return scores\n    ### END SOLUTION", id="answer"),
        new_code("check_masked_softmax(masked_softmax)  # a comment", id="check"),
        new_code("print(masked_softmax)", id="demo")])
    assert _cell_roles(with_nbgrader_metadata(notebook, "test.ipynb")) == [
        ("locked_intro", False, False, True, None),
        ("locked_setup", False, False, True, None),
        ("ex_02_2_solution", True, False, False, None),
        ("ex_02_2_check", False, True, True, POINTS_PER_CHECK),
        ("locked_demo", False, False, True, None)]
    assert "nbgrader" not in notebook.cells[0].metadata  # the solution is left unchanged


@pytest.mark.parametrize(("sources", "message"), [
    (["def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION"],
     "must start with one `# EXERCISE NN.M` line"),
    (["check_masked_softmax(masked_softmax)\ncheck_attention_lookup(attention_lookup)"],
     "one check per cell"),
    (["check_masked_softmax(masked_softmax)", "check_masked_softmax(masked_softmax)"],
     "ex_02_2_check is also that of cell 1"),
])
def test_nbgrader_metadata_refuses_ambiguous_cells(sources, message):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)
                                               for source in sources])
    with pytest.raises(ValueError, match=message):
        with_nbgrader_metadata(notebook, "test.ipynb")


def test_regions_become_raise_not_implemented_at_their_indentation():
    source = ('def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n'
              '    ### END SOLUTION\n\n\nclass A:\n    def g(self):\n        ### BEGIN SOLUTION\n'
              '        return 2\n        ### END SOLUTION')
    assert strip_solutions(source, "test") == (
        'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError\n\n\n'
        'class A:\n    def g(self):\n        # YOUR CODE HERE\n        raise NotImplementedError')


@pytest.mark.parametrize("source", [
    "### BEGIN SOLUTION\nx = 1",
    "x = 1\n### END SOLUTION",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
])
def test_unbalanced_markers_are_refused(source):
    with pytest.raises(SolutionMarkerError):
        strip_solutions(source, "test")


def test_markers_outside_code_cells_are_refused():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nthe answer\n### END SOLUTION")])
    with pytest.raises(SolutionMarkerError, match="only allowed in code cells"):
        learner_notebook(notebook, "test.ipynb")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_learner_copy_keeps_signatures_and_docstrings_and_hides_solutions(solution):
    solution_notebook = nbformat.read(solution, as_version=4)
    learner = nbformat.reads(generated_text(solution), as_version=4)
    assert len(learner.cells) == len(solution_notebook.cells)
    exercise_cells = 0
    for theirs, mine in zip(solution_notebook.cells, learner.cells, strict=True):
        assert "SOLUTION" not in mine.source
        if mine.cell_type == "code":
            assert mine.outputs == [] and mine.execution_count is None
        if "### BEGIN SOLUTION" in theirs.source:
            exercise_cells += 1
            head = theirs.source.split("### BEGIN SOLUTION")[0].rstrip(" ")
            assert mine.source.startswith(head)  # marker, signature and docstring kept
            assert mine.source.rstrip().endswith("raise NotImplementedError")
    assert exercise_cells >= 2


def test_check_mode_names_a_stale_copy(tmp_path, capsys):
    assert main([str(SOLUTIONS[0]), "--out", str(tmp_path), "--check"]) == 1
    assert f"out of date: {tmp_path / SOLUTIONS[0].name}" in capsys.readouterr().err
    assert main([str(SOLUTIONS[0]), "--out", str(tmp_path)]) == 0
    assert main([str(SOLUTIONS[0]), "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / SOLUTIONS[0].name).write_text("{}", encoding="utf-8")
    assert main([str(SOLUTIONS[0]), "--out", str(tmp_path), "--check"]) == 1


def test_check_mode_names_a_solution_without_its_nbgrader_metadata(tmp_path, capsys):
    solution = nbformat.read(SOLUTIONS[0], as_version=4)
    for cell in solution.cells:
        del cell.metadata["nbgrader"]
    stripped = tmp_path / SOLUTIONS[0].name
    nbformat.write(solution, stripped)
    out = tmp_path / "exercises"
    assert main([str(stripped), "--out", str(out), "--check"]) == 1
    assert f"out of date: {stripped}" in capsys.readouterr().err
    assert main([str(stripped), "--out", str(out)]) == 0  # writes the metadata into the solution
    assert stripped.read_text(encoding="utf-8") == SOLUTIONS[0].read_text(encoding="utf-8")
    assert main([str(stripped), "--out", str(out), "--check"]) == 0


def _printed_lines(notebook) -> list[str]:
    """What the notebook's code cells printed, as stored, leaving out cells whose output nbval
    does not compare (``# NBVAL_IGNORE_OUTPUT``, ``# NBVAL_SKIP``)."""
    return [line for cell in notebook.cells if cell.cell_type == "code"
            and not cell.source.lstrip().startswith(("# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP"))
            for output in cell.outputs if output.get("name") == "stdout"
            for line in output["text"].splitlines()]


def _executed(notebook_path: Path, monkeypatch):
    """The notebook, executed in a fresh kernel as a learner would run it.

    Raises nbclient's CellExecutionError if any cell fails.
    """
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's course_lib
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(notebook_path.parent)}}).execute()
    return notebook


def _check_lines(lines: list[str], lesson: str) -> dict[str, str]:
    """The check lines (``02.1 name: reason``), by exercise id."""
    return {line.split(" ")[0]: line for line in lines if line.startswith(f"{lesson}.")}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_learner_copy_runs_and_every_check_says_not_done_yet(solution, monkeypatch):
    lesson = solution.name[:2]
    lines = _check_lines(_printed_lines(_executed(LEARNER_COPIES / solution.name, monkeypatch)),
                         lesson)
    expected = {exercise_id for exercise_id in EXERCISES if exercise_id.startswith(f"{lesson}.")}
    assert set(lines) == expected
    for exercise_id, line in lines.items():
        name = EXERCISES[exercise_id].function_name
        assert line.startswith(f"{exercise_id} {name}: not done yet"), line


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.name)
def test_every_check_of_the_stored_solution_says_passed(solution):
    """The solution as stored: every check line says passed. nbval re-executes each solution and
    compares these very lines with what it prints now, so the two together prove that the
    solution passes today, without running it (and training 01's and 06's models) twice."""
    lesson = solution.name[:2]
    lines = _check_lines(_printed_lines(nbformat.read(solution, as_version=4)), lesson)
    expected = {exercise_id for exercise_id in EXERCISES if exercise_id.startswith(f"{lesson}.")}
    assert set(lines) == expected
    for exercise_id, line in lines.items():
        assert line.startswith(f"{exercise_id} {EXERCISES[exercise_id].function_name}: passed")
