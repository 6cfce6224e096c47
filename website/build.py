"""Build the course website into build/site/ (`make site`; tests/test_site.py runs it too).

The notebooks are read with their stored outputs, never executed. Every Sphinx warning (an image
that is missing, a link to no page or anchor) fails the build: `-W --keep-going` lists them all.
"""

import shutil
import sys
from pathlib import Path

from sphinx.cmd.build import build_main

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
DOCTREES = ROOT / "build" / "site-doctrees"
# MyST-NB writes the notebooks' images here first, beside the site (its location is fixed).
NOTEBOOK_IMAGES = ROOT / "build" / "jupyter_execute"


def build_site():
    """Build from scratch (a page whose notebook was removed must not linger); 0 on success."""
    for folder in (SITE, DOCTREES, NOTEBOOK_IMAGES):
        shutil.rmtree(folder, ignore_errors=True)
    return build_main(["-b", "html", "-W", "--keep-going", "-q", "-c", str(ROOT / "website"),
                       "-d", str(DOCTREES), str(ROOT), str(SITE)])


if __name__ == "__main__":
    status = build_site()
    if status == 0:
        print(f"Built {SITE / 'index.html'}")
    sys.exit(status)
