"""Running submissions: one worker process per submission, watched, limited, and cleaned up.

Each submission gets a temporary folder holding only a copy of its notebook, and a worker
(``worker.py``) in a new session, whose kernel starts its own session too. This process watches
the whole process tree: past the wall-clock limit, or past the memory limit (the resident memory
of the worker, the kernel and everything they started), every process in the tree is killed.
``RLIMIT_AS`` is not used: TensorFlow reserves far more virtual memory than it uses, so an
address-space limit would break later lessons' kernels.

When a submission ends, any process still carrying its token in its environment (say, a
background process the learner's code started) is killed as well, so nothing outlives its row.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

import course_lib
from course_lib.grading.submissions import Submission

POLL_INTERVAL_S = 0.05
TOKEN_VARIABLE = "COURSE_GRADER_TOKEN"


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    timeout_s: float = 120.0
    memory_mb: int = 2048


@dataclass(frozen=True)
class Job:
    """What the worker needs to grade one submission: the exercises to call (for each: ``cells``,
    its cells in the notebook; ``candidates``, the function names to look for; ``defined``, the
    functions its cell defines) and the seed of the inputs."""

    submission: Submission
    exercises: dict[str, dict]
    seed: int


@dataclass
class Run:
    """How running one submission ended.

    ``status`` is ``ok``, ``timeout``, ``memory`` or ``crashed``; ``report`` is the worker's
    report (empty when none came back); ``exchange_dir`` holds whatever outputs came back;
    ``grader_error`` is set when the failure was the grader's (no kernel could be started).
    """

    status: str
    report: dict = field(default_factory=dict)
    exchange_dir: Path | None = None
    detail: str = ""
    grader_error: str = ""


def kernel_environment(root: Path, token: str) -> dict[str, str]:
    """The environment of the worker and the kernel: design §6's variables, this repository on
    ``PYTHONPATH`` (so the kernel imports the grader's ``course_lib``), one BLAS thread (so two
    parallel submissions share two cores fairly and sums are reproducible), and private IPython
    and Jupyter folders (so the instructor's own profile and startup files play no part)."""
    environment = dict(os.environ)
    repository = str(Path(course_lib.__file__).resolve().parent.parent)
    environment.update({
        "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "IPYTHONDIR": str(root / "ipython"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "MPLCONFIGDIR": str(root / "matplotlib"), TOKEN_VARIABLE: token,
        "PYTHONPATH": os.pathsep.join(filter(None, [repository,
                                                    environment.get("PYTHONPATH", "")])),
    })
    return environment


class RunningSubmission:
    """One submission's worker, from start to cleanup."""

    def __init__(self, job: Job, limits: Limits):
        self.job = job
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="course-grader-"))
        self.token = secrets.token_hex(16)
        self.nonce = secrets.token_hex(16)
        # Random names, given to the worker on its stdin only: the learner's code cannot read
        # them from a command line or an environment variable.
        self.exchange_dir = self.root / f"exchange-{secrets.token_hex(16)}"
        self.report_path = self.root / f"report-{secrets.token_hex(16)}.json"
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.seen: dict[int, psutil.Process] = {}

    def start(self) -> None:
        work = self.root / "work"
        work.mkdir()
        (self.root / "sockets").mkdir()
        notebook = work / "submission.ipynb"
        shutil.copyfile(self.job.submission.path, notebook)
        job = {"notebook": str(notebook), "exchange_dir": str(self.exchange_dir),
               "kernel_sockets": str(self.root / "sockets" / "kernel"),
               "report": str(self.report_path), "nonce": self.nonce, "seed": self.job.seed,
               "exercises": self.job.exercises}
        with open(self.root / "worker.log", "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "course_lib.grading.worker"], stdin=subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, cwd=work,
                env=kernel_environment(self.root, self.token), start_new_session=True)
        self.started = time.monotonic()
        self.process.stdin.write(json.dumps(job).encode())
        self.process.stdin.close()

    def poll(self) -> Run | None:
        """The run's end if it has ended (or has just been stopped), else None."""
        if self.process.poll() is not None:
            self._kill_everything()
            return self._run_from_report()
        if time.monotonic() - self.started > self.limits.timeout_s:
            self._kill_everything()
            return Run("timeout", self._report(), self.exchange_dir)
        if self._resident_bytes() > self.limits.memory_mb * 2**20:
            self._kill_everything()
            return Run("memory", self._report(), self.exchange_dir)
        return None

    def close(self) -> None:
        """Stop whatever still runs and delete the submission's folder."""
        if self.process is not None and self.process.poll() is None:
            self._kill_everything()
        shutil.rmtree(self.root, ignore_errors=True)

    def _tree(self) -> list[psutil.Process]:
        try:
            worker = psutil.Process(self.process.pid)
            tree = [worker, *worker.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for process in tree:
            self.seen.setdefault(process.pid, process)
        return tree

    def _resident_bytes(self) -> int:
        total = 0
        for process in self._tree():
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass  # it ended between listing and measuring
        return total

    def _carrying_token(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["environ"]):
            environment = process.info.get("environ") or {}
            if environment.get(TOKEN_VARIABLE) == self.token and process.pid != os.getpid():
                found.append(process)
        return found

    def _kill_everything(self) -> None:
        victims = {process.pid: process
                   for process in [*self._tree(), *self.seen.values(), *self._carrying_token()]}
        for process in victims.values():
            try:
                process.kill()  # psutil checks that the pid was not reused meanwhile
            except psutil.Error:
                pass  # already gone
        psutil.wait_procs(list(victims.values()), timeout=5)
        self.process.wait()

    def _report(self) -> dict:
        """The worker's report if it wrote one for this run (its nonce matches), else ``{}``."""
        try:
            report = json.loads(self.report_path.read_text())
        except (OSError, ValueError):
            return {}
        return report if isinstance(report, dict) and report.get("nonce") == self.nonce else {}

    def _run_from_report(self) -> Run:
        report = self._report()
        if not report:
            return Run("crashed", report, self.exchange_dir,
                       detail=f"the grading process ended without a report "
                              f"(exit status {self.process.returncode})")
        if not report.get("kernel_started"):
            return Run("crashed", report, self.exchange_dir,
                       grader_error=str(report.get("worker_error") or "no kernel started"))
        if report.get("kernel_died_in"):
            return Run("crashed", report, self.exchange_dir,
                       detail=f"the kernel died {report['kernel_died_in']}")
        if report.get("worker_error"):
            return Run("crashed", report, self.exchange_dir,
                       detail=f"grading stopped: {report['worker_error']}")
        return Run("ok", report, self.exchange_dir)


def run_all(jobs: list[Job], limits: Limits, parallel: int,
            on_finished: Callable[[Job, Run], None]) -> None:
    """Run every job, ``parallel`` at a time; ``on_finished`` reads each run's outputs before
    its folder is deleted. Whatever happens (Ctrl-C included), no worker is left running."""
    pending, running = list(jobs), []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                submission = RunningSubmission(pending.pop(0), limits)
                running.append(submission)
                submission.start()
            for submission in list(running):
                run = submission.poll()
                if run is not None:
                    on_finished(submission.job, run)
                    submission.close()
                    running.remove(submission)
            time.sleep(POLL_INTERVAL_S)
    finally:
        for submission in running:
            submission.close()
