"""kedro-viz previews: rounded tables with chosen columns, markdown fit for kedro-viz's renderer."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.datasets.previews import CSVDataset, MarkdownDataset, ParquetDataset, for_kedro_viz, rounded


def test_rounded_table_keeps_the_chosen_columns_and_four_decimals():
    table = pd.DataFrame({"rank": [1, 2], "feature": ["a", "b"], "coefficient": [-0.559412345, np.nan]})
    table["f32"] = np.array([-0.0981, 0.5], dtype=np.float32)
    shown = rounded(table)
    assert shown["columns"] == ["rank", "feature", "coefficient", "f32"]
    assert shown["data"] == [[1, "a", -0.5594, -0.0981], [2, "b", None, 0.5]]
    assert rounded(table, columns=["rank", "coefficient"])["data"] == [[1, -0.5594], [2, None]]


def test_csv_and_parquet_previews_read_only_the_first_rows(tmp_path):
    table = pd.DataFrame({"x": np.arange(10) / 3, "y": list("abcdefghij")})
    csv = CSVDataset(filepath=str(tmp_path / "t.csv"))
    csv.save(table)
    assert csv.preview(nrows=2) == {"index": [0, 1], "columns": ["x", "y"], "data": [[0.0, "a"], [0.3333, "b"]]}
    parquet = ParquetDataset(filepath=str(tmp_path / "t.parquet"))
    parquet.save(table)
    assert parquet.preview(nrows=3, columns=["x"])["data"] == [[0.0], [0.3333], [0.6667]]


def test_markdown_preview_keeps_names_whole_and_tables_readable(tmp_path):
    report = MarkdownDataset(filepath=str(tmp_path / "report.md"))
    report.save("# alpaca_sft\n\n| measure | value |\n| --- | :---: |\n| chrF | 1.5 |\n")
    assert report.preview() == "# alpaca&#95;sft\n\n| measure | value |\n|---|:---:|\n| chrF | 1.5 |\n"
    assert report.load().startswith("# alpaca_sft")  # the file itself is unchanged
    assert for_kedro_viz("a | b") == "a | b"  # a bar in a sentence is no table rule


def test_markdown_preview_shows_the_figures_a_report_links_beside_it(tmp_path):
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qeu_kedro.datasets import FigureDataset

    figure = FigureDataset(filepath=str(tmp_path / "bar_chart.png"))
    fig, _ = plt.subplots(figsize=(2, 1))
    figure.save(fig)
    plt.close(fig)
    assert figure.load() == str(tmp_path / "bar_chart.png")  # a report links it by this path's name
    report = MarkdownDataset(filepath=str(tmp_path / "report.md"))
    report.save("# r\n\n![the bars](bar_chart.png)\n\n![gone](missing.png)\n\n![remote](https://example.org/x.png)\n")
    shown = report.preview()
    inlined = 'src="data:image/png;base64,' + base64.b64encode((tmp_path / "bar_chart.png").read_bytes()).decode()
    assert '<img alt="the bars" ' + inlined + '" style="max-width: 100%">' in shown
    assert "*(figure: `missing.png`)*" in shown and "*(figure: `https://example.org/x.png`)*" in shown
    assert for_kedro_viz("![big](bar_chart.png)", tmp_path, max_image_bytes=10) == "*(figure: `bar&#95;chart.png`)*"


def test_a_figure_not_saved_yet_cannot_be_loaded(tmp_path):
    from kedro.io.core import DatasetError

    from qeu_kedro.datasets import FigureDataset

    with pytest.raises(DatasetError, match="not saved yet: run the node that draws it first"):
        FigureDataset(filepath=str(tmp_path / "later.png")).load()
