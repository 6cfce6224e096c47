"""One submission's worker process: run the notebook in a fresh kernel, then call the learner's
functions on the grader's inputs. ``runner.py`` starts it as
``python -m course_lib.grading.worker``, with its job (JSON) on stdin, in the submission's own
temporary folder.

1. Every code cell of the learner's notebook runs, in the learner's order, and an error in one
   cell does not stop the next (as nbgrader does), so one broken exercise costs one exercise.
   Of what the cells display, only errors are kept: a notebook that prints hundreds of
   megabytes costs the time to send them, not the worker's memory.
2. Only then is the exchange folder created, at a random path that the learner's cells could
   not know while they ran; for each exercise the grader's inputs are written there, and a
   harness cell (``harness.py``) writes the learner's outputs next to them.
3. A report (which cells raised, whether and where the kernel died) goes to the job's report
   file, stamped with the job's nonce.

The worker judges nothing: the grader's process reads the outputs and compares them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from course_lib.checks import EXERCISES
from course_lib.checks.core import one_line
from course_lib.grading.exchange import save_cases
from course_lib.grading.harness import harness_source

KERNEL_START_TIMEOUT_S = 60


def _error_of(cell) -> str:
    """``"NameError: name 'x' is not defined"`` for a cell whose execution raised, else ``""``."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return one_line(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    return ""


class ErrorsOnlyClient(NotebookClient):
    """Runs cells like nbclient does, but keeps only their errors, the one output graded."""

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] != "error":
            return None
        return super().output(outs, msg, display_id, cell_index)


class Worker:
    """Runs one job and fills in its report."""

    def __init__(self, job: dict):
        self.job = job
        self.report = {"nonce": job["nonce"], "kernel_started": False, "kernel_died_in": "",
                       "cell_errors": {}, "harness_errors": {}, "worker_error": ""}
        self.running = ""  # where the kernel is, should it die there
        self.notebook = None
        self.client = None

    def run(self) -> None:
        self.notebook = nbformat.read(self.job["notebook"], as_version=4)
        # Unix sockets rather than TCP ports: kernels started at the same moment by parallel
        # workers cannot then race for the same free port, which fails a start now and then.
        kernel_manager = AsyncKernelManager(kernel_name="python3", transport="ipc",
                                            ip=self.job["kernel_sockets"])
        self.client = ErrorsOnlyClient(
            self.notebook, km=kernel_manager, timeout=None, allow_errors=True,
            record_timing=False, startup_timeout=KERNEL_START_TIMEOUT_S,
            shutdown_kernel="immediate",  # nothing of the kernel's state is worth a clean exit
            resources={"metadata": {"path": str(Path(self.job["notebook"]).parent)}})
        # The kernel's own stdout and stderr carry nothing the grader needs (cell outputs come
        # over Jupyter's channels); discarding them keeps a noisy notebook from filling the log.
        with self.client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            self.report["kernel_started"] = True
            try:
                self._run_learner_cells()
                self._run_harness()
            except DeadKernelError:
                self.report["kernel_died_in"] = self.running

    def _run_learner_cells(self) -> None:
        exercises_of_cell: dict[int, list[str]] = {}
        for exercise_id, spec in self.job["exercises"].items():
            for index in spec["cells"]:
                exercises_of_cell.setdefault(index, []).append(exercise_id)
        for index, cell in enumerate(self.notebook.cells):
            if cell.cell_type != "code":
                continue
            marked = exercises_of_cell.get(index, [])
            self.running = (f"in cell {index + 1}"
                            + (f" (exercise {', '.join(marked)})" if marked else ""))
            self.client.execute_cell(cell, index)
            for exercise_id in marked:
                self.report["cell_errors"][exercise_id] = _error_of(cell)

    def _run_harness(self) -> None:
        exchange = Path(self.job["exchange_dir"])
        exchange.mkdir()  # fails if the learner's code made it: then nothing here is trusted
        for exercise_id, spec in self.job["exercises"].items():
            inputs = exchange / f"inputs-{exercise_id}.npz"
            save_cases(inputs, EXERCISES[exercise_id].cases(self.job["seed"]))
            cell = nbformat.v4.new_code_cell(harness_source(
                exercise_id, spec["candidates"], inputs, exchange / f"{exercise_id}.npz"))
            self.notebook.cells.append(cell)  # nbclient executes cells of its notebook only
            self.running = f"while the grader ran exercise {exercise_id}"
            self.client.execute_cell(cell, len(self.notebook.cells) - 1, store_history=False)
            if _error_of(cell):
                self.report["harness_errors"][exercise_id] = _error_of(cell)

    def write_report(self) -> None:
        Path(self.job["report"]).write_text(json.dumps(self.report, sort_keys=True))


def main() -> int:
    job = json.loads(sys.stdin.read())
    worker = Worker(job)
    try:
        worker.run()
    except Exception as error:  # reported to the grader, which decides
        worker.report["worker_error"] = one_line(f"{type(error).__name__}: {error}")
        traceback.print_exc()
    finally:
        worker.write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
