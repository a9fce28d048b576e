"""Figures a report links to: kedro-datasets' ``matplotlib.MatplotlibDataset`` that also loads, as its file's path."""

from __future__ import annotations

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset


class FigureDataset(MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` whose ``load`` gives the path of the PNG it saved.

    A report node that shows a figure takes it as an input: Kedro writes the report after the
    figure, the report links the file the catalog wrote (``![title](<file name>)``), and kedro-viz
    draws the figure inside the pipeline that reports it. Saving and the kedro-viz preview (the
    PNG) are kedro-datasets' own.
    """

    def load(self) -> str:  # type: ignore[override] - the parent's load only raises
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(path):
            raise DatasetError(f"Figure '{path}' is not saved yet: run the node that draws it first.")
        return path
