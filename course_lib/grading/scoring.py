"""Scores and reasons, computed in the grader's own process from the outputs that came back.

Fail closed: an exercise scores only when its result file came back, is well formed, and its
outputs match the reference on the grader's inputs (kept here, in this process). Everything else
(no file, a corrupt file, a missing function, an exception) scores 0 with the reason why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_lib.checks.core import Case, Exercise, Outputs, diagnose
from course_lib.grading.exchange import UnreadableResultError, load_outcomes
from course_lib.grading.runner import Job, Limits, Run
from course_lib.grading.submissions import (
    Submission,
    candidate_names,
    exercise_cells,
    functions_defined,
)

STATUSES = ("ok", "timeout", "memory", "processes", "crashed", "invalid_notebook")


@dataclass(frozen=True)
class ExerciseGrade:
    score: int
    reason: str


@dataclass(frozen=True)
class Grade:
    """One row of the grade sheet: the exercises of the student's own lesson(s) only."""

    student: str
    status: str
    exercises: dict[str, ExerciseGrade]
    lessons: tuple[str, ...] = ()
    max_total: int = 0

    @property
    def total(self) -> int:
        return sum(grade.score for grade in self.exercises.values())


class Grader:
    """Grades each submission on the exercises of its own lessons, with inputs drawn from
    ``seed``.

    ``lessons`` maps each student to the lessons they are graded on
    (:func:`course_lib.grading.submissions.assign_lessons`); ``exercises`` holds the exercises of
    all those lessons.
    """

    def __init__(self, exercises: list[Exercise], seed: int, limits: Limits,
                 lessons: dict[str, tuple[str, ...]] | None = None):
        self.exercises = {exercise.exercise_id: exercise for exercise in exercises}
        self.lessons = lessons or {}
        self.seed = seed
        self.limits = limits
        self.cases: dict[str, list[Case]] = {
            exercise_id: exercise.cases(seed) for exercise_id, exercise in self.exercises.items()}
        self.references: dict[str, list[Outputs]] = {
            exercise_id: [exercise.reference_outputs(case) for case in self.cases[exercise_id]]
            for exercise_id, exercise in self.exercises.items()}

    def exercises_of(self, student: str) -> dict[str, Exercise]:
        """The exercises ``student`` is graded on: those of their lessons (all, when the grader
        was given no lessons per student)."""
        lessons = self.lessons.get(student)
        return {exercise_id: exercise for exercise_id, exercise in self.exercises.items()
                if lessons is None or exercise.lesson in lessons}

    def max_total_of(self, student: str) -> int:
        return sum(exercise.points for exercise in self.exercises_of(student).values())

    def job_for(self, submission: Submission, notebook_text: str, notebook) -> Job:
        """Locate each of the student's exercises in the notebook (``notebook_text``, parsed):
        its cells and the function names to call (for the worker), and the functions its cell
        defines (for the reasons)."""
        cells = exercise_cells(notebook)
        located = {}
        for exercise_id, exercise in self.exercises_of(submission.student).items():
            defined = functions_defined(notebook, cells.get(exercise_id, []))
            located[exercise_id] = {"cells": cells.get(exercise_id, []),
                                    "candidates": candidate_names(exercise, defined),
                                    "defined": defined}
        return Job(submission, notebook_text, located, self.seed)

    def _row(self, student: str, status: str, grades: dict[str, ExerciseGrade]) -> Grade:
        return Grade(student, status, grades, self.lessons.get(student, ()),
                     self.max_total_of(student))

    def invalid(self, submission: Submission, error: str) -> Grade:
        reason = f"invalid notebook: {error}"
        return self._row(submission.student, "invalid_notebook",
                         {exercise_id: ExerciseGrade(0, reason)
                          for exercise_id in self.exercises_of(submission.student)})

    def grade(self, job: Job, run: Run) -> Grade:
        """The grade of a finished run, from the outputs that came back."""
        grades = {exercise_id: self._grade_exercise(job, exercise_id, run)
                  for exercise_id in job.exercises}
        return self._row(job.submission.student, run.status, grades)

    def _grade_exercise(self, job: Job, exercise_id: str, run: Run) -> ExerciseGrade:
        exercise = self.exercises[exercise_id]
        result_path = run.exchange_dir / f"{exercise_id}.npz" if run.exchange_dir else None
        if result_path is None or not result_path.exists():
            return ExerciseGrade(0, self._no_result_reason(exercise_id, run))
        try:
            result = load_outcomes(Path(result_path), len(self.cases[exercise_id]))
        except UnreadableResultError as error:
            return ExerciseGrade(0, f"no usable result: the file that came back is unreadable "
                                    f"({error}).")
        if not result.function_name:
            return ExerciseGrade(0, self._missing_function_reason(
                exercise, job.exercises[exercise_id], run))
        verdict = diagnose(exercise, self.cases[exercise_id], result.outcomes,
                           self.references[exercise_id])
        reason = verdict.reason
        if result.function_name != exercise.function_name:
            reason = (f"{reason.rstrip('.')}; graded `{result.function_name}`, the function in "
                      f"the cell marked # EXERCISE {exercise_id}.")
        return ExerciseGrade(exercise.points if verdict.passed else 0, reason)

    def _no_result_reason(self, exercise_id: str, run: Run) -> str:
        if run.status == "timeout":
            why = f"the notebook was stopped at the time limit ({self.limits.timeout_s:g} s)"
        elif run.status == "memory":
            why = (f"the notebook was stopped for using more than {self.limits.memory_mb} MB "
                   f"of memory")
        elif run.status == "processes":
            why = (f"the notebook was stopped for running more than "
                   f"{self.limits.max_processes} processes at once")
        elif run.status == "crashed":
            why = run.detail or f"the grader failed ({run.grader_error})"
        else:
            harness_error = run.report.get("harness_errors", {}).get(exercise_id)
            why = (f"the grader could not call your function ({harness_error})" if harness_error
                   else "the call of your function wrote no result")
        return f"no result came back: {why}."

    @staticmethod
    def _missing_function_reason(exercise: Exercise, located: dict, run: Run) -> str:
        name, marker = exercise.function_name, f"# EXERCISE {exercise.exercise_id}"
        if not located["cells"]:
            return (f"exercise not found: no cell is marked `{marker}` and no function `{name}` "
                    f"is defined (was the exercise cell deleted?).")
        cell_error = run.report.get("cell_errors", {}).get(exercise.exercise_id)
        if cell_error:
            return f"`{name}` is not defined: its cell (`{marker}`) raised {cell_error}."
        if len(located["defined"]) > 1:
            return (f"`{name}` is not defined: the cell marked `{marker}` defines "
                    f"{', '.join(located['defined'])}; keep the name `{name}`.")
        return f"`{name}` is not defined after running the notebook."
