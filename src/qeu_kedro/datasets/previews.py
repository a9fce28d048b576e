"""kedro-datasets' table and text datasets with previews a person can read in kedro-viz.

- :class:`CSVDataset` / :class:`ParquetDataset`: the first rows with floats rounded to ``digits``
  decimals (kedro-datasets' own preview shows all 16 and widens the table until its last column is
  cut off), optionally only some ``columns``: kedro-viz's side panel shows about three columns whole.
  Both come from the catalog entry: ``metadata: kedro-viz: preview_args: {columns: [...]}``.
- :class:`MarkdownDataset`: a ``text.TextDataset`` whose preview is its markdown, which kedro-viz
  12.5 renders as HTML for a preview of type ``HTMLPreview`` (headings, bold, lists, tables); the
  figures a report links (``![title](figure.png)`` beside the report) are shown inline.

Loading is kedro-datasets' own; so is writing, into a temporary file that then replaces the file
(:class:`~qeu_kedro.datasets._atomic.AtomicFileSave`: a save that fails part-way leaves the previous
file whole).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import pandas as pd
from kedro_datasets._typing import HTMLPreview, TablePreview
from kedro_datasets.pandas import CSVDataset as _CSVDataset
from kedro_datasets.pandas import ParquetDataset as _ParquetDataset
from kedro_datasets.text import TextDataset as _TextDataset

from qeu_kedro.datasets._atomic import AtomicFileSave

DIGITS = 4
# A linked figure larger than this is named in the preview, not shown (the preview is part of the built site).
MAX_IMAGE_BYTES = 1_000_000


def rounded(table: pd.DataFrame, digits: int = DIGITS, columns: list[str] | None = None) -> dict[str, Any]:
    """``table`` (only ``columns``, if given) in pandas' ``split`` orientation (what kedro-viz draws),
    floats rounded to ``digits`` decimals."""
    shown = table[list(columns)].copy() if columns else table.copy()
    floats = shown.select_dtypes("floating").columns
    # float32 rounded stays float32, which JSON shows as -0.09809999912977219: round in float64
    shown[floats] = shown[floats].astype("float64").round(digits)
    # NaN is no JSON: an empty cell instead
    return shown.astype(object).where(shown.notna(), None).to_dict(orient="split")


class CSVDataset(AtomicFileSave, _CSVDataset):
    """``pandas.CSVDataset`` whose kedro-viz preview rounds floats; saved atomically."""

    def preview(self, nrows: int = 5, digits: int = DIGITS, columns: list[str] | None = None) -> TablePreview:
        dataset = self._copy()
        dataset._load_args["nrows"] = nrows
        return TablePreview(rounded(dataset.load(), digits, columns))


class ParquetDataset(AtomicFileSave, _ParquetDataset):
    """``pandas.ParquetDataset`` whose kedro-viz preview rounds floats; saved atomically."""

    def preview(self, nrows: int = 5, digits: int = DIGITS, columns: list[str] | None = None) -> TablePreview:
        import pyarrow.parquet as pq

        table = pq.read_table(str(self._get_load_path()), columns=columns or self._load_args.get("columns"))[:nrows]
        return TablePreview(rounded(table.to_pandas(), digits))


class MarkdownDataset(AtomicFileSave, _TextDataset):
    """``text.TextDataset`` of a markdown report, previewed as rendered markdown in kedro-viz; saved atomically."""

    def preview(self) -> HTMLPreview:
        return HTMLPreview(for_kedro_viz(self.load(), Path(str(self._get_load_path())).parent))


_TABLE_RULE = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+\s*$", re.M)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def for_kedro_viz(markdown: str, folder: Path | None = None, max_image_bytes: int = MAX_IMAGE_BYTES) -> str:
    """Markdown as kedro-viz 12.5's small renderer reads it: it reads ``_x_`` as emphasis, which breaks
    names such as ``alpaca_sft.metrics`` (an HTML entity shows the same character and is not markdown),
    and takes a table's rule row only without spaces (``|---|---|``, not ``| --- | --- |``).

    It has no images either: a PNG the report links relative to its ``folder`` becomes an ``<img>``
    holding the file (the built site cannot reach the project's files); any other link is named.
    """
    markdown = _TABLE_RULE.sub(lambda rule: re.sub(r"\s+", "", rule.group(0)), markdown)
    markdown = _IMAGE.sub(
        lambda image: _inline_image(image.group(1), image.group(2), folder, max_image_bytes), markdown
    )
    return markdown.replace("_", "&#95;")


def _inline_image(title: str, link: str, folder: Path | None, max_bytes: int) -> str:
    path = folder / link if folder is not None and "://" not in link and not link.startswith("/") else None
    if path is None or path.suffix.lower() != ".png" or not path.is_file() or path.stat().st_size > max_bytes:
        return f"*(figure: `{link}`)*"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}" style="max-width: 100%">'
