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
    """``ax.set_title(text)``, wrapped like :func:`suptitle` until it fits inside the figure.

    The title is centred over the axes, which long tick labels push off the figure's centre, so the
    room is twice the distance from the axes' centre to the nearer edge of the figure, measured after
    a first ``tight_layout``. Call ``fig.tight_layout()`` again afterwards.
    """
    fig = ax.figure
    title = ax.set_title(text, fontsize=fontsize)
    fig.tight_layout()
    box = ax.get_position()
    centre = (box.x0 + box.x1) / 2 * fig.bbox.width
    return _fit(fig, title, text, margin, room=2 * min(centre, fig.bbox.width - centre))


def _fit(fig: Any, title: Any, text: str, margin: float, room: float | None = None) -> Any:
    renderer = fig.canvas.get_renderer()
    room = fig.bbox.width if room is None else room
    lines = text.split("\n")
    width = max(len(line) for line in lines)
    while title.get_window_extent(renderer).width > margin * room and width > 10:
        width = int(width * 0.9)
        title.set_text("\n".join(textwrap.fill(line, width, break_long_words=False) for line in lines))
    return title
