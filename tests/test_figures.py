"""qeu_kedro.figures: a figure's title fits its width, whatever the length of the data label."""

import matplotlib.pyplot as plt  # Agg: tests/conftest.py sets MPLBACKEND
import pytest

from qeu_kedro.figures import axes_title, suptitle

LONG = (
    "bge_finetune: all-MiniLM-L6-v2 fine-tuned on Debian package synopsis -> description, "
    "n = 600 test queries: NDCG@10 better at 5 of 5 dimensions"
)


def _extent(fig, title):
    fig.canvas.draw()
    return title.get_window_extent(fig.canvas.get_renderer())


@pytest.mark.parametrize("width", [4.0, 11.0])
def test_a_long_title_is_wrapped_inside_the_figure(width):
    fig = plt.figure(figsize=(width, 3))
    unwrapped = fig.suptitle(LONG, fontsize=11)
    assert _extent(fig, unwrapped).width > fig.bbox.width  # the case the helper exists for: cut off as it is
    title = suptitle(fig, LONG, fontsize=11)
    fig.tight_layout()
    box = _extent(fig, title)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert "\n" in title.get_text()
    assert title.get_text().split() == LONG.split()  # only line breaks added: every word kept, in order
    plt.close(fig)


def test_a_short_title_and_its_own_line_breaks_are_kept():
    fig = plt.figure(figsize=(11, 3))
    assert suptitle(fig, "ridge_analysis / base: test R²\nn = 10 ratings", fontsize=10).get_text() == (
        "ridge_analysis / base: test R²\nn = 10 ratings"
    )
    plt.close(fig)


def test_a_long_axes_title_is_wrapped_inside_the_saved_figure(tmp_path):
    """The ridge bar chart's title: 8.5 in wide, a long data label; before, its last characters were cut off."""
    fig, ax = plt.subplots(figsize=(8.5, 3))
    ax.barh(["a", "b"], [1, -1])
    long = LONG + " (alpha = 5; test R² = 0.4806 on 11,694 test ratings)"
    unwrapped = ax.set_title(long, fontsize=9.5)
    fig.tight_layout()
    assert _extent(fig, unwrapped).x1 > fig.bbox.width  # the case: cut off as it is
    title = axes_title(ax, long, fontsize=9.5)
    fig.tight_layout()
    box = _extent(fig, title)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert title.get_text().split() == long.split()
    plt.close(fig)
