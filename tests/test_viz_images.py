"""The image plots of lesson 12: labels, overlays and bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import viz  # noqa: E402


def test_image_grid_draws_each_image_with_its_title_and_overlay():
    images = np.random.default_rng(0).random((5, 8, 8, 1))
    overlays = np.random.default_rng(1).random((5, 8, 8))
    figure = viz.image_grid(images, titles=list("abcde"), overlays=overlays, title="T",
                            columns=3)
    axes = figure.axes
    assert figure._suptitle.get_text() == "T"
    assert [ax.get_title() for ax in axes[:5]] == list("abcde")
    assert len(axes[0].images) == 2 and not axes[5].axison  # image + overlay; a blank slot
    assert axes[0].get_xlabel() == "pixel column" and axes[0].get_ylabel() == "pixel row"
    plt.close(figure)


@pytest.mark.parametrize("images, titles, overlays, message", [
    (np.ones((2, 8)), None, None, r"\(n, H, W\)"),
    (np.ones((2, 8, 8)), ["a"], None, "1 titles for 2 images"),
    (np.ones((2, 8, 8)), None, np.ones((2, 4, 4)), r"overlays.*\(2, 4, 4\)"),
])
def test_image_grid_rejects_mismatched_input(images, titles, overlays, message):
    with pytest.raises(ValueError, match=message):
        viz.image_grid(images, titles=titles, overlays=overlays)


def test_head_distances_puts_one_dot_per_head_and_block():
    ax = viz.head_distances(np.array([[1.0, 2.0, 3.0], [2.0, 2.5, 4.0]]), reference=3.3)
    assert len(ax.collections) == 3 and ax.get_xlabel() == "encoder block"
    assert [tuple(c.get_offsets()[:, 0]) for c in ax.collections] == [(1, 2)] * 3
    plt.close(ax.figure)
    with pytest.raises(ValueError, match=r"\(blocks, heads\)"):
        viz.head_distances(np.ones(3))
