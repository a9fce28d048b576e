"""Figures a report links to: kedro-datasets' ``matplotlib.MatplotlibDataset`` that also loads, as its file's path."""

from __future__ import annotations

from typing import Any

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset

from qeu_kedro.datasets._atomic import AtomicFileSave


class FigureDataset(AtomicFileSave, MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` whose ``load`` gives the path of the PNG it saved.

    A report node that shows a figure takes it as an input: Kedro writes the report after the
    figure, the report links the file the catalog wrote (``![title](<file name>)``), and kedro-viz
    draws the figure inside the pipeline that reports it. Saving and the kedro-viz preview (the
    PNG) are kedro-datasets' own, but one figure is written to a temporary file that then replaces
    the PNG (:class:`~qeu_kedro.datasets._atomic.AtomicFileSave`): a save that fails part-way leaves
    the previous PNG whole. A list or dict of figures (a folder of PNGs) is saved as before.
    """

    def _saves_one_file(self, data: Any) -> bool:
        return not isinstance(data, list | dict)

    def load(self) -> str:  # type: ignore[override] - the parent's load only raises
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(path):
            raise DatasetError(f"Figure '{path}' is not saved yet: run the node that draws it first.")
        return path
