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
    ax.barh(["overview_embedding_343", "occupation_administrator"], [1, -1])  # long labels: the axes sit right
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


def test_the_ridge_bar_chart_title_fits_the_figure_with_long_feature_names():
    """The movielens title beside tick labels like overview_embedding_343: centred over the axes, it ended at
    '...test ratin' in the saved PNG."""
    import pandas as pd

    from qeu_kedro.pipelines.ridge_analysis.nodes import plot_coefficients

    top = pd.DataFrame(
        {
            "feature": [f"overview_embedding_{i}" for i in range(300, 320)],
            "coefficient": [(-1) ** i * 0.1 for i in range(20)],
        }
    )
    metrics = {"alpha": 5.0, "r2_test": 0.16110, "n_test": 11694, "n_train": 46776}
    labels = {
        "namespace": "finetuned",
        "model": "all-MiniLM-L6-v2 fine-tuned on TMDB title → overview",
        "data": "MovieLens 100K ratings with TMDB 5000 overviews (movielens env)",
    }
    fig = plot_coefficients(top, metrics, labels)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [t for t in fig.texts if "ridge_analysis / finetuned" in t.get_text()] + [
        a.title for a in fig.axes if "ridge_analysis" in a.title.get_text()
    ]
    assert len(titles) == 1
    box = titles[0].get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    plt.close(fig)
