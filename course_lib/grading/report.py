"""The grade sheet (CSV) and the summary table printed at the end of a run."""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from pathlib import Path

from course_lib.grading.scoring import STATUSES, Grade


def csv_header(exercise_ids: list[str]) -> list[str]:
    columns = ["student", "status", "total", "max_total"]
    for exercise_id in exercise_ids:
        columns += [f"{exercise_id}_score", f"{exercise_id}_reason"]
    return columns


def write_csv(path: Path, grades: list[Grade], exercise_ids: list[str], max_total: int) -> None:
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
            row = [grade.student, grade.status, grade.total, max_total]
            for exercise_id in exercise_ids:
                row += [grade.exercises[exercise_id].score, grade.exercises[exercise_id].reason]
            writer.writerow(row)
    os.replace(partial, path)


def summary(grades: list[Grade], exercise_ids: list[str], max_total: int, sandbox: str) -> str:
    """A table of scores per student and exercise, how many passed each, the statuses, and the
    sandbox the submissions ran in (``bubblewrap`` or ``none``)."""
    name_width = max([len("student"), len("passed by"), *(len(g.student) for g in grades)])
    status_width = max(len(status) for status in STATUSES)
    score_width = max(len(exercise_id) for exercise_id in exercise_ids)

    def line(name: str, status: str, cells: list[str], total: str) -> str:
        scores = "  ".join(cell.rjust(score_width) for cell in cells)
        return f"{name:<{name_width}}  {status:<{status_width}}  {scores}  {total:>7}".rstrip()

    ordered = sorted(grades, key=lambda grade: grade.student)
    lines = [line("student", "status", exercise_ids, "total"),
             line("-" * name_width, "-" * status_width, ["-" * score_width] * len(exercise_ids),
                  "-" * 7)]
    for grade in ordered:
        lines.append(line(grade.student, grade.status,
                          [str(grade.exercises[i].score) for i in exercise_ids],
                          f"{grade.total}/{max_total}"))
    passed = [str(sum(grade.exercises[i].score > 0 for grade in grades)) for i in exercise_ids]
    lines.append(line("passed by", "", passed, ""))
    counts = Counter(grade.status for grade in grades)
    statuses = ", ".join(f"{counts[status]} {status}" for status in STATUSES)
    mean = sum(grade.total for grade in grades) / len(grades) if grades else 0.0
    lines.append(f"\n{len(grades)} submissions: {statuses}; mean total {mean:.2f}/{max_total}.")
    lines.append(f"sandbox: {sandbox}")
    return "\n".join(lines)
