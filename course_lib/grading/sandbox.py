"""The sandbox each submission's worker and kernel run in: bubblewrap (``bwrap``) on Linux.

Inside it, a student's code sees:

- the system (``/usr``, ``/etc``, ``/sys``, ``/bin``, ``/lib``...), the Python installation and
  the repository, all **read-only**, with the submissions and the grade sheet hidden when they lie
  in one of them; nothing else of the machine (no home folder, no ``/run``, no ``/var``);
- its own scratch folder, the only place it can write on disk;
- a private ``/tmp`` and ``/dev/shm`` (in memory, each capped at the memory limit, and counted in
  it by ``runner.py``) and a minimal ``/dev``;
- its own PID namespace: it cannot see or signal the grader, the other workers or anything else,
  and when the worker ends, the kernel kills everything left inside;
- no network (a loopback of its own), no capabilities, no new user namespaces, a new terminal
  session (no keystrokes pushed into the instructor's terminal); it dies with the grader.

The grader may run as root (containers, CI): root keeps its user id inside, so read-only mounts,
dropped capabilities and a read-only ``/proc/sys`` are what protect the machine, not file
permissions. ``COURSE_GRADER_SANDBOX=none`` in the environment turns the sandbox off (the tests
use it to test the fallback); ``choose_sandbox`` says why there is none when it cannot be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import course_lib

SANDBOX_VARIABLE = "COURSE_GRADER_SANDBOX"
BUBBLEWRAP = "bubblewrap"
NO_SANDBOX = "none"
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf "
                "install bubblewrap; Arch: pacman -S bubblewrap)")

SYSTEM_FOLDERS = ("/usr", "/etc", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Read-only in the sandbox. Where one is a symbolic link (``/bin -> usr/bin``), the same link is
made inside."""

PRIVATE_MEMORY_FOLDERS = ("/tmp", "/dev/shm")
"""In-memory folders of the sandbox's own, each capped at the memory limit."""

ISOLATION = ("--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
             "--die-with-parent", "--new-session")
"""New namespaces of every kind (user, PID, network, IPC, UTS, cgroup); no capabilities (root
inside a user namespace would otherwise keep them and could remount a read-only folder
writable); no nested user namespace to get them back."""

KERNEL_FILES = ("--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
                "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger")
"""A ``/proc`` of the sandbox's PID namespace. ``/proc/sys`` and ``/proc/sysrq-trigger`` act on the
whole machine and only check the user id, which is still 0 when the grader runs as root."""

PROBE = "import course_lib.grading.worker"
"""What the probe runs in a sandbox before grading: everything the worker needs imports."""
PROBE_TIMEOUT_S = 120

_READ, _HIDE, _PRIVATE, _WRITE = range(4)  # at the same path, a later kind wins


@dataclass(frozen=True)
class Sandbox:
    """How each submission's worker is started.

    ``name`` is ``"bubblewrap"`` or ``"none"`` (then ``why_none`` says why); ``readable`` are the
    folders the sandbox may read besides the system's, ``hidden`` the files and folders it must
    not see even inside those, ``memory_mb`` the size of each private in-memory folder.
    """

    name: str
    why_none: str = ""
    bwrap: str = ""
    readable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    memory_mb: int = 0

    @property
    def isolated(self) -> bool:
        return self.name != NO_SANDBOX

    def arguments(self, scratch: Path, workdir: Path) -> list[str]:
        """bubblewrap's options: a sandbox that may write ``scratch``, started in ``workdir``."""
        size = str(self.memory_mb * 2**20)
        mounts = [(Path(folder), _READ) for folder in SYSTEM_FOLDERS if os.path.lexists(folder)]
        mounts += [(path, _READ) for path in self.readable]
        mounts += [(path, _HIDE) for path in self.hidden]
        mounts += [(Path("/tmp"), _PRIVATE), (scratch, _WRITE)]
        return [*ISOLATION, *KERNEL_FILES,
                # A minimal /dev (null, zero, random, tty...), read-only but for its /dev/shm.
                "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                *_mount_arguments(mounts, size), "--chdir", str(workdir)]

    def start(self, command: list[str], scratch: Path, workdir: Path, env: dict[str, str],
              output) -> subprocess.Popen:
        """Start ``command`` in a new session, in the sandbox if there is one; its stdin is a
        pipe, its stdout and stderr go to ``output``."""
        if not self.isolated:
            return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output,
                                    stderr=subprocess.STDOUT, cwd=workdir, env=env,
                                    start_new_session=True)
        # The options travel through a file descriptor rather than the command line, which the
        # sandbox's own /proc shows: the paths of the hidden files are nobody's business there.
        with tempfile.TemporaryFile() as options:
            options.write(b"\0".join(a.encode() for a in self.arguments(scratch, workdir)) + b"\0")
            options.flush()
            options.seek(0)
            descriptor = options.fileno()
            return subprocess.Popen([self.bwrap, "--args", str(descriptor), *command],
                                    stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                    cwd=scratch, env=env, start_new_session=True,
                                    pass_fds=(descriptor,))

    def private_memory_bytes(self, tree: list) -> int:
        """The bytes held in the sandbox's private in-memory folders, seen through the processes
        of ``tree`` (outermost first: bubblewrap, its init, then the command, which starts only
        once the sandbox is built); 0 without a sandbox or before the command has started."""
        if not self.isolated or len(tree) < 3:
            return 0
        total = 0
        for folder in PRIVATE_MEMORY_FOLDERS:
            try:
                usage = os.statvfs(f"/proc/{tree[2].pid}/root{folder}")
            except OSError:
                continue  # the process ended meanwhile
            total += (usage.f_blocks - usage.f_bfree) * usage.f_frsize
        return total


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _mount_arguments(mounts: list[tuple[Path, int]], private_size: str) -> list[str]:
    """bubblewrap's mount options, applied from the shallowest path to the deepest, so that the
    most specific rule wins: a readable folder inside a hidden one is visible, a hidden file
    inside a readable folder is not. Rules that change nothing (hiding what nobody can see
    anyway, a readable folder inside another) are left out."""
    arguments: list[str] = []
    read_only_at_end: list[str] = []
    placed: list[tuple[Path, int]] = []
    for path, kind in sorted(set(mounts), key=lambda m: (len(m[0].parts), m[1], m[0])):
        enclosing = [mount for mount in placed if mount[0] != path and _is_under(path, mount[0])]
        innermost = max(enclosing, key=lambda mount: len(mount[0].parts))[1] if enclosing else None
        visible = innermost in (_READ, _WRITE)
        if kind == _READ and path.is_symlink() and not enclosing:
            arguments += ["--symlink", os.readlink(path), str(path)]
        elif kind == _READ and not visible:
            arguments += ["--ro-bind", str(path), str(path)]
        elif kind == _HIDE and visible and path.is_dir():
            # An empty folder, made read-only once everything inside it is mounted.
            arguments += ["--tmpfs", str(path)]
            read_only_at_end += ["--remount-ro", str(path)]
        elif kind == _HIDE and visible:
            arguments += ["--ro-bind", "/dev/null", str(path)]
        elif kind == _PRIVATE:
            arguments += ["--size", private_size, "--tmpfs", str(path)]
        elif kind == _WRITE:
            arguments += ["--bind", str(path), str(path)]
        else:
            continue
        placed.append((path, kind))
    return arguments + read_only_at_end + ["--remount-ro", "/"]


def repository() -> Path:
    """The folder holding the ``course_lib`` this grader runs: the kernels import it from there."""
    return Path(course_lib.__file__).resolve().parent.parent


def python_folders() -> set[Path]:
    """Where the grader's Python and the packages it imports live: the sandbox reads them."""
    folders = {Path(sys.prefix), Path(sys.exec_prefix), Path(sys.base_prefix),
               Path(sys.base_exec_prefix), Path(os.path.realpath(sys.executable)).parent}
    working_folder = Path.cwd().resolve()  # on sys.path under ``python -m``; not needed there
    for entry in sys.path:
        if entry and Path(entry).exists() and Path(entry).resolve() != working_folder:
            folders.add(Path(entry))
    return {folder.resolve() for folder in folders}


def choose_sandbox(hidden: list[Path], memory_mb: int) -> Sandbox:
    """bubblewrap if it is installed and works here, else ``Sandbox("none", why_none=...)``.

    ``hidden`` are the submissions (files and folders) and the grade sheet: hidden from the
    sandbox where they lie inside a folder it reads, except a folder holding one of those (the
    files inside it are then hidden one by one).

    Raises:
        ValueError: ``COURSE_GRADER_SANDBOX`` is set to something else than bubblewrap or none.
    """
    choice = os.environ.get(SANDBOX_VARIABLE, BUBBLEWRAP)
    if choice not in (BUBBLEWRAP, NO_SANDBOX):
        raise ValueError(f"{SANDBOX_VARIABLE} must be {BUBBLEWRAP!r} or {NO_SANDBOX!r}, "
                         f"not {choice!r}")
    if choice == NO_SANDBOX:
        return Sandbox(NO_SANDBOX, why_none=f"{SANDBOX_VARIABLE}={NO_SANDBOX} is set")
    if not sys.platform.startswith("linux"):
        return Sandbox(NO_SANDBOX, why_none=f"bubblewrap runs on Linux only, not on {sys.platform}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Sandbox(NO_SANDBOX, why_none="bubblewrap (bwrap) is not installed")
    readable = {repository(), *python_folders()}
    paths = {Path(path).resolve() for path in hidden if Path(path).exists()}
    sandbox = Sandbox(BUBBLEWRAP, bwrap=bwrap, readable=tuple(sorted(readable)),
                      hidden=tuple(sorted(path for path in paths if not any(
                          _is_under(folder, path) for folder in readable))),
                      memory_mb=memory_mb)
    problem = _probe(sandbox)
    if problem:
        return Sandbox(NO_SANDBOX, why_none=f"bubblewrap could not start a sandbox here: {problem}")
    return sandbox


def _probe(sandbox: Sandbox) -> str:
    """Start Python in the sandbox and import the worker; what went wrong, or ``""``."""
    scratch = Path(tempfile.mkdtemp(prefix="course-grader-probe-"))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(repository()), os.environ.get("PYTHONPATH", "")]))}
    try:
        process = sandbox.start([sys.executable, "-c", PROBE], scratch, scratch, environment,
                                subprocess.PIPE)
        try:
            output, _ = process.communicate(timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return f"Python did not start in it within {PROBE_TIMEOUT_S} s"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = output.decode(errors="replace").strip().splitlines()
    return "" if process.returncode == 0 else (lines[-1] if lines else
                                               f"exit status {process.returncode}")
