"""kedro-datasets' table and text datasets with previews a person can read in kedro-viz.

- :class:`CSVDataset` / :class:`ParquetDataset`: the first rows with floats rounded to ``digits``
  significant decimals (kedro-datasets' own preview shows all 16 and widens the table until its
  last column is cut off).
- :class:`MarkdownDataset`: a ``text.TextDataset`` whose preview is its markdown, which kedro-viz
  12.5 renders as HTML for a preview of type ``HTMLPreview`` (headings, bold, lists, tables).

Loading and saving are kedro-datasets' own; only ``preview`` changes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro_datasets._typing import HTMLPreview, TablePreview
from kedro_datasets.pandas import CSVDataset as _CSVDataset
from kedro_datasets.pandas import ParquetDataset as _ParquetDataset
from kedro_datasets.text import TextDataset as _TextDataset

DIGITS = 4


def rounded(table: pd.DataFrame, digits: int = DIGITS) -> dict[str, Any]:
    """``table`` in pandas' ``split`` orientation (what kedro-viz draws), floats rounded to ``digits`` decimals."""
    floats = table.select_dtypes("floating").columns
    shown = table.copy()
    shown[floats] = shown[floats].round(digits)
    # NaN is no JSON: an empty cell instead
    return shown.astype(object).where(shown.notna(), None).to_dict(orient="split")


class CSVDataset(_CSVDataset):
    """``pandas.CSVDataset`` whose kedro-viz preview rounds floats."""

    def preview(self, nrows: int = 5, digits: int = DIGITS) -> TablePreview:
        dataset = self._copy()
        dataset._load_args["nrows"] = nrows
        return TablePreview(rounded(dataset.load(), digits))


class ParquetDataset(_ParquetDataset):
    """``pandas.ParquetDataset`` whose kedro-viz preview rounds floats."""

    def preview(self, nrows: int = 5, digits: int = DIGITS) -> TablePreview:
        import pyarrow.parquet as pq

        table = pq.read_table(str(self._get_load_path()), columns=self._load_args.get("columns"))[:nrows]
        return TablePreview(rounded(table.to_pandas(), digits))


class MarkdownDataset(_TextDataset):
    """``text.TextDataset`` of a markdown report, previewed as rendered markdown in kedro-viz."""

    def preview(self) -> HTMLPreview:
        # kedro-viz's small markdown renderer reads _x_ as emphasis, which breaks names such as
        # alpaca_sft.metrics; an HTML entity shows the same character and is not markdown.
        return HTMLPreview(self.load().replace("_", "&#95;"))
