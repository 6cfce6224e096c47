"""Sphinx configuration of the course website: `make site` builds it into build/site/.

Why Sphinx + MyST-NB: both are pure Python and pip-installable (no Node at build time), and
MyST-NB renders a notebook from its stored outputs (``nb_execution_mode = "off"``), so the site
shows exactly the outputs that CI re-executed and compared, without running a lesson again.

The source directory is the repository itself (website/ only holds the configuration), so a
page sits where its file does: notebooks/05_....html, docs/grading.html, and the links between
the README, docs/ and the notebooks work on the site as they do on the hosting site. The home
page is the README; its navigation lists whatever lessons, exercise notebooks and docs pages
exist (a glob), so a new lesson appears without editing this file.

Equations are typeset by MathJax 3, copied from an installed Python package
(django-static-mathjax: MathJax's own files, no dependencies) into the site, so a page needs no
network, neither to build nor to view.
"""

import re
import shutil
from pathlib import Path

import mathjax

ROOT = Path(__file__).resolve().parents[1]
MATHJAX_FILES = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"

project = "Attention, from the bottleneck to the Transformer"
author = "the course's authors"
copyright = "the course's authors, MIT licence"

extensions = ["myst_nb"]
root_doc = "README"
LESSONS = "notebooks/[0-9][0-9]_*"
EXERCISES = "notebooks/exercises/[0-9][0-9]_*"
include_patterns = ["README.md", "CONTRIBUTING.md", "docs/*.md", f"{LESSONS}.ipynb",
                    f"{EXERCISES}.ipynb"]
# Sphinx walks every folder it does not exclude, the virtual environment included.
exclude_patterns = [path.name for path in ROOT.iterdir()
                    if path.is_dir() and path.name not in {"notebooks", "docs"}]
exclude_patterns += ["**/.ipynb_checkpoints"]

nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "Attention, from the bottleneck to the Transformer"
html_show_sourcelink = False
html_copy_source = False
# Relative to the site's _static/ folder, where copy_mathjax_and_add_index puts them.
mathjax_path = "mathjax/tex-mml-chtml.js"

NAVIGATION = f"""

```{{toctree}}
:caption: Lessons
:glob:
:hidden:

{LESSONS}
```

```{{toctree}}
:caption: Exercises
:glob:
:hidden:

{EXERCISES}
```

```{{toctree}}
:caption: Docs
:glob:
:hidden:

docs/*
CONTRIBUTING
```
"""

LESSON_ROW = re.compile(r"^\| (\d\d) \| ([^|\[\]]+?) \|", re.MULTILINE)


def link_lessons_and_add_navigation(app, docname, source):
    """On the home page, each lesson's name in the README's table links to its page, and the
    navigation (the glob toctrees) is appended: the README itself stays plain Markdown."""
    if docname != root_doc:
        return

    def link(row):
        notebooks = sorted((ROOT / "notebooks").glob(f"{row.group(1)}_*.ipynb"))
        if not notebooks:
            return row.group(0)
        return f"| {row.group(1)} | [{row.group(2)}](notebooks/{notebooks[0].name}) |"

    source[0] = LESSON_ROW.sub(link, source[0]) + NAVIGATION


HOME_REDIRECT = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=README.html">
<title>Attention, from the bottleneck to the Transformer</title></head>
<body><p><a href="README.html">The course's home page</a></p></body>
</html>
"""


def copy_mathjax_and_add_index(app, exception):
    """MathJax into _static/mathjax/; index.html leads to the home page (the README's)."""
    if exception is None and app.builder.format == "html":
        outdir = Path(app.outdir)
        shutil.copytree(MATHJAX_FILES, outdir / "_static" / "mathjax", dirs_exist_ok=True)
        # MathJax is Apache-2.0: a copy of it travels with its licence.
        shutil.copy(MATHJAX_FILES.parent / "LICENSE", outdir / "_static" / "mathjax" / "LICENSE")
        (outdir / "index.html").write_text(HOME_REDIRECT, encoding="utf-8")


def setup(app):
    app.connect("source-read", link_lessons_and_add_navigation)
    app.connect("build-finished", copy_mathjax_and_add_index)
