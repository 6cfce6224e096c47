"""The set-up a learner relies on: pinned dependencies, conda file, README, CI, data licences."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["dev"]


def environment_pip_requirements():
    """The `- name==version` lines of environment.yml's pip section (no YAML parser needed)."""
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    return [match.group(1) for match in re.finditer(r"^\s+-\s+([A-Za-z0-9_.\-\[\]]+==\S+)\s*$",
                                                    pip_section, re.MULTILINE)]


def as_pins(requirements):
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def test_every_dependency_is_pinned_to_one_version():
    loose = [r for r in pyproject_requirements() if not re.fullmatch(r"[\w.\-\[\]]+==[\w.]+", r)]
    assert not loose, f"Pin these to an exact version in pyproject.toml: {loose}"


def test_environment_yml_and_pyproject_agree_on_every_package_and_version():
    in_pyproject = as_pins(pyproject_requirements())
    in_environment = as_pins(environment_pip_requirements())
    differences = {
        name: (in_pyproject.get(name, "missing"), in_environment.get(name, "missing"))
        for name in in_pyproject.keys() | in_environment.keys()
        if in_pyproject.get(name) != in_environment.get(name)
    }
    assert not differences, f"pyproject.toml vs environment.yml (package: (pyproject, conda)): " \
                            f"{differences}"


def test_environment_yml_uses_python_311_and_installs_the_project_with_dev_extra():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+-\s+python=3\.11\s*$", text, re.MULTILINE)
    assert '-e ".[dev]"' in text


def readme_commands():
    return re.findall(r"^(make \w+)\s", (ROOT / "README.md").read_text(), re.MULTILINE)


def test_ci_runs_exactly_the_readme_test_command():
    """CI installs system packages if it must (bubblewrap, for the grader's sandbox), then runs
    the README's test command, once, and nothing else."""
    assert "make test" in readme_commands()
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci_commands[-1] == "make test" and ci_commands.count("make test") == 1
    setup = re.compile(r"(if |fi$|then$|else$|echo |exit |apt-get |DEBIAN_FRONTEND=\S+ apt-get "
                       r"|bwrap --version$)")
    others = [command for command in ci_commands[:-1] if not setup.match(command)]
    assert not others, f".ci/run does more than install system packages: {others}"


def test_every_readme_make_command_is_a_makefile_target():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    missing = [c for c in readme_commands() if c.split()[1] not in targets]
    assert not missing, f"README commands with no Makefile target: {missing}"


def test_every_lesson_notebook_is_in_the_readme_lesson_table():
    readme = (ROOT / "README.md").read_text()
    table_rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\d\d) \| ([^|]+)\|", readme,
                                                                 re.MULTILINE)}
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        number = notebook.name[:2]
        assert number in table_rows, f"{notebook.name} has no row in the README lesson table"
        assert "planned" not in readme.split(f"| {number} |", 1)[1].split("\n", 1)[0], \
            f"{notebook.name} exists but the README still lists lesson {number} as planned"


def test_every_data_set_keeps_its_source_and_attribution():
    readme = (ROOT / "README.md").read_text()
    folders = [p for p in (ROOT / "datasets").iterdir() if p.is_dir()]
    assert folders, "datasets/ is empty"
    for folder in folders:
        source = folder / "SOURCE.md"
        assert source.is_file(), f"{folder.name} has no SOURCE.md"
        assert re.search(r"licen[cs]e", source.read_text(), re.IGNORECASE)
        assert f"datasets/{folder.name}/" in readme, f"README does not credit {folder.name}"


NOT_SHIPPED = {".git", ".venv", "__pycache__", "build"}


def repository_text_files():
    """Every text file the repository ships (data sets excepted): code, notebooks, docs."""
    skipped = NOT_SHIPPED | {"datasets", "weights"}
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if path.is_file() and not skipped & set(relative.parts) and path.suffix in {
                ".py", ".ipynb", ".md", ".toml", ".yml", ".cfg", ".txt", ""}:
            yield relative, path.read_text(encoding="utf-8", errors="replace")


WEB_ADDRESS = re.compile(r"\w+://\S+")
# A relative path that starts by going up a folder (`../docs/conventions.md`).
PARENT_PATH = re.compile(r"(?<![\w.:/])\.\./[\w./-]*[\w/-]")
# A markdown file named in a text, with or without its folder (`docs/grading.md`, `SOURCE.md`).
MARKDOWN_FILE = re.compile(r"(?<![\w./-])[\w./-]*\w\.md\b")
ELSEWHERE = ("a learner's or maintainer's copy holds only the repository: state the fact, or link "
             "a page in docs/")


def test_every_path_that_goes_up_a_folder_leads_to_a_file_of_the_repository():
    outside = [f"{relative}: {match.group(0)!r}" for relative, text in repository_text_files()
               for match in PARENT_PATH.finditer(WEB_ADDRESS.sub("", text))
               if not ((target := (ROOT / relative.parent / match.group(0)).resolve())
                       .is_relative_to(ROOT) and target.exists())]
    assert not outside, f"{ELSEWHERE}. Not in the repository: " + "; ".join(outside)


def test_every_markdown_file_named_is_in_the_repository():
    shipped = {path.name for path in ROOT.rglob("*.md")
               if not NOT_SHIPPED & set(path.relative_to(ROOT).parts)}
    named = [(relative, match.group(0)) for relative, text in repository_text_files()
             for match in MARKDOWN_FILE.finditer(WEB_ADDRESS.sub("", text))]
    missing = [f"{relative}: {name!r}" for relative, name in named
               if Path(name).name not in shipped]
    assert named and not missing, f"{ELSEWHERE}. Not in the repository: " + "; ".join(missing)


def test_every_docs_page_that_is_named_exists():
    named = {(relative, match.group(1)) for relative, text in repository_text_files()
             for match in re.finditer(r"\bdocs/([\w-]+\.md)", text)}
    missing = sorted(f"{relative} names docs/{page}" for relative, page in named
                     if not (ROOT / "docs" / page).is_file())
    assert named and not missing, missing


def test_the_library_names_every_one_of_its_modules():
    described = (ROOT / "course_lib" / "__init__.py").read_text()
    modules = [p.stem for p in (ROOT / "course_lib").glob("*.py") if p.stem != "__init__"]
    packages = [p.name for p in (ROOT / "course_lib").iterdir() if (p / "__init__.py").is_file()]
    unnamed = [name for name in modules + packages if f"``course_lib.{name}``" not in described]
    assert not unnamed, f"course_lib/__init__.py does not describe: {unnamed}"
