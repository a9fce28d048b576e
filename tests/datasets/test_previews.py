"""kedro-viz previews: rounded tables with chosen columns, markdown fit for kedro-viz's renderer."""

import numpy as np
import pandas as pd

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
