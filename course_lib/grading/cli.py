"""``python -m course_lib.grading SUBMISSIONS... --csv grades.csv``: grade a class.

Exit status: 0 when every submission was graded (whatever the students scored), 1 when the
grader itself failed on some submission (no kernel could be started), 2 for a usage error (or no
sandbox under ``--require-sandbox``), 3 when ``course_lib`` changed while the batch was graded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from course_lib.checks import EXERCISES
from course_lib.checks.core import Exercise
from course_lib.grading.installation import changes, fingerprint, package_folder
from course_lib.grading.report import summary, write_csv
from course_lib.grading.runner import Job, Limits, Run, run_all
from course_lib.grading.sandbox import INSTALL_HINT, Sandbox, choose_sandbox
from course_lib.grading.scoring import Grade, Grader
from course_lib.grading.submissions import (
    InvalidNotebookError,
    LessonError,
    Submission,
    assign_lessons,
    find_submissions,
    lessons_in_text,
    lessons_of,
    parse_notebook,
    raw_text,
    read_submission,
)

DEFAULT_SEED = 0


def _lesson_number(text: str) -> str:
    """``"2"`` or ``"02"`` → ``"02"``, as in exercise ids."""
    return f"{int(text):02d}"


def parse_arguments(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading",
        description="Grade exercise notebooks: one fresh kernel per submission, outputs compared "
                    "with the reference outside the student's process.")
    parser.add_argument("submissions", nargs="+", type=Path,
                        help="notebooks (student name = file name) or folders of notebooks")
    parser.add_argument("--csv", type=Path, default=Path("grades.csv"),
                        help="the grade sheet to write (default: grades.csv)")
    parser.add_argument("--timeout", type=float, default=Limits.timeout_s,
                        help="wall-clock seconds per submission (default: %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                        help="resident memory per submission, in MB (default: %(default)s)")
    parser.add_argument("--max-processes", type=int, default=Limits.max_processes,
                        help="processes per submission at once (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="submissions graded in parallel (default: %(default)s)")
    parser.add_argument("--require-sandbox", action="store_true",
                        help="refuse to grade when no sandbox (bubblewrap) can be had, instead "
                             "of grading without one after a warning")
    parser.add_argument("--lesson", action="append", default=None, type=_lesson_number,
                        help="grade every notebook on this lesson's exercises (e.g. 02; "
                             "repeatable); default: each notebook on the lesson of its own "
                             "exercise markers")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the grading inputs (default: %(default)s)")
    arguments = parser.parse_args(argv)
    if min(arguments.timeout, arguments.memory_mb, arguments.max_processes, arguments.jobs) <= 0:
        parser.error("--timeout, --memory-mb, --max-processes and --jobs must be positive")
    if arguments.seed < 0:
        parser.error("--seed must be zero or positive")
    return parser, arguments


def _exercise_order(exercise: Exercise) -> tuple[int, ...]:
    return tuple(int(part) for part in exercise.exercise_id.split("."))


def select_exercises(lessons: set[str]) -> list[Exercise]:
    """The registered exercises of ``lessons``, in numeric order (02.2 before 02.10)."""
    chosen = [exercise for exercise in EXERCISES.values() if exercise.lesson in lessons]
    return sorted(chosen, key=_exercise_order)


def _check_names(parser: argparse.ArgumentParser, submissions: list[Submission]) -> None:
    seen: dict[str, Path] = {}
    for submission in submissions:
        if submission.student in seen:
            parser.error(f"two submissions are named {submission.student!r}: "
                         f"{seen[submission.student]} and {submission.path}; rename one")
        seen[submission.student] = submission.path


def _no_sandbox_warning(sandbox: Sandbox) -> str:
    return (f"WARNING: no sandbox ({sandbox.why_none}). Each student's code runs as you, with your "
            f"files, processes and network in reach: it could change other students' grades or "
            f"your files. To sandbox each submission, {INSTALL_HINT}; --require-sandbox refuses "
            f"to grade without one.")


def _changed_installation_warning(folder: Path, changed: list[str]) -> str:
    return (f"WARNING: course_lib CHANGED while this batch was graded ({folder}): "
            f"{'; '.join(changed)}. A student's code may have edited it; the grades of the "
            f"submissions graded after the change are suspect, and so is every later run. "
            f"Restore the files (git checkout, or reinstall) and grade again.")


def main(argv: list[str] | None = None) -> int:
    parser, arguments = parse_arguments(argv)
    if not arguments.csv.resolve().parent.is_dir():
        parser.error(f"cannot write {arguments.csv}: its folder does not exist")
    missing = [str(path) for path in arguments.submissions if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    submissions = find_submissions(arguments.submissions)
    if not submissions:
        parser.error("no .ipynb submissions found")
    _check_names(parser, submissions)

    private = [*arguments.submissions, *(s.path for s in submissions),
               *(s.path.parent for s in submissions), arguments.csv]
    try:
        sandbox = choose_sandbox(private, arguments.memory_mb)
    except ValueError as error:
        parser.error(str(error))
    if not sandbox.isolated:
        if arguments.require_sandbox:
            parser.error(f"no sandbox ({sandbox.why_none}), and --require-sandbox is given: "
                         f"{INSTALL_HINT}")
        print(_no_sandbox_warning(sandbox), file=sys.stderr, flush=True)

    # Every submission is read here, once, before any student's code runs: what a student's code
    # does to the files later changes nothing.
    texts, notebooks, invalid = {}, {}, {}
    for submission in submissions:
        try:
            texts[submission.student] = read_submission(submission.path)
            notebooks[submission.student] = parse_notebook(texts[submission.student])
        except InvalidNotebookError as error:
            invalid[submission.student] = str(error)
    # Each notebook is graded on its own lesson, told by its exercise markers.
    found = {student: lessons_of(notebook) for student, notebook in notebooks.items()}
    found |= {submission.student: lessons_in_text(texts.get(submission.student)
                                                  or raw_text(submission.path))
              for submission in submissions if submission.student in invalid}
    try:
        lessons = assign_lessons(found, {e.lesson for e in EXERCISES.values()}, arguments.lesson,
                                 frozenset(invalid))
    except LessonError as error:
        parser.error(str(error))
    exercises = select_exercises(set().union(*lessons.values()))
    if not exercises:
        parser.error("no exercise of a known lesson found in the submissions; pass --lesson NN")

    limits = Limits(arguments.timeout, arguments.memory_mb, arguments.max_processes)
    grader = Grader(exercises, arguments.seed, limits, lessons)
    grades: list[Grade] = [grader.invalid(submission, invalid[submission.student])
                           for submission in submissions if submission.student in invalid]
    jobs = [grader.job_for(submission, texts[submission.student], notebooks[submission.student])
            for submission in submissions if submission.student in notebooks]
    grader_errors: list[str] = []
    started = time.monotonic()

    def on_finished(job: Job, run: Run) -> None:
        grade = grader.grade(job, run)
        grades.append(grade)
        if run.grader_error:
            grader_errors.append(f"{grade.student}: {run.grader_error}")
        print(f"[{len(grades)}/{len(submissions)}] {grade.student}: {grade.status}, "
              f"{grade.total}/{grade.max_total}", file=sys.stderr, flush=True)

    installation = package_folder()
    before = fingerprint(installation)
    run_all(jobs, limits, arguments.jobs, sandbox, on_finished)
    changed = changes(before, fingerprint(installation))
    exercise_ids = [exercise.exercise_id for exercise in exercises]
    write_csv(arguments.csv, grades, exercise_ids)
    print(summary(grades, exercise_ids,
                  sandbox.name if sandbox.isolated else f"none ({sandbox.why_none})"))
    print(f"course_lib: {'CHANGED' if changed else 'unchanged'} during grading "
          f"({len(before)} files checked).")
    print(f"Graded in {time.monotonic() - started:.0f} s; scores and reasons per exercise in "
          f"{arguments.csv}.")
    for error in grader_errors:
        print(f"grader error (not the student's fault), regrade this one: {error}",
              file=sys.stderr)
    if not sandbox.isolated:
        print(_no_sandbox_warning(sandbox), file=sys.stderr)
    if changed:
        print(_changed_installation_warning(installation, changed), file=sys.stderr)
        return 3
    return 1 if grader_errors else 0
