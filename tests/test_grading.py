"""The grader, end to end: a batch of 30 submissions, some hostile, graded by the command line.

The batch is the fixtures of ``tests/fixtures/submissions/`` and the attacks of
``tests/fixtures/attacks/``, plus copies of the ordinary fixtures, up to 30 students. It is graded
twice, in the sandbox (``--require-sandbox``), by a grader that runs from a copy of ``course_lib``
(so a sandbox that failed open could only damage the copy); the tests below read the first run's
grade sheet and what the runs left behind. Without a sandbox the grader is tested on a smaller
batch, forced by ``COURSE_GRADER_SANDBOX=none``.
"""

import csv
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import psutil
import pytest

from course_lib.checks import EXERCISES, GRADING_TIMEOUTS_S
from course_lib.checks.core import Outcome
from course_lib.grading.exchange import (
    MAX_RESULT_BYTES,
    UnreadableResultError,
    load_outcomes,
    save_outcomes,
)
from course_lib.grading.installation import fingerprint
from course_lib.grading.sandbox import BUBBLEWRAP, Sandbox, choose_sandbox
from course_lib.grading.submissions import (
    LessonError,
    assign_lessons,
    exercise_cells,
    lessons_in_text,
)
from tests.fixtures import make_submissions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
ATTACKS = ROOT / "tests" / "fixtures" / "attacks"
EXERCISE_IDS = ["02.1", "02.2", "02.3", "02.4"]
BATCH_SIZE = 30
TIMEOUT_S = 25  # the infinite loop costs this much; the others take seconds (the flood most)
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


def attacked(message):
    """An attack that failed: it raised ``message`` in exercise 02.4's cell; 02.1-02.3 pass."""
    return passing_except(e02_4=(0, f"(`# EXERCISE 02.4`) raised RuntimeError: {message}."))


# Per attack, in the sandbox: the status, and per exercise the score and a piece of the reason.
EXPECTED_ATTACKS = {
    "overwrites_others": ("ok", attacked("no other student's notebook in sight")),
    "edits_course_lib": ("ok", attacked("could not edit the installation: Read-only file system")),
    "writes_grade_sheet": ("ok", attacked("no grade sheet in sight")),
    "connects_out": ("ok", attacked("could not reach 127.0.0.1: Connection refused")),
    "signals_grader": ("crashed", every(0, "no result came back: the grading process was killed "
                                           "by SIGKILL before it wrote its report.")),
    "detached_process": ("ok", every(*PASSED)),
    "fork_storm": ("processes", every(0, "stopped for running more than 100 processes at once")),
    "fills_tmp": ("memory", every(0, f"using more than {MEMORY_MB} MB of memory")),
    "floods_stdout": ("ok", every(*PASSED)),
}
GRADED = {**EXPECTED, **EXPECTED_ATTACKS}

# Copies that bring the batch to 30 students, cycling through fixtures that finish quickly.
COPIED = ["full_marks", "not_started", "alternative_solution", "subtly_wrong"]
COPIES = {f"student_{number:02d}": COPIED[number % len(COPIED)]
          for number in range(BATCH_SIZE - len(GRADED))}


def grade(folder: Path, sheet: Path, *options: str, timeout_s: float = TIMEOUT_S,
          memory_mb: int = MEMORY_MB, python_path: Path = ROOT,
          sandbox: str = BUBBLEWRAP) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
                   "PYTHONPATH": str(python_path), "COURSE_GRADER_SANDBOX": sandbox}
    return subprocess.run(
        [sys.executable, "-m", "course_lib.grading", str(folder), "--csv", str(sheet),
         "--timeout", str(timeout_s), "--memory-mb", str(memory_mb), "--jobs", "2", *options],
        capture_output=True, text=True, env=environment, timeout=900, check=False)


def read_rows(sheet: Path) -> dict[str, dict[str, str]]:
    return {row["student"]: row for row in csv.DictReader(io.StringIO(sheet.read_text()))}


def file_hashes(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.iterdir())}


class Listener:
    """A TCP server on 127.0.0.1 that records whatever reaches it, until closed."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        self.open = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.open:
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    self.received.append(connection.recv(4096) or b"(connected)")
                except OSError:
                    self.received.append(b"(connected)")

    def close(self):
        self.open = False
        self.thread.join()
        self.server.close()


def attackers_processes() -> list[psutil.Process]:
    """Processes started by an attack (marked on their command line or in their environment)."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        command_line = " ".join(process.info["cmdline"] or [])
        environment = process.info["environ"] or {}
        if make_submissions.MARKER in command_line or "COURSE_GRADER_ATTACK" in environment:
            found.append(process)
    return found


@dataclass
class Batch:
    runs: list[subprocess.CompletedProcess]
    sheets: list[Path]
    notebooks_before: dict[str, str]
    notebooks_after: dict[str, str]
    installation_before: dict[str, str]
    installation_after: dict[str, str]
    received: list[bytes]
    survivors: list[str]


def copy_attack(name: str, folder: Path, sheets: Path, listener: Listener) -> None:
    """An attack, with what it could not know written in: the class folder, the grade sheets'
    folder and the listener's port."""
    text = (ATTACKS / f"{name}.ipynb").read_text(encoding="utf-8")
    port = f"LISTENER_PORT = {listener.port}"
    for placeholder, value in ((make_submissions.CLASS_FOLDER, str(folder)),
                               (make_submissions.SHEETS_FOLDER, str(sheets)),
                               (make_submissions.LISTENER_PORT, port)):
        text = text.replace(placeholder, value)
    (folder / f"{name}.ipynb").write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the batch twice in the sandbox, from a copy of course_lib; record what the attacks
    could reach, and kill whatever of theirs survived."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the grader's sandbox (bubblewrap) exists on Linux only")
    folder, sheets = tmp_path_factory.mktemp("class"), tmp_path_factory.mktemp("sheets")
    installation = tmp_path_factory.mktemp("installation")
    shutil.copytree(ROOT / "course_lib", installation / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    listener = Listener()
    for name in EXPECTED:
        shutil.copyfile(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb")
    for name in EXPECTED_ATTACKS:
        copy_attack(name, folder, sheets, listener)
    for student, original in COPIES.items():
        shutil.copyfile(FIXTURES / f"{original}.ipynb", folder / f"{student}.ipynb")
    notebooks_before = file_hashes(folder)
    installation_before = fingerprint(installation / "course_lib")
    try:
        runs = [grade(folder, sheets / f"grades_{run}.csv", "--require-sandbox",
                      python_path=installation) for run in (1, 2)]
    finally:
        listener.close()
        survivors = attackers_processes()
        for process in survivors:
            process.kill()
    return Batch(runs, [sheets / f"grades_{run}.csv" for run in (1, 2)], notebooks_before,
                 file_hashes(folder), installation_before,
                 fingerprint(installation / "course_lib"), listener.received,
                 [" ".join(process.info["cmdline"] or []) for process in survivors])


@pytest.fixture(scope="module")
def rows(batch):
    assert batch.runs[0].returncode == 0, batch.runs[0].stderr
    return read_rows(batch.sheets[0])


def test_committed_fixtures_are_what_the_script_makes():
    for folder, made in ((FIXTURES, make_submissions.build(make_submissions.FIXTURES)),
                         (ATTACKS, make_submissions.build(make_submissions.ATTACK_FIXTURES)),
                         (make_submissions.WRONG_BUILDS, make_submissions.wrong_builds())):
        committed = {path.name: path.read_text(encoding="utf-8")
                     for path in folder.glob("*.ipynb")}
        assert committed == made, "run `python tests/fixtures/make_submissions.py`"


def test_the_whole_batch_is_graded(rows):
    assert len(rows) == BATCH_SIZE
    assert list(rows) == sorted(rows)


@pytest.mark.parametrize("student", sorted(GRADED))
def test_each_fixture_is_graded_as_it_should_be(rows, student):
    status, exercises = GRADED[student]
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
    header = batch.sheets[0].read_text().splitlines()[0]
    expected = ["student", "status", "lesson", "total", "max_total"]
    for exercise_id in EXERCISE_IDS:
        expected += [f"{exercise_id}_score", f"{exercise_id}_reason"]
    assert header == ",".join(expected)


def test_grading_twice_gives_identical_csv(batch):
    assert batch.runs[1].returncode == 0, batch.runs[1].stderr
    assert batch.sheets[0].read_bytes() == batch.sheets[1].read_bytes()


def test_summary_is_printed(batch):
    summary = batch.runs[0].stdout
    assert ("30 submissions: 22 ok, 1 timeout, 2 memory, 1 processes, 3 crashed, "
            "1 invalid_notebook") in summary
    assert any(line.startswith("full_marks") and line.endswith("4/4")
               for line in summary.splitlines())
    assert "\nsandbox: bubblewrap\n" in summary


def test_the_attacks_leave_the_class_notebooks_as_they_were(batch):
    assert batch.notebooks_after == batch.notebooks_before


def test_the_attacks_leave_the_installation_as_it_was(batch):
    assert batch.installation_after == batch.installation_before
    for run in batch.runs:
        assert "course_lib: unchanged during grading" in run.stdout


def test_no_attack_reaches_the_network(batch):
    assert batch.received == []


def test_nothing_of_the_attacks_is_left_running(batch):
    assert batch.survivors == []


def test_the_flood_of_output_never_reaches_the_graders_terminal(batch):
    for run in batch.runs:
        assert len(run.stdout) + len(run.stderr) < 100_000


def test_without_a_sandbox_the_grader_warns_and_grades_from_what_it_read_first(tmp_path):
    """Forced to run without a sandbox: a warning first and last, "sandbox: none" in the summary,
    and an attack that overwrites and deletes the notebooks of the students graded after it
    succeeds on disk, but changes none of their grades: every notebook was read before any
    student's code ran."""
    folder, sheet = tmp_path / "class", tmp_path / "grades.csv"
    folder.mkdir()
    victims = ["full_marks", "memory_bomb", "not_started", "os_exit"]
    for name in victims:
        shutil.copyfile(FIXTURES / f"{name}.ipynb", folder / f"victim_{name}.ipynb")
    text = (ATTACKS / "overwrites_others.ipynb").read_text(encoding="utf-8")
    (folder / "overwrites_others.ipynb").write_text(
        text.replace(make_submissions.CLASS_FOLDER, str(folder)), encoding="utf-8")
    result = grade(folder, sheet, sandbox="none")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING: no sandbox")]
    assert len(warnings) == 2 and lines[0] == lines[-1] == warnings[0]
    assert "\nsandbox: none (COURSE_GRADER_SANDBOX=none is set)\n" in result.stdout
    assert list(folder.iterdir()) == []  # its own notebook included
    rows = read_rows(sheet)
    assert rows["overwrites_others"]["total"] == "4"  # nothing stopped it
    for name in victims:
        status, exercises = EXPECTED[name]
        assert rows[f"victim_{name}"]["status"] == status
        for exercise_id, (score, reason) in exercises.items():
            assert int(rows[f"victim_{name}"][f"{exercise_id}_score"]) == score
            assert reason in rows[f"victim_{name}"][f"{exercise_id}_reason"]


def test_require_sandbox_refuses_to_grade_without_one(tmp_path):
    shutil.copyfile(FIXTURES / "full_marks.ipynb", tmp_path / "full_marks.ipynb")
    result = grade(tmp_path, tmp_path / "grades.csv", "--require-sandbox", sandbox="none")
    assert result.returncode == 2
    assert "no sandbox (COURSE_GRADER_SANDBOX=none is set), and --require-sandbox" in result.stderr
    assert not (tmp_path / "grades.csv").exists()


def test_the_sandbox_hides_what_it_must_inside_what_it_reads(tmp_path):
    """Inside a folder the sandbox reads: a hidden file and a hidden folder are not visible, a
    readable folder inside the hidden one is; nothing read can be written; the scratch folder
    can."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the grader's sandbox (bubblewrap) exists on Linux only")
    readable, scratch = tmp_path / "readable", tmp_path / "scratch"
    (readable / "hidden" / "readable_again").mkdir(parents=True)
    scratch.mkdir()
    for path in (readable / "visible.txt", readable / "hidden.txt",
                 readable / "hidden" / "secret.txt", readable / "hidden" / "readable_again" / "x"):
        path.write_text("text")
    sandbox = choose_sandbox([readable / "hidden.txt", readable / "hidden"], memory_mb=64)
    assert sandbox.name == BUBBLEWRAP, sandbox.why_none
    again = readable / "hidden" / "readable_again"
    sandbox = Sandbox(BUBBLEWRAP, bwrap=sandbox.bwrap, memory_mb=64,
                      readable=(*sandbox.readable, readable, again),
                      hidden=(readable / "hidden.txt", readable / "hidden"))
    probe = (
        "import os, sys\n"
        "def readable(path):\n"
        "    try:\n"
        "        return open(path).read() == 'text'\n"
        "    except OSError:\n"
        "        return False\n"
        "def writable(path):\n"
        "    try:\n"
        "        open(path, 'a').close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "r, s, t = sys.argv[1:]\n"
        "print(readable(f'{r}/visible.txt'), readable(f'{r}/hidden.txt'),\n"
        "      readable(f'{r}/hidden/secret.txt'), readable(f'{r}/hidden/readable_again/x'),\n"
        "      writable(f'{r}/visible.txt'), writable(f'{s}/new.txt'), writable(t))\n")
    private = Path("/tmp") / f"{tmp_path.name}-{os.getpid()}.txt"  # in the sandbox's own /tmp
    process = sandbox.start([sys.executable, "-c", probe, str(readable), str(scratch),
                             str(private)], scratch, scratch, dict(os.environ), subprocess.PIPE)
    output, _ = process.communicate(timeout=60)
    assert output.decode().split() == ["True", "False", "False", "True", "False", "True", "True"]
    assert (scratch / "new.txt").exists() and not private.exists()


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
    result = grade(folder, sheet, timeout_s=GRADING_TIMEOUTS_S[number],
                   memory_mb=DEFAULT_MEMORY_MB)
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
    lessons = {"02": "02_attention_from_scratch.ipynb", "03": "03_bahdanau_attention.ipynb",
               "07": "07_multi_head_attention.ipynb"}  # 4, 3 and 4 exercises
    folder = tmp_path / "class"
    folder.mkdir()
    students = {}
    for lesson, name in lessons.items():
        shutil.copyfile(ROOT / "notebooks" / "exercises" / name, folder / f"learner_{lesson}.ipynb")
        students[f"learner_{lesson}"] = lesson
    for lesson in ("02", "03"):
        shutil.copyfile(ROOT / "solutions" / lessons[lesson], folder / f"solution_{lesson}.ipynb")
        students[f"solution_{lesson}"] = lesson
    (folder / "broken.ipynb").write_text('{"cells": [{"source": ["# EXERCISE 07.2\\n"')
    students["broken"] = "07"
    sheet = tmp_path / "grades.csv"
    result = grade(folder, sheet, timeout_s=max(GRADING_TIMEOUTS_S[lesson] for lesson in lessons),
                   memory_mb=DEFAULT_MEMORY_MB)
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
