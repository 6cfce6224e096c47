# One command sets up and opens the course, one sets up and runs every test.
#   make lab      create .venv, install the course, open JupyterLab on notebooks/
#   make test     create .venv, install the course with its dev tools, run every test
# See README.md for the rest (lessons, exercises, grading, benchmarks).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The kernel of every notebook inherits these: quiet TensorFlow logs, stable hashing
# (docs/conventions.md, section 5).
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: setup lab test lessons notebooks exercises site lint benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), "Python 3.11-3.13 is needed, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Jupyter refuses to run as root unless told to; containers and cloud IDEs often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

# Every test: library and grader tests, every notebook re-executed with nbval (TensorFlow
# backend), then the backend-neutral layer tests again on JAX.
test: $(STAMP)
	$(BIN)/python -m pytest
	KERAS_BACKEND=jax $(BIN)/python -m pytest -m backends tests

# Execute every lesson headless and print seconds per notebook (the course's time budget).
lessons: $(STAMP)
	$(BIN)/python scripts/run_notebooks.py $(NOTEBOOKS)

# Re-execute notebooks in fresh kernels and store their outputs: run this before committing one,
# e.g. `make notebooks NOTEBOOKS=notebooks/03_bahdanau_attention.ipynb`.
NOTEBOOKS ?= notebooks/*.ipynb solutions/*.ipynb
notebooks: $(STAMP)
	$(BIN)/python scripts/run_notebooks.py --write $(NOTEBOOKS)

# Regenerate the learner exercise notebooks from solutions/, and the nbgrader metadata of both.
exercises: $(STAMP)
	$(BIN)/python -m course_lib.exercises solutions/*.ipynb --out notebooks/exercises

# The course website, from the notebooks' stored outputs (nothing is re-executed), into
# build/site/: open build/site/index.html. Any Sphinx warning (missing image, broken link) fails.
site: $(STAMP)
	$(BIN)/python website/build.py

lint: $(STAMP)
	$(BIN)/ruff check .

benchmark: $(STAMP)
	$(BIN)/python benchmarks/multi_head_attention_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
