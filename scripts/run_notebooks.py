"""Execute notebooks headless, each in a fresh kernel, and print seconds per notebook.

    python scripts/run_notebooks.py notebooks/*.ipynb             # time them (files untouched)
    python scripts/run_notebooks.py --write notebooks/01_*.ipynb  # store the new outputs

``--write`` is how a lesson is committed: executed top to bottom in a fresh kernel, so the stored
outputs are exactly what a learner gets. The kernel runs in the notebook's folder, as in
JupyterLab, with the project's environment (TF_CPP_MIN_LOG_LEVEL=3, PYTHONHASHSEED=0).
Exits non-zero when a notebook fails or exceeds ``--budget`` seconds.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")


def execute(path, write, timeout):
    """Run one notebook; return (seconds, error message or None)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
        # Keep C++ log lines written straight to the process's stderr out of the stored
        # outputs, and give each kernel no shared history database to lock.
        extra_arguments=["--IPKernelApp.capture_fd_output=False",
                         "--HistoryManager.enabled=False"],
    )
    start = time.perf_counter()
    try:
        client.execute()
        error = None
    except CellExecutionError as exc:
        error = str(exc).strip().splitlines()[-1]
    seconds = time.perf_counter() - start
    if write and error is None:
        nbformat.write(notebook, path)
    return seconds, error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="store the outputs in the files")
    parser.add_argument("--budget", type=float, default=180.0,
                        help="seconds allowed per notebook (the course's budget: 3 minutes)")
    parser.add_argument("--total-budget", type=float, default=1200.0,
                        help="seconds allowed for all of them (the course's budget: 20 minutes)")
    args = parser.parse_args(argv)
    rows, failed = [], False
    for path in args.notebooks:
        if not path.is_file():
            parser.error(f"no notebook at {path}")
        seconds, error = execute(path, args.write, timeout=max(args.budget, 600))
        status = "ok" if error is None else f"FAILED: {error}"
        if error is None and seconds > args.budget:
            status = f"over budget ({args.budget:.0f} s)"
        failed |= status != "ok"
        rows.append((str(path), seconds, status))
        print(f"{path}: {seconds:.1f} s {status}", file=sys.stderr, flush=True)
    total = sum(seconds for _, seconds, _ in rows)
    width = max(len(name) for name, _, _ in rows + [("notebook", 0, "")])
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status")
    for name, seconds, status in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {status}")
    if failed:
        total_status = "FAILED: see the notebooks above"
    elif total > args.total_budget:
        total_status = f"over budget ({args.total_budget:.0f} s)"
    else:
        total_status = "ok"
    print(f"{'total':<{width}}  {total:8.1f}  {total_status}")
    return 1 if failed or total > args.total_budget else 0


if __name__ == "__main__":
    sys.exit(main())
