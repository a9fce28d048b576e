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


def _key(value: Any) -> str:
    """Codes compare as text: YAML keys may be read as int, file values as int or str."""
    return (
        str(int(value))
        if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.isdigit())
        else str(value)
    )
