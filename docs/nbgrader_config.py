"""nbgrader settings for a course made of this course's exercise notebooks (docs/grading.md, 7).

Copy this file into the root of your nbgrader course directory (beside `source/`), or merge its
lines into the `nbgrader_config.py` you have there.
"""

c = get_config()  # noqa: F821 (nbgrader defines it when it reads this file)

# The learner copies say `raise NotImplementedError`, without the "()" of nbgrader's default
# stub, so that `nbgrader generate_assignment` makes the same cells as `make exercises`.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError"}

# nbgrader's default is 30 s per cell; the checks of lessons 01 and 06 train a small model
# (about 30 s on 2 cores, longer on a busy machine).
c.Execute.timeout = 300
