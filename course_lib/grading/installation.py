"""A fingerprint of the installed ``course_lib``, taken before and after a batch is graded.

The grader's references, inputs and harness come from ``course_lib``: a submission that edited
those files (possible without a sandbox) would change how every later submission is graded. The
fingerprint is the SHA-256 of every file under the package, ``__pycache__`` included (a planted
``.pyc`` runs like source); the kernels write no ``.pyc`` files, so a difference is a change that
someone made.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import course_lib


def package_folder() -> Path:
    return Path(course_lib.__file__).resolve().parent


def fingerprint(folder: Path) -> dict[str, str]:
    """``{path relative to folder: SHA-256 of its bytes}`` for every file under ``folder``."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs, one line per file: ``checks/core.py (modified)``, ``... (added)``,
    ``... (deleted)``, sorted by path."""
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            lines.append(f"{path} (deleted)")
        elif path not in before:
            lines.append(f"{path} (added)")
        elif before[path] != after[path]:
            lines.append(f"{path} (modified)")
    return lines
