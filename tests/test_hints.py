"""No message of a check gives the answer's code away.

A hint names the idea or the place to look ("which axis holds the keys?"), never the code of the
solution. This test compares every message a check can print (its mistakes' messages, its hints,
and the string literals of its diagnoses and of the shared machinery) with the lines of the
solution cells of ``solutions/NN_*.ipynb``.

What "contains the solution's code" means here: both texts are cut into code tokens (names,
numbers, operators and brackets; whitespace and comments dropped, numbers compared by value, so
``0`` matches ``0.0``), and a message fails when it holds a run of :data:`RUN` consecutive tokens
that also occurs, in order, in one solution line, and that run is code rather than prose: it has
at least two operators or brackets and two names or numbers. ``np.sqrt(d)`` or
``mask[:, None]`` is such a run; "the window [t - D, t + D]" is not, unless a solution line
writes exactly that.
"""

import ast
import inspect
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.checks import EXERCISES, core
from course_lib.exercises import BEGIN_SOLUTION, END_SOLUTION

ROOT = Path(__file__).resolve().parents[1]
RUN = 6
TOKEN = re.compile(r"[A-Za-z_]\w*|\d+\.\d*(?:e-?\d+)?|\.\d+|\d+(?:e-?\d+)?|\*\*|//|==|!=|<=|>=|"
                   r"->|[^\s\w]")
WORD = re.compile(r"[A-Za-z_]\w*|[\d.]+(?:e-?\d+)?")


def tokens(text: str) -> list[str]:
    """Code tokens of ``text``, numbers written by value (``0.0`` → ``0``)."""
    found = []
    for token in TOKEN.findall(text):
        if token[0].isdigit() or (token[0] == "." and token[1:2].isdigit()):
            token = repr(float(token)).removesuffix(".0")
        found.append(token)
    return found


def is_code(run: tuple[str, ...]) -> bool:
    """A run of tokens that reads as code: two operators or brackets and two names or numbers."""
    words = sum(bool(WORD.fullmatch(token)) for token in run)
    return words >= 2 and len(run) - words >= 2


def code_runs(line: str) -> set[tuple[str, ...]]:
    """Every run of RUN consecutive code tokens of a solution line."""
    line_tokens = tokens(line.split("#")[0])
    return {run for start in range(len(line_tokens) - RUN + 1)
            if is_code(run := tuple(line_tokens[start:start + RUN]))}


def leaked_code(message: str, solution_runs: set[tuple[str, ...]]) -> str | None:
    """The first run of the solution's code that ``message`` contains, or None."""
    message_tokens = tokens(message)
    for start in range(len(message_tokens) - RUN + 1):
        run = tuple(message_tokens[start:start + RUN])
        if run in solution_runs:
            return " ".join(run)
    return None


def solution_lines(lesson: str) -> list[str]:
    """The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of a solution."""
    path = next((ROOT / "solutions").glob(f"{lesson}_*.ipynb"))
    lines, inside = [], False
    for cell in nbformat.read(path, as_version=4).cells:
        for line in cell.source.splitlines():
            if BEGIN_SOLUTION.match(line):
                inside = True
            elif END_SOLUTION.match(line):
                inside = False
            elif inside:
                lines.append(line)
    return lines


def _string_literals(source: str) -> list[str]:
    """The string literals of Python source, docstrings left out; an f-string's fixed parts
    are joined around a marker that no code token matches."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                       for part in node.values}
    literals = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            literals.append(" \N{BULLET} ".join(part.value for part in node.values
                                                if isinstance(part, ast.Constant)))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and id(node) not in inside_fstrings):
            literals.append(node.value)
    return literals


def messages(exercise) -> list[str]:
    """Everything the check of ``exercise`` can print: its registered texts, and the string
    literals of its diagnoses' source and of its lesson's module (which holds them)."""
    texts = [mistake.message for mistake in exercise.mistakes]
    texts += [exercise.hint, exercise.nan_hint, exercise.error_hint,
              *exercise.shape_hints.values()]
    module = inspect.getmodule(exercise.properties[0] if exercise.properties else
                               exercise.make_cases)
    texts += _string_literals(inspect.getsource(module))
    return [text for text in texts if text]


CORE_MESSAGES = _string_literals(inspect.getsource(core))


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_no_message_contains_the_solutions_code(exercise_id):
    exercise = EXERCISES[exercise_id]
    solution_runs = set().union(*map(code_runs, solution_lines(exercise.lesson)))
    assert solution_runs, f"no solution code found for lesson {exercise.lesson}"
    leaks = {text: run for text in messages(exercise) + CORE_MESSAGES
             if (run := leaked_code(text, solution_runs))}
    assert not leaks, "messages that give the answer's code away:\n" + "\n".join(
        f"  {run!r} in {text!r}" for text, run in leaks.items())


def test_the_detector_catches_a_hint_that_pastes_a_solution_line():
    """A hint planted with a line of a real solution, rewritten with other spacing and numbers
    written another way, is caught; the same idea said in words is not."""
    solution_runs = set().union(*map(code_runs, solution_lines("08")))
    planted = ("Your block has no causal mask. Hint: attended = self.self_attention(x,x, "
               "attention_mask = self_mask, use_causal_mask = True).")
    assert "self_attention (" in leaked_code(planted, solution_runs)
    in_words = ("Your block has no causal mask. Hint: a decoder's token i may see the tokens up "
                "to i only.")
    assert leaked_code(in_words, solution_runs) is None
    numbers = set().union(*map(code_runs, ["hidden = np.maximum(0.0, x @ W1 + b1)"]))
    assert leaked_code("Hint: np.maximum(0, x @ W1 + b1) @ W2 + b2", numbers)


def test_every_registered_check_of_the_course_is_compared():
    """The test reads each lesson's solutions and each check module: none is skipped."""
    lessons = {exercise.lesson for exercise in EXERCISES.values()}
    assert all(solution_lines(lesson) for lesson in lessons)
    assert all(messages(exercise) for exercise in EXERCISES.values())
