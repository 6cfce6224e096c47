"""The grade sheet (CSV) and the summary table printed at the end of a run.

The sheet has one row per student and a fixed set of columns: ``student``, ``status``,
``lesson`` (the lessons the student was graded on, e.g. ``02``), ``total``, ``max_total``, then a
score and a reason column for every exercise of every lesson in the run. A student's cells for
the exercises of another lesson are empty, so a folder that mixes lessons gives one sheet in
which each row is scored out of its own lesson's exercises.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from pathlib import Path

from course_lib.grading.scoring import STATUSES, Grade


def csv_header(exercise_ids: list[str]) -> list[str]:
    columns = ["student", "status", "lesson", "total", "max_total"]
    for exercise_id in exercise_ids:
        columns += [f"{exercise_id}_score", f"{exercise_id}_reason"]
    return columns


def write_csv(path: Path, grades: list[Grade], exercise_ids: list[str]) -> None:
    """One row per student, sorted by name, in a fixed column order: the same grades always
    give the same bytes. Written to a new file next to ``path``, then renamed over it: whoever
    reads ``path`` finds the previous sheet or the whole new one, never half of one."""
    descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                           dir=path.resolve().parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(descriptor, 0o666 & ~umask)  # as ``open(path, "w")`` would have made it
    with open(descriptor, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(csv_header(exercise_ids))
        for grade in sorted(grades, key=lambda grade: grade.student):
            row = [grade.student, grade.status, " ".join(grade.lessons), grade.total,
                   grade.max_total]
            for exercise_id in exercise_ids:
                graded = grade.exercises.get(exercise_id)
                row += [graded.score, graded.reason] if graded else ["", ""]
            writer.writerow(row)
    os.replace(partial, path)


def summary(grades: list[Grade], exercise_ids: list[str], sandbox: str) -> str:
    """A table of scores per student and exercise (``-`` for another lesson's), how many passed
    each, the statuses, and the sandbox the submissions ran in (``bubblewrap`` or ``none``)."""
    name_width = max([len("student"), len("passed by"), *(len(g.student) for g in grades)])
    status_width = max(len(status) for status in STATUSES)
    score_width = max(len(exercise_id) for exercise_id in exercise_ids)

    def line(name: str, status: str, cells: list[str], total: str) -> str:
        scores = "  ".join(cell.rjust(score_width) for cell in cells)
        return f"{name:<{name_width}}  {status:<{status_width}}  {scores}  {total:>7}".rstrip()

    def cell(grade: Grade, exercise_id: str) -> str:
        graded = grade.exercises.get(exercise_id)
        return str(graded.score) if graded else "-"

    ordered = sorted(grades, key=lambda grade: grade.student)
    lines = [line("student", "status", exercise_ids, "total"),
             line("-" * name_width, "-" * status_width, ["-" * score_width] * len(exercise_ids),
                  "-" * 7)]
    for grade in ordered:
        lines.append(line(grade.student, grade.status,
                          [cell(grade, exercise_id) for exercise_id in exercise_ids],
                          f"{grade.total}/{grade.max_total}"))
    passed = [str(sum(grade.exercises[i].score > 0 for grade in grades if i in grade.exercises))
              for i in exercise_ids]
    lines.append(line("passed by", "", passed, ""))
    counts = Counter(grade.status for grade in grades)
    statuses = ", ".join(f"{counts[status]} {status}" for status in STATUSES)
    maxima = {grade.max_total for grade in grades}
    if len(maxima) == 1:
        maximum = maxima.pop()
        mean = sum(grade.total for grade in grades) / len(grades) if grades else 0.0
        average = f"mean total {mean:.2f}/{maximum}"
    else:
        points = sum(grade.max_total for grade in grades)
        share = sum(grade.total for grade in grades) / points if points else 0.0
        average = f"{share:.0%} of the points overall (each row out of its own lesson's)"
    lines.append(f"\n{len(grades)} submissions: {statuses}; {average}.")
    lines.append(f"sandbox: {sandbox}")
    return "\n".join(lines)
