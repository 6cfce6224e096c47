"""The instructor's grader: ``python -m course_lib.grading SUBMISSIONS... --csv grades.csv``.

How a submission is graded (one at a time per worker, ``--jobs`` in parallel):

1. ``submissions.py`` reads every notebook into memory before any student's code runs (corrupt →
   ``invalid_notebook``) and finds each exercise by its ``# EXERCISE NN.M`` marker or
   ``exercise-NN.M`` tag, wherever the cell was moved. No student's file is read again.
2. ``runner.py`` writes the notebook alone into a fresh scratch folder and starts a worker process
   there, in the sandbox of ``sandbox.py`` (bubblewrap: everything read-only but that folder, a
   private ``/tmp``, its own PID namespace, no network), watched for wall-clock time
   (→ ``timeout``), memory (→ ``memory``) and the number of processes (→ ``processes``).
3. ``worker.py`` runs every code cell in a fresh Jupyter kernel (a cell's error does not stop
   the next; a dead kernel → ``crashed``), then, for each exercise, writes the grader's inputs into
   a folder created only now and runs ``harness.py`` in the kernel, which calls the learner's
   function and writes its outputs back as plain arrays.
4. ``scoring.py``, in the grader's process, loads those arrays (no pickles, size-capped) and
   diagnoses them against the reference on the inputs it kept, with the learners' self-check
   diagnosis (``course_lib.checks``): fail closed, an exercise scores only when its outputs came
   back and match. Outputs that came back before a timeout, memory stop or crash still count.
5. ``report.py`` writes the CSV (sorted, fixed columns; written whole, then renamed into place)
   and prints a summary; ``installation.py`` checks that ``course_lib`` is the same after the
   batch as before.

What it defends against: anything a notebook does inside its own kernel (monkey-patching NumPy,
the checks or the harness, forging result files, exiting, hanging, exhausting memory) changes at
most the outputs its own functions return, which are judged on inputs the notebook never saw;
and, in the sandbox, nothing it does outside its kernel reaches the other students, the grader,
the installation or the network. Without bubblewrap the grader still grades, after a warning;
student code then runs as the instructor. The references in ``course_lib.checks`` are readable by
any learner who has the library.
"""

import sys

# nbformat validates with jsonschema, which imports rfc3987_syntax when it is installed (it is,
# under JupyterLab) and that module compiles a grammar for about 2 s at import. No notebook schema
# uses it (it checks IRIs), so the grader and each of its workers would pay that for nothing.
sys.modules.setdefault("rfc3987_syntax", None)
