"""The sheet: Excel -> checked -> rules -> JSON as the original wrote it, and bad sheets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog

from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca, to_records
from qeu_kedro.sample_data.alpaca import COLUMNS, write_alpaca
from qeu_kedro.validation import RawDataError

from .conftest import REPO


def _catalog(tmp_path: Path) -> DataCatalog:
    """The pipeline's own entries for the sheet and the records, pointed at tmp_path."""
    config = yaml.safe_load((REPO / "conf" / "base" / "catalog_alpaca_sft.yml").read_text(encoding="utf-8"))
    raw = dict(config["alpaca_raw"], filepath=str(tmp_path / "alpaca_sample.xlsx"))
    records = dict(config["alpaca_sft.records"], filepath=str(tmp_path / "alpaca_records.json"))
    return DataCatalog.from_config({"alpaca_raw": raw, "alpaca_sft.records": records})


def test_excel_to_json_round_trip(tmp_path, params):
    write_alpaca(tmp_path)
    catalog = _catalog(tmp_path)
    raw = catalog.load("alpaca_raw")
    assert list(raw.columns) == COLUMNS and len(raw) == 90
    records = to_records(
        apply_reasoning_rules(check_alpaca(raw, params["schema"], params["category_rules"]), params["reasoning_rules"])
    )
    catalog.save("alpaca_sft.records", records)

    text = (tmp_path / "alpaca_records.json").read_text(encoding="utf-8")
    # As the original: UTF-8 kept (no \u escapes), keys sorted, indent 4.
    assert "日本の首都は東京です。" in text and "\\u" not in text
    assert text == json.dumps(records, ensure_ascii=False, sort_keys=True, indent=4)
    assert text.splitlines()[2].startswith(" " * 8 + '"NO": 1')
    assert catalog.load("alpaca_sft.records") == records
    first = records[0]
    assert sorted(first) == sorted(COLUMNS)
    assert isinstance(first["NO"], int) and isinstance(first["seq"], int)
    # Empty cells come back as "", not NaN (which is not JSON).
    assert records[1]["input"] == "" and "NaN" not in text


def _write(tmp_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    path = tmp_path / "alpaca_sample.xlsx"
    frame.to_excel(path, index=False)
    return _catalog(tmp_path).load("alpaca_raw")


# ("#N/A" is left out: written to a cell it is Excel's error value, which pandas reads as missing either way)
NA_LIKE = ["NA", "None", "null", "N/A", "nan", "NaN", "NULL", "n/a"]


def test_cells_that_read_like_na_are_text_only_empty_cells_are_missing(tmp_path, sheet, params):
    """pandas' default NA strings would read a cell "NA" (a country code, sodium) as missing: the input
    became "" and the reference answer "None" was rejected as blank. Only an empty cell is missing."""
    rows = list(range(2, 2 + len(NA_LIKE)))
    for column in ("input", "output", "instruction", "field", "reasoning"):
        sheet[column] = sheet[column].astype(object)
        sheet.loc[rows, column] = NA_LIKE
    sheet["seq"] = sheet["seq"].astype(object)
    sheet.loc[0, ["input", "reasoning", "category", "uniqueness", "seq"]] = None  # empty cells
    raw = _write(tmp_path, sheet)
    checked = check_alpaca(raw, params["schema"], params["category_rules"])
    for column in ("input", "output", "instruction", "field", "reasoning"):
        assert checked.loc[rows, column].tolist() == NA_LIKE, column
    # an empty cell is still missing: blank text, the category and uniqueness left to the rules, no seq
    first = checked.iloc[0]
    assert first["input"] == "" and first["reasoning"] == ""
    assert pd.isna(first["category"]) and pd.isna(first["uniqueness"]) and pd.isna(first["seq"])
    assert checked["NO"].tolist() == sheet["NO"].tolist()


def test_numbers_typed_into_text_cells_are_text(tmp_path, sheet, params):
    """A math prompt's input 12 and reference answer 42 are numbers in Excel: read as the text they show
    (they were refused as "expected text, found 42", with the hint that the row had no output)."""
    for column in ("input", "output", "instruction", "reasoning"):
        sheet[column] = sheet[column].astype(object)
    sheet.loc[3, ["input", "output"]] = [12, 42]
    sheet.loc[4, ["instruction", "output", "reasoning"]] = [7, 3.5, 0]
    checked = check_alpaca(_write(tmp_path, sheet), params["schema"], params["category_rules"])
    assert checked.loc[3, ["input", "output"]].tolist() == ["12", "42"]
    assert checked.loc[4, ["instruction", "output", "reasoning"]].tolist() == ["7", "3.5", "0"]


def test_missing_column_is_a_clear_error(tmp_path, sheet, params):
    raw = _write(tmp_path, sheet.drop(columns=["uniqueness"]))
    with pytest.raises(RawDataError, match=r"dataset 'alpaca_raw', column 'uniqueness'.*required column is missing"):
        check_alpaca(raw, params["schema"], params["category_rules"])


def test_unknown_category_is_a_clear_error(tmp_path, sheet, params):
    sheet.loc[5, "category"] = "poetry"
    raw = _write(tmp_path, sheet)
    with pytest.raises(RawDataError) as info:
        check_alpaca(raw, params["schema"], params["category_rules"])
    message = str(info.value)
    assert "column 'category'" in message and "row 5" in message and "'poetry'" in message
    assert "parameters_alpaca_sft.yml" in message


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("uniqueness", "easy", "unknown value 'easy'"),
        ("language", "fr", "unknown value 'fr'"),
        ("instruction", None, "missing or blank"),
    ],
)
def test_other_bad_cells_name_column_and_row(tmp_path, sheet, params, column, value, expected):
    sheet[column] = sheet[column].astype(object)
    sheet.loc[7, column] = value
    raw = _write(tmp_path, sheet)
    with pytest.raises(RawDataError, match=rf"column '{column}', row 7.*{expected}"):
        check_alpaca(raw, params["schema"], params["category_rules"])


def test_duplicate_no_is_an_error(sheet, params):
    sheet.loc[3, "NO"] = 1
    with pytest.raises(RawDataError, match="column 'NO', row 3.*duplicate"):
        check_alpaca(sheet, params["schema"], params["category_rules"])


def test_shipped_sample_is_the_generators_output(sheet):
    shipped = pd.read_excel(REPO / "data" / "01_raw" / "alpaca_sample.xlsx", keep_default_na=False)
    assert list(shipped.columns) == COLUMNS
    pd.testing.assert_frame_equal(shipped, sheet, check_dtype=False)
    assert set(sheet["language"]) == {"ja", "en", "zh"} and set(sheet["uniqueness"]) == {"simple", "complex"}


def test_the_sample_sheet_is_the_same_bytes_every_time_and_reads_as_the_sheet(tmp_path):
    """openpyxl stamps the time of the save: regenerating the sample changed the committed xlsx, not one cell."""
    import time

    first = write_alpaca(tmp_path / "a")[0].read_bytes()
    time.sleep(1.1)  # the zip and the workbook's properties keep whole seconds
    assert write_alpaca(tmp_path / "b")[0].read_bytes() == first
    assert (tmp_path / "a" / "alpaca_sample.xlsx").read_bytes() == (
        REPO / "data/01_raw/alpaca_sample.xlsx"
    ).read_bytes()
