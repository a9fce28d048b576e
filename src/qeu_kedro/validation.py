"""Checks for raw inputs, run by the first node that reads each raw dataset.

A failed check raises :class:`RawDataError` naming the dataset, the column and the
first bad row, so the user can open the file and fix it. Check nodes run before any
node that writes, and their outputs are in memory: a bad input writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["int", "float", "str", "bool"]


class RawDataError(ValueError):
    """A raw input does not have the shape or values the pipeline needs."""


@dataclass(frozen=True)
class Column:
    """What one column of a raw table must hold."""

    name: str
    kind: Kind
    min: float | None = None
    max: float | None = None
    allowed: Collection[Any] | None = None
    nullable: bool = False
    unique: bool = False
    hint: str = ""


def fail(dataset: str, column: str | None, row: int | None, problem: str, hint: str = "") -> None:
    """Raise a :class:`RawDataError` worded the same way for every dataset."""
    where = f"dataset '{dataset}'"
    if column is not None:
        where += f", column '{column}'"
    if row is not None:
        where += f", row {row} (0-based, header not counted)"
    message = f"Bad input in {where}: {problem}."
    if hint:
        message += f" {hint}"
    raise RawDataError(message)


def _show(value: Any) -> str:
    """repr of a cell as the user typed it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _coerce(series: pd.Series, col: Column, dataset: str) -> pd.Series:
    """Return ``series`` converted to the column's kind, or fail at the first bad row."""
    if col.kind == "str":
        values = series.astype("object")
        bad = ~values.map(lambda v: isinstance(v, str) or v is None or (isinstance(v, float) and np.isnan(v)))
        if bad.any():
            i = _first(bad.to_numpy())
            fail(dataset, col.name, i, f"expected text, found {_show(values.iloc[i])}", col.hint)
        return values.map(lambda v: v if isinstance(v, str) else None).astype("object")
    if col.kind == "bool":
        mapping = {True: True, False: False, "true": True, "false": False, "True": True, "False": False, 1: True, 0: False}
        out = series.map(lambda v: mapping.get(v, v) if not isinstance(v, float) or not np.isnan(v) else None)
        bad = ~out.map(lambda v: v is None or isinstance(v, bool))
        if bad.any():
            i = _first(bad.to_numpy())
            fail(dataset, col.name, i, f"expected true/false, found {_show(series.iloc[i])}", col.hint)
        return out
    numeric = pd.to_numeric(series, errors="coerce")
    bad = numeric.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        i = _first(bad)
        fail(dataset, col.name, i, f"expected a number, found {_show(series.iloc[i])}", col.hint)
    if col.kind == "int":
        present = numeric.notna().to_numpy()
        frac = present & (numeric.fillna(0).to_numpy() % 1 != 0)
        if frac.any():
            i = _first(frac)
            fail(dataset, col.name, i, f"expected a whole number, found {_show(series.iloc[i])}", col.hint)
        return numeric.astype("Int64") if col.nullable else numeric.astype("int64", errors="ignore")
    return numeric.astype("float64")


def check_table(df: pd.DataFrame, dataset: str, columns: Sequence[Column]) -> pd.DataFrame:
    """Check ``df`` against ``columns`` and return just those columns, typed.

    Args:
        df: the raw table as loaded by the catalog.
        dataset: the catalog name, used in error messages.
        columns: what each required column must hold; other columns are dropped.

    Raises:
        RawDataError: on an empty table, a missing column, a missing, mistyped,
            out-of-range, unknown or duplicate value.
    """
    if not isinstance(df, pd.DataFrame):
        fail(dataset, None, None, f"expected a table, got {type(df).__name__}")
    missing = [c.name for c in columns if c.name not in df.columns]
    if missing:
        fail(
            dataset,
            missing[0],
            None,
            f"required column is missing (required: {[c.name for c in columns]}; found: {list(df.columns)})",
        )
    if len(df) == 0:
        fail(dataset, None, None, "the table is empty")

    df = df.reset_index(drop=True)
    out = {}
    for col in columns:
        raw = df[col.name]
        nulls = raw.isna().to_numpy()
        if col.kind == "str":
            nulls = nulls | raw.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
        if not col.nullable and nulls.any():
            i = _first(nulls)
            fail(dataset, col.name, i, "value is missing or blank", col.hint)
        values = _coerce(raw, col, dataset)
        present = values.notna().to_numpy()
        if col.min is not None or col.max is not None:
            num = values.to_numpy(dtype="float64", na_value=np.nan)
            low = present & (num < col.min) if col.min is not None else np.zeros(len(num), bool)
            high = present & (num > col.max) if col.max is not None else np.zeros(len(num), bool)
            out_of_range = low | high
            if out_of_range.any():
                i = _first(out_of_range)
                fail(
                    dataset,
                    col.name,
                    i,
                    f"value {_show(raw.iloc[i])} is outside the allowed range [{col.min}, {col.max}]",
                    col.hint,
                )
        if col.allowed is not None:
            allowed = set(col.allowed)
            unknown = present & ~values.isin(allowed).to_numpy()
            if unknown.any():
                i = _first(unknown)
                fail(
                    dataset,
                    col.name,
                    i,
                    f"unknown value {_show(raw.iloc[i])} (allowed: {sorted(map(str, allowed))})",
                    col.hint,
                )
        if col.unique:
            dup = values.duplicated(keep="first").to_numpy() & present
            if dup.any():
                i = _first(dup)
                first = _first((values == values.iloc[i]).to_numpy())
                fail(dataset, col.name, i, f"duplicate id {_show(raw.iloc[i])} (first seen in row {first})", col.hint)
        out[col.name] = values
    return pd.DataFrame(out)
