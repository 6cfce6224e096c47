"""Time to grade one class with and without the grader's sandbox, side by side.

    python benchmarks/grading_sandbox_overhead.py                 # 30 students, 2 rounds
    python benchmarks/grading_sandbox_overhead.py --rounds 3 --json overhead.json

The class is the grader tests' ordinary fixtures (``tests/fixtures/submissions/``; the endless
loop left out, since it only waits for the time limit, and the attacks left out, since without a
sandbox some of them succeed), plus copies of those that finish normally, up to ``--students``.
Each round grades it once without a sandbox (``COURSE_GRADER_SANDBOX=none``) and once in
bubblewrap, in alternating order, so that a change in the machine's load hits both alike.

Reported per mode: the median wall-clock seconds of the whole command (the probe that starts
Python once in a sandbox included), and the median CPU seconds (user + system) of the grader and
every process it started, sandbox included, sampled every 0.1 s from outside (what a process
spends after its last sample is missed, alike in both modes). On a machine shared with other
jobs the wall clock includes time spent waiting for a core and the CPU time does not: there the
CPU ratio is the one to trust, the wall ratio on an idle machine.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
LEFT_OUT = {"infinite_loop"}
COPIED = ["full_marks", "not_started", "alternative_solution", "subtly_wrong"]
MODES = ("none", "bubblewrap")
SAMPLE_INTERVAL_S = 0.1


def make_class(folder: Path, students: int) -> None:
    fixtures = sorted(path for path in FIXTURES.glob("*.ipynb") if path.stem not in LEFT_OUT)
    for path in fixtures[:students]:
        shutil.copyfile(path, folder / path.name)
    for number in range(students - min(students, len(fixtures))):
        shutil.copyfile(FIXTURES / f"{COPIED[number % len(COPIED)]}.ipynb",
                        folder / f"student_{number:02d}.ipynb")


def cpu_seconds(tree: list[psutil.Process]) -> dict[tuple[int, float], float]:
    """User + system seconds so far of each process, keyed by pid and start time."""
    seconds = {}
    for process in tree:
        try:
            with process.oneshot():
                times = process.cpu_times()
                seconds[process.pid, process.create_time()] = times.user + times.system
        except psutil.Error:
            pass  # it ended meanwhile
    return seconds


def grade(folder: Path, sheet: Path, mode: str, jobs: int,
          installation: Path) -> tuple[float, float]:
    """Wall-clock and sampled CPU seconds of one grading of ``folder`` by the ``course_lib`` in
    ``installation``."""
    environment = {**os.environ, "COURSE_GRADER_SANDBOX": mode, "TF_CPP_MIN_LOG_LEVEL": "3",
                   "PYTHONHASHSEED": "0", "PYTHONPATH": str(installation)}
    options = ["--jobs", str(jobs), "--timeout", "120", "--memory-mb", "600"]
    if mode != "none":
        options.append("--require-sandbox")
    start = time.perf_counter()
    grader = subprocess.Popen([sys.executable, "-m", "course_lib.grading", str(folder), "--csv",
                               str(sheet), *options], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=environment)
    watched = psutil.Process(grader.pid)
    last_seen: dict[tuple[int, float], float] = {}
    while grader.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
        except psutil.Error:
            tree = []
        last_seen.update(cpu_seconds(tree))
        time.sleep(SAMPLE_INTERVAL_S)
    wall = time.perf_counter() - start
    if grader.returncode != 0:
        raise SystemExit(f"grading ({mode}) failed with status {grader.returncode}:\n"
                         f"{grader.stderr.read()}")
    return wall, sum(last_seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()

    seconds: dict[str, dict[str, list[float]]] = {mode: {"wall": [], "cpu": []} for mode in MODES}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as temporary:
        folder, installation = Path(temporary) / "class", Path(temporary) / "installation"
        folder.mkdir()
        make_class(folder, arguments.students)
        # A copy, so that editing the repository meanwhile changes neither mode's grader.
        shutil.copytree(ROOT / "course_lib", installation / "course_lib",
                        ignore=shutil.ignore_patterns("__pycache__"))
        sheets = {}
        for round_number in range(arguments.rounds):
            for mode in MODES if round_number % 2 == 0 else MODES[::-1]:
                sheets[mode] = Path(temporary) / f"grades_{mode}.csv"
                wall, cpu = grade(folder, sheets[mode], mode, arguments.jobs, installation)
                seconds[mode]["wall"].append(wall)
                seconds[mode]["cpu"].append(cpu)
                print(f"round {round_number + 1}, {mode:<10}: {wall:6.1f} s wall, {cpu:6.1f} s "
                      f"CPU, load average {os.getloadavg()[0]:.1f}", flush=True)
        same_grades = sheets["none"].read_bytes() == sheets["bubblewrap"].read_bytes()
    medians = {mode: {kind: statistics.median(values) for kind, values in measured.items()}
               for mode, measured in seconds.items()}
    ratios = {kind: medians["bubblewrap"][kind] / medians["none"][kind] for kind in ("wall", "cpu")}

    print(f"\n{arguments.students} submissions, --jobs {arguments.jobs}, "
          f"median of {arguments.rounds} rounds:")
    print(f"{'sandbox':<12}{'wall s':>8}{'CPU s':>8}{'CPU s / student':>17}")
    for mode in MODES:
        wall, cpu = medians[mode]["wall"], medians[mode]["cpu"]
        print(f"{mode:<12}{wall:>8.1f}{cpu:>8.1f}{cpu / arguments.students:>17.2f}")
    print(f"bubblewrap / none: {ratios['wall']:.2f} (wall), {ratios['cpu']:.2f} (CPU); "
          f"same grade sheet: {same_grades}")
    print(f"load average before: {load_before[0]:.1f}, after: {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores)")

    if arguments.json:
        arguments.json.write_text(json.dumps({
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {"platform": platform.platform(), "cores": os.cpu_count(),
                        "load_average_before": load_before, "load_average_after": os.getloadavg()},
            "students": arguments.students, "jobs": arguments.jobs, "seconds": seconds,
            "medians": medians, "ratios": ratios, "same_grade_sheet": same_grades,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
