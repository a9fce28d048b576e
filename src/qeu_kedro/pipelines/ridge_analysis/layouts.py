"""MovieLens releases that code their user table: decoded by code tables that are parameters.

MovieLens 1M's ``users.dat`` writes age as a bucket code and occupation as a number (its
README's tables); 100K writes the age and the occupation's name. ``user_codes`` in
``parameters_ridge_analysis.yml`` maps codes to values per column; an empty table leaves the
column as it is, so the 100K layout and the sample pass through unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.validation import fail


def decode_users(users: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """``users`` with each column of ``params["user_codes"]`` mapped through its code table.

    A code missing from its table is an input error naming the column and the row.
    """
    decoded = users.copy()
    for column, table in (params.get("user_codes") or {}).items():
        if not table or column not in decoded.columns:
            continue
        codes = pd.Series({_key(k): v for k, v in table.items()})
        keys = decoded[column].map(_key)
        missing = keys.isna().to_numpy()
        if missing.any():  # a blank cell (it also turns the column's numbers into floats: 1.0, read as 1)
            fail("users", column, int(np.flatnonzero(missing)[0]), "missing value", "Each user needs a code here.")
        unknown = ~keys.isin(codes.index).to_numpy()
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            fail(
                "users",
                column,
                i,
                f"code {decoded[column].iloc[i]!r} is not in ridge_analysis.user_codes.{column}",
                "Add it to the code table in parameters_ridge_analysis.yml.",
            )
        decoded[column] = keys.map(codes).to_numpy()
    return decoded


def _key(value: Any) -> str | None:
    """Codes compare as text: YAML keys may be read as int, file values as int, float (a column with a blank
    cell) or str. A whole number is its digits (1, 1.0 and "01" are "1"; only ASCII digits count as digits,
    not "²" or "١"); a blank or NaN is None."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        return str(int(text)) if text.isascii() and text.isdigit() else text
    return str(value)
