"""Running submissions: one worker process per submission, sandboxed, watched, limited, cleaned up.

Each submission gets a scratch folder (inside one folder per batch) holding only its notebook,
written from the copy the grader read before any student code ran, and a worker (``worker.py``)
in a new session, in the sandbox of ``sandbox.py`` when there is one. This process watches the
whole process tree, which it sees from outside the sandbox's PID namespace: past the wall-clock
limit, the memory limit (the resident memory of the worker, the kernel and everything they
started, plus the files in the sandbox's private in-memory folders) or the process limit, every
process in the tree is killed. In a sandbox, killing its first process ends its PID namespace,
so the kernel kills whatever else runs inside, even what was started between two looks.

Why not ``setrlimit``: ``RLIMIT_AS`` would break TensorFlow, which reserves far more virtual memory
than it uses, and ``RLIMIT_NPROC`` counts every process of the user, machine-wide, and does not
apply to root at all, which is who runs the grader in a container or in CI.

When a submission ends, any process still carrying its token in its environment is killed as
well: without a sandbox, that is how a background process the learner's code started is found.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

from course_lib.grading.sandbox import Sandbox, repository
from course_lib.grading.submissions import Submission

POLL_INTERVAL_S = 0.05
KILL_ROUNDS = 10
TOKEN_VARIABLE = "COURSE_GRADER_TOKEN"


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    timeout_s: float = 120.0
    memory_mb: int = 2048
    max_processes: int = 100


@dataclass(frozen=True)
class Job:
    """What the worker needs to grade one submission: the notebook's text (as read before any
    student code ran), the exercises to call (for each: ``cells``, its cells in the notebook;
    ``candidates``, the function names to look for; ``defined``, the functions its cell defines)
    and the seed of the inputs."""

    submission: Submission
    notebook_text: str
    exercises: dict[str, dict]
    seed: int


@dataclass
class Run:
    """How running one submission ended.

    ``status`` is ``ok``, ``timeout``, ``memory``, ``processes`` or ``crashed``; ``report`` is
    the worker's report (empty when none came back); ``exchange_dir`` holds whatever outputs
    came back; ``grader_error`` is set when the failure was the grader's (no kernel could be
    started).
    """

    status: str
    report: dict = field(default_factory=dict)
    exchange_dir: Path | None = None
    detail: str = ""
    grader_error: str = ""


def kernel_environment(root: Path, token: str) -> dict[str, str]:
    """The environment of the worker and the kernel: quiet TensorFlow logs
    (``TF_CPP_MIN_LOG_LEVEL=3``) and stable hashing (``PYTHONHASHSEED=0``), as for the lessons;
    this repository on ``PYTHONPATH`` (so the kernel imports the grader's ``course_lib``); one
    BLAS thread (so two parallel submissions share two cores fairly and sums are reproducible);
    an empty home and private IPython and Jupyter folders (so the instructor's own profile,
    startup files and kernels play no part); and no ``.pyc`` files written, so that the
    grader's check of ``course_lib`` sees only changes someone meant to make."""
    environment = dict(os.environ)
    environment.update({
        "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "HOME": str(root / "home"), "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "MPLCONFIGDIR": str(root / "matplotlib"),
        "PYTHONDONTWRITEBYTECODE": "1", TOKEN_VARIABLE: token,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repository()),
                                                    environment.get("PYTHONPATH", "")])),
    })
    return environment


class RunningSubmission:
    """One submission's worker, from start to cleanup."""

    def __init__(self, job: Job, limits: Limits, sandbox: Sandbox, batch_folder: Path):
        self.job = job
        self.limits = limits
        self.sandbox = sandbox
        self.root = Path(tempfile.mkdtemp(prefix="submission-", dir=batch_folder))
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
        for folder in (work, self.root / "sockets", self.root / "home"):
            folder.mkdir()
        notebook = work / "submission.ipynb"
        notebook.write_text(self.job.notebook_text, encoding="utf-8")
        job = {"notebook": str(notebook), "exchange_dir": str(self.exchange_dir),
               "kernel_sockets": str(self.root / "sockets" / "kernel"),
               "report": str(self.report_path), "nonce": self.nonce, "seed": self.job.seed,
               "exercises": self.job.exercises}
        with open(self.root / "worker.log", "wb") as log:
            self.process = self.sandbox.start(
                [sys.executable, "-m", "course_lib.grading.worker"], self.root, work,
                kernel_environment(self.root, self.token), log)
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
        tree = self._tree()
        if self._memory_bytes(tree) > self.limits.memory_mb * 2**20:
            self._kill_everything()
            return Run("memory", self._report(), self.exchange_dir)
        if len(tree) > self.limits.max_processes:
            self._kill_everything()
            return Run("processes", self._report(), self.exchange_dir)
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

    def _memory_bytes(self, tree: list[psutil.Process]) -> int:
        """Resident memory of the tree, plus the files in the sandbox's in-memory folders."""
        total = self.sandbox.private_memory_bytes(tree)
        for process in tree:
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
        """Kill the tree, everything it was seen to hold, and what carries the token; again, as
        long as the tree still holds processes started meanwhile (a fork storm)."""
        victims = {process.pid: process for process in [*self._tree(), *self.seen.values(),
                                                         *self._carrying_token()]}
        for _ in range(KILL_ROUNDS):
            for process in victims.values():
                try:
                    process.kill()  # psutil checks that the pid was not reused meanwhile
                except psutil.Error:
                    pass  # already gone
            psutil.wait_procs(list(victims.values()), timeout=5)
            victims = {process.pid: process for process in self._tree()}
            if not victims:
                break
        self.process.wait()

    def _report(self) -> dict:
        """The worker's report if it wrote one for this run (its nonce matches), else ``{}``."""
        try:
            report = json.loads(self.report_path.read_text())
        except (OSError, ValueError):
            return {}
        return report if isinstance(report, dict) and report.get("nonce") == self.nonce else {}

    def _ending(self) -> str:
        """``was killed by SIGKILL`` or ``ended with exit status 1``. bubblewrap reports its
        command's death by signal N as exit status 128 + N."""
        status = self.process.returncode
        number = -status if status < 0 else status - 128 if self.sandbox.isolated else 0
        try:
            return f"was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"ended with exit status {status}"

    def _run_from_report(self) -> Run:
        report = self._report()
        if not report:
            return Run("crashed", report, self.exchange_dir,
                       detail=f"the grading process {self._ending()} before it wrote its report")
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


def run_all(jobs: list[Job], limits: Limits, parallel: int, sandbox: Sandbox,
            on_finished: Callable[[Job, Run], None]) -> None:
    """Run every job, ``parallel`` at a time, in ``sandbox``; ``on_finished`` reads each run's
    outputs before its folder is deleted. Whatever happens (Ctrl-C included), no worker is left
    running."""
    pending, running = list(jobs), []
    batch_folder = Path(tempfile.mkdtemp(prefix="course-grader-"))
    # Each sandbox writes its own scratch folder and sees none of the others'.
    sandbox = replace(sandbox, hidden=(*sandbox.hidden, batch_folder))
    try:
        while pending or running:
            while pending and len(running) < parallel:
                submission = RunningSubmission(pending.pop(0), limits, sandbox, batch_folder)
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
        shutil.rmtree(batch_folder, ignore_errors=True)
