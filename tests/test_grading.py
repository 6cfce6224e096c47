"""The grader, end to end: a batch of 30 submissions, some hostile, graded by the command line.

The batch is the fixtures of ``tests/fixtures/submissions/`` plus copies of the ordinary ones, up
to 30 students. It is graded twice; every test below reads the first run's grade sheet.
"""

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib.checks import EXERCISES, GRADING_TIMEOUTS_S
from course_lib.checks.core import Outcome
from course_lib.grading.exchange import (
    MAX_RESULT_BYTES,
    UnreadableResultError,
    load_outcomes,
    save_outcomes,
)
from course_lib.grading.submissions import (
    LessonError,
    assign_lessons,
    exercise_cells,
    lessons_in_text,
)
from tests.fixtures import make_submissions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
EXERCISE_IDS = ["02.1", "02.2", "02.3", "02.4"]
BATCH_SIZE = 30
TIMEOUT_S = 25  # the infinite loop costs this much; every other fixture takes a few seconds
MEMORY_MB = 600  # a kernel and its worker use about 200 MB

PASSED = (1, "passed (")


def every(score, reason):
    return dict.fromkeys(EXERCISE_IDS, (score, reason))


def passing_except(**failures):
    """All exercises pass except those named, e.g. ``e02_3=(0, "raised ValueError")``."""
    expected = every(*PASSED)
    expected.update({name[1:].replace("_", "."): failure for name, failure in failures.items()})
    return expected


# Per fixture: the status, and per exercise the score and a piece of the reason.
EXPECTED = {
    "full_marks": ("ok", every(*PASSED)),
    "not_started": ("ok", every(0, "not done yet: `")),
    "raises_exception": ("ok", passing_except(
        e02_3=(0, "`attention_lookup` raised ValueError: matmul"))),
    "infinite_loop": ("timeout", every(0, f"stopped at the time limit ({TIMEOUT_S} s)")),
    "os_exit": ("crashed", every(0, "no result came back: the kernel died in cell")),
    "dies_while_graded": ("crashed", {
        "02.1": PASSED, "02.2": PASSED,
        "02.3": (0, "no result came back: the kernel died while the grader ran exercise 02.3"),
        "02.4": (0, "no result came back: the kernel died while the grader ran exercise 02.3"),
    }),
    "memory_bomb": ("memory", every(0, f"using more than {MEMORY_MB} MB of memory")),
    "sys_exit": ("ok", passing_except(
        e02_2=(0, "`masked_softmax` is not defined: its cell (`# EXERCISE 02.2`) raised "
                  "SystemExit: I give up"))),
    "monkeypatch": ("ok", {
        "02.1": (0, "Your `weights` is off by up to"),
        "02.2": (0, "Your `weights` do not sum to 1 along the keys"),
        "02.3": (0, "Your `output` is off by up to"),
        "02.4": (0, "your weights differ from the softmax of"),
    }),
    "fake_results": ("ok", every(0, "not done yet: `")),
    "corrupt_json": ("invalid_notebook", every(0, "invalid notebook: the file is not JSON")),
    "deleted_cells": ("ok", passing_except(
        e02_2=(0, "exercise not found: no cell is marked `# EXERCISE 02.2`"),
        e02_4=(0, "exercise not found: no cell is marked `# EXERCISE 02.4`"))),
    "reordered_renamed": ("ok", passing_except(
        e02_3=(1, "passed (3 test cases); graded `lookup_with_attention`"))),
    "alternative_solution": ("ok", every(*PASSED)),
    "subtly_wrong": ("ok", passing_except(
        e02_2=(0, "A row whose keys are all masked should get all-zero weights"),
        e02_3=(0, "Your scores are missing the 1/√d scaling"))),
}

# Copies that bring the batch to 30 students, cycling through fixtures that finish quickly.
COPIED = ["full_marks", "not_started", "alternative_solution", "subtly_wrong"]
COPIES = {f"student_{number:02d}": COPIED[number % len(COPIED)]
          for number in range(BATCH_SIZE - len(EXPECTED))}


def grade(folder: Path, sheet: Path, timeout_s: float = TIMEOUT_S, memory_mb: int = MEMORY_MB,
          *options: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
                   "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "course_lib.grading", str(folder), "--csv", str(sheet),
         "--timeout", str(timeout_s), "--memory-mb", str(memory_mb), "--jobs", "2", *options],
        capture_output=True, text=True, env=environment, timeout=900, check=False)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the batch twice; return both runs and both grade sheets."""
    folder = tmp_path_factory.mktemp("class")
    for name in EXPECTED:
        shutil.copyfile(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb")
    for student, original in COPIES.items():
        shutil.copyfile(FIXTURES / f"{original}.ipynb", folder / f"{student}.ipynb")
    sheets = [folder.parent / f"grades_{run}.csv" for run in (1, 2)]
    runs = [grade(folder, sheet) for sheet in sheets]
    return runs, sheets


@pytest.fixture(scope="module")
def rows(batch):
    runs, sheets = batch
    assert runs[0].returncode == 0, runs[0].stderr
    return {row["student"]: row for row in csv.DictReader(io.StringIO(sheets[0].read_text()))}


def test_committed_fixtures_are_what_the_script_makes():
    made = make_submissions.build()
    committed = {path.relative_to(FIXTURES).as_posix(): path.read_text(encoding="utf-8")
                 for path in FIXTURES.rglob("*.ipynb")}
    assert committed == made, "run `python tests/fixtures/make_submissions.py`"


def test_the_whole_batch_is_graded(rows):
    assert len(rows) == BATCH_SIZE
    assert list(rows) == sorted(rows)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_fixture_is_graded_as_it_should_be(rows, student):
    status, exercises = EXPECTED[student]
    row = rows[student]
    assert row["status"] == status
    for exercise_id, (score, reason) in exercises.items():
        assert int(row[f"{exercise_id}_score"]) == score, row[f"{exercise_id}_reason"]
        assert reason in row[f"{exercise_id}_reason"]
    assert int(row["total"]) == sum(score for score, _ in exercises.values())
    assert int(row["max_total"]) == len(EXERCISE_IDS)


def test_copies_get_the_grade_of_their_original(rows):
    for student, original in COPIES.items():
        copy = {key: value for key, value in rows[student].items() if key != "student"}
        assert copy == {key: value for key, value in rows[original].items() if key != "student"}


def test_csv_columns_are_fixed(batch):
    _, sheets = batch
    header = sheets[0].read_text().splitlines()[0]
    expected = ["student", "status", "lesson", "total", "max_total"]
    for exercise_id in EXERCISE_IDS:
        expected += [f"{exercise_id}_score", f"{exercise_id}_reason"]
    assert header == ",".join(expected)


def test_grading_twice_gives_identical_csv(batch):
    runs, sheets = batch
    assert runs[1].returncode == 0, runs[1].stderr
    assert sheets[0].read_bytes() == sheets[1].read_bytes()


def test_summary_is_printed(batch):
    runs, _ = batch
    summary = runs[0].stdout
    assert "30 submissions: 25 ok, 1 timeout, 1 memory, 2 crashed, 1 invalid_notebook" in summary
    assert any(line.startswith("full_marks") and line.endswith("4/4")
               for line in summary.splitlines())


def test_no_submission_is_a_usage_error(tmp_path):
    result = grade(tmp_path, tmp_path / "grades.csv")
    assert result.returncode == 2
    assert "no .ipynb submissions found" in result.stderr
    assert not (tmp_path / "grades.csv").exists()


def test_forged_result_files_are_refused(tmp_path):
    exercise = EXERCISES["02.1"]
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, function=np.array("softmax_with_temperature"), n_cases=np.array(1),
             **{"case0.error_type": np.array(""), "case0.message": np.array(""),
                "case0.n_outputs": np.array(1), "case0.output0": np.array([{"a": 1}])})
    huge = tmp_path / "huge.npz"
    save_outcomes(huge, exercise.function_name,
                  [Outcome(outputs=(np.zeros(MAX_RESULT_BYTES // 8 + 1),))])
    wrong_count = tmp_path / "wrong_count.npz"
    save_outcomes(wrong_count, exercise.function_name, [Outcome(outputs=(np.zeros(3),))])
    not_a_zip = tmp_path / "not_a_zip.npz"
    not_a_zip.write_text("passed")
    for path in (pickled, huge, wrong_count, not_a_zip):
        with pytest.raises(UnreadableResultError):
            load_outcomes(path, expected_cases=5)


def test_exercises_are_found_by_marker_or_tag_anywhere():
    cells = [nbformat.v4.new_code_cell("import numpy"),
             nbformat.v4.new_code_cell("x = 1\n  #exercise   02.3\ndef f(): pass"),
             nbformat.v4.new_code_cell("def g(): pass")]
    cells[2].metadata["tags"] = ["exercise-02.1"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    assert exercise_cells(notebook) == {"02.3": [1], "02.1": [2]}


SOLUTIONS = sorted(path.name for path in (ROOT / "solutions").glob("*.ipynb"))


# What the grader must say of each lesson's wrong_build fixture (see make_submissions.py).
WRONG_BUILD_REASONS = {
    "01": "the signature of the bottleneck",
    "02": "as each point copies its own target (a leak)",
    "03": "Your layer ignores `mask`",
    "04": "Your Gaussian has σ = D",
    "05": "Your scores are not scaled",
    "06": "it cannot see word order",
    "08": "has no causal mask",
    "07": "Your mask has the opposite polarity",
}
DEFAULT_MEMORY_MB = 2048  # the grader's default: a kernel with Keras uses about 700 MB


@pytest.mark.parametrize("lesson", SOLUTIONS)
def test_grader_gives_each_solution_full_marks_and_its_learner_copy_nothing(lesson, tmp_path):
    """What an instructor would see grading the course's own notebooks with the timeout the
    documentation gives for the lesson: every exercise of the solution passes; the untouched
    learner copy gets 0 and "not done yet" for each, no error; the solution with one slip in
    its build exercise loses that exercise only, with the slip named."""
    number = lesson[:2]
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copyfile(ROOT / "solutions" / lesson, folder / "solution.ipynb")
    shutil.copyfile(ROOT / "notebooks" / "exercises" / lesson, folder / "untouched.ipynb")
    wrong = FIXTURES / "wrong_builds" / f"wrong_build_{number}.ipynb"
    if wrong.exists():
        shutil.copyfile(wrong, folder / "wrong_build.ipynb")
    sheet = tmp_path / "grades.csv"
    result = grade(folder, sheet, GRADING_TIMEOUTS_S[number], DEFAULT_MEMORY_MB)
    assert result.returncode == 0, result.stderr
    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(sheet.read_text()))}
    assert set(rows) == {"solution", "untouched"} | ({"wrong_build"} if wrong.exists() else set())
    exercise_ids = [e.exercise_id for e in EXERCISES.values() if e.lesson == number]
    assert len(exercise_ids) >= 2, "each lesson has 2 to 4 exercises"
    for student, total in (("solution", len(exercise_ids)), ("untouched", 0)):
        row = rows[student]
        assert row["status"] == "ok", row
        assert (int(row["total"]), int(row["max_total"])) == (total, len(exercise_ids)), row
    for exercise_id in exercise_ids:
        assert rows["solution"][f"{exercise_id}_reason"].startswith("passed (")
        assert rows["untouched"][f"{exercise_id}_reason"].startswith("not done yet: `")
    if wrong.exists():
        row = rows["wrong_build"]
        assert row["status"] == "ok", row
        assert int(row["total"]) == len(exercise_ids) - 1, row
        failed = [exercise_id for exercise_id in exercise_ids
                  if int(row[f"{exercise_id}_score"]) == 0]
        assert len(failed) == 1 and WRONG_BUILD_REASONS[number] in row[f"{failed[0]}_reason"], row


def test_a_batch_mixing_lessons_grades_each_notebook_on_its_own_exercises(tmp_path):
    """Solutions and learner copies of three lessons in one folder: each notebook is graded on
    its own lesson's exercises only, out of that lesson's total; its cells for the other
    lessons' exercises are empty, and its `lesson` column says which lesson it was graded on."""
    lessons = {"02": "02_attention_from_scratch.ipynb", "04": "04_luong_attention.ipynb",
               "07": "07_multi_head_attention.ipynb"}
    folder = tmp_path / "class"
    folder.mkdir()
    students = {}
    for lesson, name in lessons.items():
        shutil.copyfile(ROOT / "notebooks" / "exercises" / name, folder / f"learner_{lesson}.ipynb")
        students[f"learner_{lesson}"] = lesson
    for lesson in ("02", "04"):
        shutil.copyfile(ROOT / "solutions" / lessons[lesson], folder / f"solution_{lesson}.ipynb")
        students[f"solution_{lesson}"] = lesson
    (folder / "broken.ipynb").write_text('{"cells": [{"source": ["# EXERCISE 07.2\\n"')
    students["broken"] = "07"
    sheet = tmp_path / "grades.csv"
    result = grade(folder, sheet, max(GRADING_TIMEOUTS_S[lesson] for lesson in lessons),
                   DEFAULT_MEMORY_MB)
    assert result.returncode == 0, result.stderr
    text = sheet.read_text()
    all_ids = sorted((e for e in EXERCISES if e[:2] in lessons),
                     key=lambda e: tuple(map(int, e.split("."))))
    assert text.splitlines()[0].split(",")[:5] == ["student", "status", "lesson", "total",
                                                   "max_total"]
    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(text))}
    assert set(rows) == set(students)
    for student, lesson in students.items():
        row = rows[student]
        own = [exercise_id for exercise_id in all_ids if exercise_id[:2] == lesson]
        assert row["lesson"] == lesson and int(row["max_total"]) == len(own), row
        for exercise_id in all_ids:
            score, reason = row[f"{exercise_id}_score"], row[f"{exercise_id}_reason"]
            if exercise_id[:2] != lesson:
                assert (score, reason) == ("", ""), (student, exercise_id)
            elif student.startswith("solution"):
                assert score == "1" and reason.startswith("passed ("), reason
            elif student == "broken":
                assert score == "0" and reason.startswith("invalid notebook"), reason
            else:
                assert score == "0" and reason.startswith("not done yet: `"), reason
    assert "of the points overall (each row out of its own lesson's)" in result.stdout


def test_a_notebook_holding_two_lessons_stops_the_grader_with_what_to_do(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# EXERCISE 02.1\ndef softmax_with_temperature(s, t): pass"),
        nbformat.v4.new_code_cell("# EXERCISE 03.2\ndef teacher_forcing_inputs(t): pass")])
    nbformat.write(notebook, folder / "ada.ipynb")
    result = grade(folder, tmp_path / "grades.csv")
    assert result.returncode == 2
    assert "ada.ipynb holds exercises of lessons 02, 03: pass --lesson" in result.stderr
    assert not (tmp_path / "grades.csv").exists()


def test_the_documented_timeouts_are_the_lessons_own():
    """docs/grading.md's table of --timeout per lesson is GRADING_TIMEOUT_S of each lesson."""
    text = (ROOT / "docs" / "grading.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([\d, ]+) \| (\d+)", text, re.MULTILINE)
    documented = {lesson: int(seconds) for lessons, seconds in rows
                  for lesson in lessons.split(", ")}
    assert {f"{number:02d}" for number in range(1, 9)} <= set(documented)
    assert documented == {lesson: GRADING_TIMEOUTS_S[lesson] for lesson in documented}


def test_lessons_are_assigned_per_notebook_or_the_grader_says_what_to_do():
    known = {"01", "02", "03"}
    assert assign_lessons({"a": {"02"}, "b": {"03"}, "c": set()}, known, ["01"]) == {
        "a": ("01",), "b": ("01",), "c": ("01",)}
    assert assign_lessons({"a": {"02"}, "b": set(), "c": {"42"}}, known, None) == {
        "a": ("02",), "b": ("02",), "c": ("02",)}
    assert assign_lessons({"a": {"02"}, "b": {"03"}, "c": set()}, known, None,
                          frozenset({"c"})) == {"a": ("02",), "b": ("03",), "c": ()}
    with pytest.raises(LessonError, match="b.ipynb has no `# EXERCISE NN.M` marker"):
        assign_lessons({"a": {"02"}, "b": set(), "c": {"03"}}, known, None)
    with pytest.raises(LessonError, match="no exercise of a known lesson"):
        assign_lessons({"a": set(), "b": {"42"}}, known, None)
    assert lessons_in_text('"source": ["# EXERCISE 03.1\\n", "class') == {"03"}
