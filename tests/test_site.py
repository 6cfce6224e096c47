"""The course website (`make site`) as a learner sees it: built, then opened in a real browser.

The site is built once per session from the stored notebook outputs (website/build.py, where any
Sphinx warning fails). Headless Chromium then opens every page from disk, as a learner who opens
build/site/index.html does, and checks what a person would notice: an error in the console, a
figure that does not show, an equation left as TeX, a link to nothing. No page may fetch
anything from the network: MathJax comes from the site itself.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.wait import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
ARTIFACTS = ROOT / "build" / "site-artifacts"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
# Equations whose TeX was not typeset: what a reader would see if MathJax failed or the
# markdown's $...$ / $$...$$ were not parsed as math.
RAW_TEX = re.compile(r"\$\$|\$[^$\s][^$]*\\[A-Za-z]+[^$]*\$|\\frac|\\sqrt|\\begin\{|\\\(|\\\[")


@pytest.fixture(scope="session")
def site():
    """Built from scratch, so the test sees what `make site` gives for the files as they are."""
    built = subprocess.run([sys.executable, str(ROOT / "website" / "build.py")], cwd=ROOT,
                           capture_output=True, text=True)
    assert built.returncode == 0, f"the site build failed:\n{built.stdout}\n{built.stderr}"
    return SITE


def pages(site):
    return sorted(site.rglob("*.html"))


def lesson_and_exercise_notebooks():
    return [*sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")),
            *sorted((ROOT / "notebooks" / "exercises").glob("[0-9][0-9]_*.ipynb"))]


def test_every_lesson_exercise_notebook_and_docs_page_has_a_page(site):
    expected = {"index.html", "README.html", "CONTRIBUTING.html"}
    expected |= {p.relative_to(ROOT).with_suffix(".html").as_posix()
                 for p in lesson_and_exercise_notebooks()}
    expected |= {f"docs/{p.stem}.html" for p in (ROOT / "docs").glob("*.md")}
    built = {page.relative_to(site).as_posix() for page in pages(site)}
    assert expected <= built, f"no page for {sorted(expected - built)}"


def test_the_home_page_links_every_lesson_from_the_readme_table(site):
    tables = "".join(re.findall(r"<table.*?</table>", (site / "README.html").read_text(), re.S))
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f'href="notebooks/{notebook.stem}.html"' in tables, notebook.name


def test_mathjax_is_served_by_the_site_itself(site):
    lesson = site / "notebooks" / "05_scaled_dot_product_and_masks.html"
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', lesson.read_text(),
                         re.IGNORECASE)
    assert len(scripts) == 1, scripts
    served = (lesson.parent / scripts[0]).resolve()
    assert served == (site / "_static" / "mathjax" / "tex-mml-chtml.js").resolve(), scripts
    assert (site / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert "Apache License" in (site / "_static" / "mathjax" / "LICENSE").read_text()
    assert (site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


@pytest.fixture(scope="session")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        message = f"the site's browser test needs Chromium and its driver: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    # Both paths are given, so Selenium Manager never looks for (or downloads) a browser.
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


_anchors_by_page = {}


def anchors(page):
    if page not in _anchors_by_page:
        parser = _Anchors()
        parser.feed(page.read_text(encoding="utf-8"))
        _anchors_by_page[page] = parser.ids
    return _anchors_by_page[page]


def wait_for_mathjax(driver):
    """'none' on a page without equations, 'typeset' once MathJax has finished, or its error."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
            done('none');
        } else {
            MathJax.startup.promise.then(() => done('typeset'), error => done(String(error)));
        }
    """)


PAGE_STATE = """
    const prose = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const parent = walker.currentNode.parentElement;
        if (!parent.closest('pre, code, script, style, mjx-container') && parent.offsetParent)
            prose.push(walker.currentNode.nodeValue);
    }
    const math = [...document.querySelectorAll('.math')];
    return {
        prose: prose.join(' '),
        broken_images: [...document.images]
            .filter(image => !(image.complete && image.naturalWidth > 0))
            .map(image => image.getAttribute('src')),
        output_images: document.querySelectorAll('.cell_output img').length,
        untypeset_math: math.filter(element => !element.querySelector('mjx-container'))
            .map(element => element.textContent.slice(0, 80)),
        typeset_math: document.querySelectorAll('mjx-container').length,
        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
        resources: [...document.querySelectorAll('script[src], link[href], img[src]')]
            .map(element => element.src || element.href),
    };
"""


def local_target(url):
    """The file and anchor a URL of a page points to, or None for one outside the site."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    target = Path(unquote(parts.path))
    return (target, unquote(parts.fragment)) if target.is_relative_to(SITE) else None


def problems_on(driver, page):
    driver.get(page.as_uri())
    mathjax = wait_for_mathjax(driver)
    state = driver.execute_script(PAGE_STATE)
    problems = [f"console: {entry['message']}" for entry in driver.get_log("browser")
                if entry["level"] == "SEVERE"]
    if mathjax not in ("none", "typeset"):
        problems.append(f"MathJax failed: {mathjax}")
    problems += [f"image not shown: {src}" for src in state["broken_images"]]
    problems += [f"equation not typeset: {tex!r}" for tex in state["untypeset_math"]]
    problems += [f"raw TeX in the text: {match.group(0)!r}"
                 for match in RAW_TEX.finditer(state["prose"])]
    for url in state["resources"]:
        if urlsplit(url).scheme not in ("file", "data"):
            problems.append(f"fetched from the network: {url}")
        elif (target := local_target(url)) and not target[0].is_file():
            problems.append(f"missing file: {url}")
    for url in state["links"]:
        target = local_target(url)
        if target is None:
            continue
        path, anchor = target
        if not path.is_file():
            problems.append(f"link to no file: {url}")
        elif anchor and path.suffix == ".html" and anchor not in anchors(path):
            problems.append(f"link to no anchor: {url}")
    return problems, state


def stored_figures_and_math(notebook):
    """How many PNG figures a notebook's stored outputs hold; whether its markdown has math."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    figures = sum("image/png" in output.get("data", {})
                  for cell in cells for output in cell.get("outputs", []))
    math = any("$" in "".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    return figures, math


def test_index_html_leads_to_the_home_page(site, browser):
    browser.get((site / "index.html").as_uri())
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url.endswith("/README.html"))
    assert browser.find_element("css selector", "h1").text.startswith("Attention, from")


def test_every_page_loads_cleanly_with_its_figures_equations_and_links(site, browser):
    problems, shown = {}, {}
    for page in pages(site):
        if page.name == "index.html":  # it only redirects (above)
            continue
        found, state = problems_on(browser, page)
        name = page.relative_to(site).as_posix()
        if found:
            problems[name] = found
        shown[name] = state
    assert not problems, "\n".join(f"{page}: {p}" for page, found in problems.items()
                                   for p in found)
    for notebook in lesson_and_exercise_notebooks():
        state = shown[notebook.relative_to(ROOT).with_suffix(".html").as_posix()]
        figures, math = stored_figures_and_math(notebook)
        assert state["output_images"] == figures, \
            f"{notebook.name}: {figures} figures stored, {state['output_images']} on its page"
        assert state["typeset_math"] > 0 or not math, f"{notebook.name}: no equation typeset"


def test_a_lesson_page_shows_a_display_equation_and_a_figure(site, browser):
    """What a reader sees on lesson 05: build/site-artifacts/lesson_05.png (its top) and
    lesson_05_figure.png (its first figure)."""
    browser.get((site / "notebooks" / "05_scaled_dot_product_and_masks.html").as_uri())
    assert wait_for_mathjax(browser) == "typeset"
    display = browser.find_elements("css selector", "mjx-container[display='true']")
    assert display and display[0].size["height"] > 20 and display[0].size["width"] > 100
    figure = browser.find_element("css selector", ".cell_output img")
    assert browser.execute_script("return arguments[0].naturalWidth", figure) > 100
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "lesson_05.png"))
    # Instant: the theme scrolls smoothly, and the screenshot would catch the page on its way.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})",
                           figure)
    assert browser.save_screenshot(str(ARTIFACTS / "lesson_05_figure.png"))
