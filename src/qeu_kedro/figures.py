"""Figure helpers shared by the pipelines' plotting nodes."""

from __future__ import annotations

import textwrap
from typing import Any


def suptitle(fig: Any, text: str, fontsize: float = 11, margin: float = 0.98) -> Any:
    """``fig.suptitle(text)``, wrapped at word boundaries until it fits the figure's width.

    A title names the pipeline, model, data and n, so with a long data label it outgrows the figure and
    the saved PNG cuts it off at both ends. The text is measured with the figure's own renderer; each
    line (existing line breaks are kept) is wrapped to fewer characters until the title is at most
    ``margin`` of the figure's width. Call it before ``fig.tight_layout()``, which then makes room.
    """
    return _fit(fig, fig.suptitle(text, fontsize=fontsize), text, margin)


def axes_title(ax: Any, text: str, fontsize: float = 11, margin: float = 0.98) -> Any:
    """``ax.set_title(text)``, wrapped like :func:`suptitle` until it fits the width of the figure.

    Measured against the whole figure, not the axes: ``tight_layout`` centres the title over the axes
    and the saved PNG keeps what fits the figure. Call it before ``fig.tight_layout()``.
    """
    return _fit(ax.figure, ax.set_title(text, fontsize=fontsize), text, margin)


def _fit(fig: Any, title: Any, text: str, margin: float) -> Any:
    renderer = fig.canvas.get_renderer()
    lines = text.split("\n")
    width = max(len(line) for line in lines)
    while title.get_window_extent(renderer).width > margin * fig.bbox.width and width > 10:
        width = int(width * 0.9)
        title.set_text("\n".join(textwrap.fill(line, width, break_long_words=False) for line in lines))
    return title
