"""Checks for raw inputs, run by the first node that reads each raw dataset.

Each raw table is declared as a schema (:class:`Column` per column, plus composite keys
and a minimum size) and checked in two steps: types and missing values here (so a cell
is shown as the user typed it), then ranges, allowed categories and unique keys by a
pandera ``DataFrameSchema`` built from the same declaration (:func:`pandera_schema`).

A failed check raises :class:`RawDataError` naming the dataset, the column and the
first bad row, so the user can open the file and fix it. Check nodes run before any
node that writes, and their outputs are in memory: a bad input writes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["int", "float", "str", "bool"]


class RawDataError(ValueError):
    """A raw input does not have the shape or values the pipeline needs.

    Raised by :func:`fail`, it also carries the ``dataset``, ``column`` and 0-based ``row`` it names
    (None where it names none), so a caller can say more about that row.
    """

    dataset: str | None = None
    column: str | None = None
    problem: str = ""  # what :func:`fail` was told, to say it again of another row (a Dask partition's)
    hint: str = ""
    line: int | None = None
    row: int | None = None


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
    step: float | None = None  # numbers must be multiples of it (e.g. 0.5 for half stars)
    # text that is one line (a title, a name): a line break in it is refused, as the mark of an opening quote
    # that is never closed, which makes a CSV reader take the lines after it into this cell (their rows lost)
    single_line: bool = False

    def __post_init__(self) -> None:
        if self.single_line and self.kind != "str":
            raise ValueError(f"Column {self.name!r}: single_line=True is for text columns (kind 'str').")
        # A unique column identifies each row: a row without a value has nothing to be told apart by, and two
        # rows without one would be reported as duplicates of a value no one typed.
        if self.unique and self.nullable:
            raise ValueError(
                f"Column {self.name!r}: unique=True and nullable=True cannot be combined: a unique column "
                "identifies each row, so every row needs a value. Drop nullable=True."
            )


def fail(
    dataset: str, column: str | None, row: int | None, problem: str, hint: str = "", line: int | None = None
) -> None:
    """Raise a :class:`RawDataError` worded the same way for every dataset.

    ``row`` is a table's 0-based row; ``line`` a text file's 1-based line (JSON lines), as an editor shows it.
    In a ``dataset`` named ``... (partition N)`` (a Dask partition) ``row`` is counted within the partition
    (the partitioned checks then name the table's row: ``partitioned.rows_over_partitions``),
    and the message says so.
    """
    where = f"dataset '{dataset}'"
    if column is not None:
        where += f", column '{column}'"
    if row is not None:
        partition = partition_of(dataset)
        if partition:  # a Dask partition's rows are counted from its own start, not the file's
            where += (
                f", row {row} (0-based, counted from the first row of partition {partition[1]}, not of the file: "
                "add the rows of the partitions before it for the row in the file)"
            )
        else:
            where += f", row {row} (0-based, header not counted)"
    if line is not None:
        where += f", line {line}"
    message = f"Bad input in {where}: {problem}."
    if hint:
        message += f" {hint}"
    error = RawDataError(message)
    error.dataset, error.column, error.row = dataset, column, row
    error.problem, error.hint, error.line = problem, hint, line
    raise error


def partition_of(dataset: str | None) -> tuple[str, int] | None:
    """``(table, N)`` of a Dask partition's dataset name, ``"<table> (partition N)"``; None for any other name."""
    found = re.fullmatch(r"(.*) \(partition (\d+)\)", dataset or "")
    return (found[1], int(found[2])) if found else None


def _advice(*parts: str) -> str:
    """What to do: the given sentences (a check's own, then the column's ``hint``), the empty ones left out."""
    return " ".join(p for p in parts if p)


def _show(value: Any) -> str:
    """repr of a cell as the user typed it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def is_blank(value: object) -> bool:
    """Text with nothing to read: only whitespace and invisible format characters (a zero-width space, a
    byte-order mark, a soft hyphen), which ``str.strip`` keeps."""
    if not isinstance(value, str):
        return False
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value)


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
        # 1 and 0 find True and False: equal numbers are the same dict key
        mapping = {True: True, False: False, "true": True, "false": False, "True": True, "False": False}
        out = series.map(lambda v: mapping.get(v, v) if not isinstance(v, float) or not np.isnan(v) else None)
        bad = ~out.map(lambda v: v is None or isinstance(v, bool))
        if bad.any():
            i = _first(bad.to_numpy())
            fail(dataset, col.name, i, f"expected true/false, found {_show(series.iloc[i])}", col.hint)
        return out
    numeric = pd.to_numeric(series, errors="coerce")
    bad = numeric.isna().to_numpy() & series.notna().to_numpy()
    # true/false is not a number of stars, an age or an id (pandas would read it as 1/0); only a boolean or a
    # mixed (object) column can hold one: a numeric column is not looked at cell by cell (1M rows: 1.3 s)
    if pd.api.types.is_bool_dtype(series.dtype):
        bad |= series.notna().to_numpy()
    elif not pd.api.types.is_numeric_dtype(series.dtype):
        bad |= series.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    if bad.any():
        i = _first(bad)
        fail(dataset, col.name, i, f"expected a number, found {_show(series.iloc[i])}", col.hint)
    infinite = np.isinf(numeric.to_numpy(dtype="float64", na_value=np.nan))
    if infinite.any():
        i = _first(infinite)
        fail(dataset, col.name, i, f"expected a finite number, found {_show(series.iloc[i])}", col.hint)
    if col.kind == "int":
        present = numeric.notna().to_numpy()
        huge = present & (np.abs(numeric.fillna(0).to_numpy()) >= 2**63)  # beyond int64: pandas cannot hold it
        if huge.any():
            i = _first(huge)
            fail(dataset, col.name, i, f"expected a whole number below 2**63, found {_show(series.iloc[i])}", col.hint)
        frac = present & (numeric.fillna(0).to_numpy() % 1 != 0)
        if frac.any():
            i = _first(frac)
            fail(dataset, col.name, i, f"expected a whole number, found {_show(series.iloc[i])}", col.hint)
        if pd.api.types.is_float_dtype(numeric.dtype):
            numeric = _exact_whole_numbers(series, numeric, col, dataset)
        return numeric.astype("Int64") if col.nullable else numeric.astype("int64", errors="ignore")
    if col.step is not None:
        steps = numeric.fillna(0).to_numpy() / col.step
        off = numeric.notna().to_numpy() & ~np.isclose(steps, np.round(steps), rtol=0, atol=1e-9)
        if off.any():
            i = _first(off)
            fail(dataset, col.name, i, f"expected a multiple of {col.step:g}, found {_show(series.iloc[i])}", col.hint)
    return numeric.astype("float64")


_WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _exact_whole_numbers(series: pd.Series, numeric: pd.Series, col: Column, dataset: str) -> pd.Series:
    """``numeric`` (float64, whole numbers) with the values at or above 2**53, which a float64 cannot hold
    exactly, read again exactly from their cells; one that came through a float fails.

    ``pd.to_numeric`` gives float64 for a whole column when one cell is written as a float (``1.0``, ``1e0``),
    and a 17-digit id then changes value without a word (9007199254740993 becomes ...992).
    """
    big = numeric.notna().to_numpy() & (np.abs(numeric.fillna(0).to_numpy()) >= 2**53)
    if not big.any():
        return numeric
    exact: list[int] = []
    for i in np.flatnonzero(big):
        value = series.iloc[i]
        integer = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
        if integer or (isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value)):
            exact.append(int(value))
        else:
            fail(
                dataset,
                col.name,
                int(i),
                f"the whole number {_show(value)} is 2**53 or more and was read as a floating-point number, "
                "which cannot hold it exactly (its last digits may have changed)",
                _advice(
                    "Write it as digits only (no decimal point or exponent); if the column has an empty "
                    "cell or a number written as 1.0 or 1e0, read it as text (load_args dtype: str) or "
                    "write those cells as whole numbers.",
                    col.hint,
                ),
            )
    out = numeric.astype("object")
    out.iloc[np.flatnonzero(big)] = exact
    return out.where(numeric.notna(), None)


def pandera_schema(columns: Sequence[Column], unique_together: Sequence[Sequence[str]] = ()) -> Any:
    """The value rules of ``columns`` as a pandera ``DataFrameSchema`` (over already typed columns).

    Ranges become ``ge`` / ``le`` checks, ``allowed`` an ``isin`` check, ``unique`` a column
    uniqueness rule and each of ``unique_together`` a composite key (only the first
    composite key is pandera's own ``unique``; further ones are separate schemas).
    Missing values and types are checked before (see :func:`check_table`).
    """
    import pandera.pandas as pa

    spec = {}
    for col in columns:
        checks = []
        if col.min is not None:
            checks.append(pa.Check.ge(col.min))
        if col.max is not None:
            checks.append(pa.Check.le(col.max))
        if col.allowed is not None:
            checks.append(pa.Check.isin(list(col.allowed)))
        spec[col.name] = pa.Column(
            checks=checks, nullable=True, unique=col.unique, report_duplicates="exclude_first", coerce=False
        )
    keys = [list(k) for k in unique_together]
    return pa.DataFrameSchema(spec, unique=keys[0] if keys else None, report_duplicates="exclude_first")


# How pandera names each check, mapped to ours, in the order they are reported per column.
_RULES = (
    ("range", ("greater_than_or_equal_to", "less_than_or_equal_to")),
    ("allowed", ("isin",)),
    ("unique", ("field_uniqueness",)),
)


def _first_failure(cases: pd.DataFrame, columns: Sequence[Column]) -> tuple[Column, str, int] | None:
    """The first broken rule in declaration order (column, then range / allowed / unique), first row."""
    cases = cases[cases["schema_context"] == "Column"]
    for col in columns:
        mine = cases[cases["column"] == col.name]
        for rule, prefixes in _RULES:
            rows = mine.loc[mine["check"].astype(str).str.startswith(prefixes), "index"].dropna()
            if len(rows):
                return col, rule, int(rows.min())
    return None


def _check_values(
    typed: pd.DataFrame,
    raw: pd.DataFrame,
    dataset: str,
    columns: Sequence[Column],
    unique_together: Sequence[Sequence[str]],
) -> None:
    """Run the pandera schema over the typed table; raise the friendly error of its first failure."""
    import pandera.pandas as pa

    keys = [list(k) for k in unique_together]
    schemas = [pandera_schema(columns, keys[:1])] + [pandera_schema((), [k]) for k in keys[1:]]
    for schema in schemas:
        try:
            schema.validate(typed, lazy=True)
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            first = _first_failure(cases, columns)
            if first is not None:
                col, rule, i = first
                value = _show(raw[col.name].iloc[i])
                if rule == "range":
                    fail(
                        dataset,
                        col.name,
                        i,
                        f"value {value} is outside the allowed range [{col.min}, {col.max}]",
                        col.hint,
                    )
                if rule == "allowed":
                    allowed = sorted(map(str, col.allowed or ()))
                    fail(dataset, col.name, i, f"unknown value {value} (allowed: {allowed})", col.hint)
                first_seen = _first((typed[col.name] == typed[col.name].iloc[i]).to_numpy())
                fail(dataset, col.name, i, f"duplicate id {value} (first seen in row {first_seen})", col.hint)
            composite = cases.loc[cases["check"].astype(str) == "multiple_fields_uniqueness", "index"].dropna()
            if len(composite):
                key = schema.unique
                i = int(composite.min())
                row = tuple(typed[k].iloc[i] for k in key)
                same = np.logical_and.reduce([(typed[k] == typed[k].iloc[i]).to_numpy() for k in key])
                shown = "(" + ", ".join(_show(v) for v in row) + ")"
                fail(
                    dataset,
                    ", ".join(key),
                    i,
                    f"duplicate key ({', '.join(key)}) = {shown} (first seen in row {_first(same)})",
                    "Each combination may appear only once: remove or merge the repeated rows.",
                )
            fail(dataset, None, None, f"the table breaks its schema: {cases.head(3).to_dict('records')}")


def check_no_repeated_header(df: pd.DataFrame, dataset: str) -> None:
    """Fail on a row that repeats the header line: each of its cells holds its own column's name.

    Two files joined one after the other (``cat a.csv b.csv``) bring the second one's header in as a row.
    A column of numbers then fails on it (``expected a number, found 'user_id'``), but a table of text
    only took it as data. Only the columns read are compared, so a file read with ``usecols`` is covered.
    """
    if not isinstance(df, pd.DataFrame):
        return  # check_table says what it should be
    names = list(df.columns)
    if len(df) == 0 or not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return  # no names to compare with (headerless reads name columns 0, 1, ...); a repeated name is failed later
    same = np.ones(len(df), dtype=bool)
    for name in names:
        column = df[name]
        if not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)):
            return  # the reader made it numbers (or dates): no cell of it holds a name
        same &= (column == name).to_numpy(dtype=bool, na_value=False)
        if not same.any():
            return
    fail(
        dataset,
        None,
        _first(same),
        f"the row repeats the header line ({', '.join(names)})",
        "Files joined one after the other each bring their header line: remove the repeated one, and check "
        "that the rows after it belong in this table.",
    )


#: ``pandas.read_csv`` arguments that say how a file's lines are cut into cells: what reading its header line needs
#: (not ``engine``: the header is read with pandas' own parser, which every engine's options above fit, and pyarrow's
#: refuses ``nrows``; ``compression`` goes to fsspec, which opens the file).
_CSV_FORMAT_ARGS = frozenset(
    {
        "comment",
        "delimiter",
        "dialect",
        "doublequote",
        "encoding",
        "encoding_errors",
        "escapechar",
        "lineterminator",
        "quotechar",
        "quoting",
        "sep",
        "skip_blank_lines",
        "skipinitialspace",
        "skiprows",
    }
)


def _csv_kind(dataset: Any) -> Literal["pandas", "dask"] | None:
    """Which kedro-datasets CSV entry ``dataset`` is (the project's subclasses of them included), or None."""
    kinds = {(c.__module__, c.__name__) for c in type(dataset).__mro__}
    for kind in ("pandas", "dask"):
        if (f"kedro_datasets.{kind}.csv_dataset", "CSVDataset") in kinds:
            return kind  # type: ignore[return-value]
    return None


def _single_char_sep(args: dict[str, Any]) -> str | None:
    """The file's delimiter where the csv module reads it as pandas does (one character; no rows skipped, no
    comments), or None: a regex separator (MovieLens 1M's "::"), skipped rows or comments."""
    sep = args.get("sep", args.get("delimiter", ","))
    if not isinstance(sep, str) or len(sep) != 1 or args.get("skiprows") or args.get("comment"):
        return None
    return sep


def _csv_file(dataset: Any) -> tuple[Any, dict[str, Any], int] | None:
    """``(fsspec file, load_args, header line)`` of the file a kedro-datasets ``pandas.CSVDataset`` or
    ``dask.CSVDataset`` reads (a dask glob's first file: dask takes the names from it); None when there is no
    header line to read (none, or ``names`` replacing it), or for another dataset type."""
    import fsspec

    kind = _csv_kind(dataset)
    args = getattr(dataset, "_load_args", None) or {}
    header = args.get("header", "infer")
    if "names" in args or header is None or isinstance(header, list | tuple):
        return None
    compression = args.get("compression")
    if isinstance(compression, dict):  # pandas' {"method": "gzip", ...}
        compression = compression.get("method")
    compression = compression or "infer"
    if kind == "pandas":
        path, protocol = str(dataset._get_load_path()), dataset._protocol
        files = fsspec.open_files(
            path if protocol == "file" else f"{protocol}://{path}",
            compression=compression,
            **({} if protocol == "file" else dataset._storage_options),
        )
    elif kind == "dask":
        files = fsspec.open_files(str(dataset._filepath), compression=compression, **dataset.fs_args)
    else:
        return None
    if not files:
        return None
    return files[0], args, 0 if header == "infer" else int(header)


def csv_header(dataset: Any) -> list[str] | None:
    """The names of the header line of the file a kedro-datasets ``pandas.CSVDataset`` or ``dask.CSVDataset``
    reads, as written (a repeated name twice); None when there is none to read: no header line, or ``names``
    replacing it, or another dataset type. A dask glob's first file is read: dask takes the names from it."""
    found = _csv_file(dataset)
    if found is None:
        return None
    file, args, line = found
    with file as handle:
        cells = pd.read_csv(
            handle,
            header=None,
            nrows=line + 1,
            dtype=str,
            keep_default_na=False,
            **{k: v for k, v in args.items() if k in _CSV_FORMAT_ARGS},
        )
    return [str(v) for v in cells.iloc[line]] if len(cells) > line else None


def check_trailing_delimiter(name: str, dataset: Any) -> None:
    """Fail when the first data row of the catalog entry ``name``'s file has one field more than its header line,
    and that field is empty: a delimiter at the end of the row (some spreadsheet exports write one on every row).

    pandas and dask then read the first field of each row as its label and shift every column one to the left
    (the ratings read as movie ids, the timestamps as ratings), with ``usecols`` too, where the empty column is
    not even read: the table a check node is given can pass. Hence this look at the file itself, before the run.
    """
    import csv
    import io
    import itertools

    found = _csv_file(dataset)
    if found is None:
        return
    file, args, line = found
    sep = _single_char_sep(args)
    if sep is None:
        return  # left to the check nodes
    try:
        with file as handle:
            text = io.TextIOWrapper(handle, encoding=args.get("encoding") or "utf-8", errors="replace", newline="")
            # the header line and the first data row, quoted fields (and line breaks inside them) as pandas reads them
            rows = list(
                itertools.islice(csv.reader(text, delimiter=sep, quotechar=args.get("quotechar", '"')), line + 2)
            )
    except Exception:  # noqa: BLE001 - a file that cannot be read is left to its load, which says why
        return
    if len(rows) < line + 2:
        return
    names, first = rows[line], rows[line + 1]
    if len(first) == len(names) + 1 and not first[-1].strip():
        fail(
            name,
            None,
            0,
            f"the row has {len(first)} fields where the header line names {len(names)} ({names[:8]}), the last one "
            "empty: a delimiter at the end of the row; pandas would read every column shifted one to the left",
            "Remove the delimiter at the end of the data rows (or name the extra column in the header line).",
        )


# Compressed files' suffixes: their bytes are not the text's (the file-level checks leave them to the load).
_COMPRESSED = frozenset({".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"})
# Encodings in which every byte sequence decodes: nothing to check.
_ANY_BYTES = {"latin-1", "iso8859-1", "iso8859-15"}


def check_file_encoding(name: str, dataset: Any, chunk_bytes: int = 1 << 20) -> None:
    """Fail where the file of a kedro-datasets ``pandas.CSVDataset`` (a local file) does not decode in its
    ``load_args: encoding`` (UTF-8 by default), naming its line, and its row and column where the file has a
    single-character delimiter and a header line: pandas' own error gives a byte position inside a buffer.

    The whole file is decoded, a chunk at a time, before the run: 16 ms for TMDB's 5.7 MB movies file here.
    """
    import codecs

    if _csv_kind(dataset) != "pandas" or dataset._protocol != "file":
        return
    args = getattr(dataset, "_load_args", None) or {}
    if args.get("encoding_errors", "strict") != "strict":
        return  # pandas is told to replace or drop what does not decode
    encoding = args.get("encoding") or "utf-8"
    compression = args.get("compression")
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        return  # pandas says so at the load
    if codec.name in _ANY_BYTES or (compression not in (None, "infer")):
        return
    path = Path(str(dataset._get_load_path()))
    if path.suffix in _COMPRESSED:
        return  # compressed: its bytes are not the text's
    decoder = codec.incrementaldecoder()
    consumed = 0  # bytes read so far
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                # the decoder keeps a character cut by the chunk's start: err.start counts from those bytes
                held = len(decoder.getstate()[0])
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    _fail_encoding(name, path, args, encoding, consumed - held + err.start, err)
                consumed += len(chunk)
            held = len(decoder.getstate()[0])
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as err:  # the file ends inside a character
                _fail_encoding(name, path, args, encoding, consumed - held + err.start, err)
    except OSError:
        return  # a file that cannot be read is left to its load, which says why


def _fail_encoding(name: str, path: Path, args: dict[str, Any], encoding: str, offset: int, err: Exception) -> None:
    """The :func:`check_file_encoding` error for the byte at ``offset`` (an incremental decoder's start may lie
    in an earlier chunk: the offset is clamped to the file's bytes)."""
    import csv
    import io

    with path.open("rb") as handle:  # the bytes up to the bad one, not a whole file of GBs
        data = handle.read(offset + 4)
    offset = max(0, min(offset, len(data) - 1))
    before = data[:offset]
    line = before.count(b"\n") + 1
    bad = data[offset : offset + 4]
    row = column = None
    sep = _single_char_sep(args)
    header = args.get("header", "infer")
    if sep is not None:
        try:
            text = before.decode(encoding)
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar=args.get("quotechar", '"'))
            rows = [r for r in reader if r]  # pandas skips blank lines
            partial = not text.endswith(("\n", "\r")) and bool(rows)  # the bad byte's record began before it
            if "names" in args:  # header: 0 (or n) with names: that line is read and replaced
                names, first = list(args["names"]), (0 if header in ("infer", None) else int(header) + 1)
            elif header is None:
                names, first = None, 0
            else:
                first = (0 if header == "infer" else int(header)) + 1
                names = rows[first - 1] if len(rows) >= first and (len(rows) > first or not partial) else None
            row = len(rows) - (1 if partial else 0) - first
            fields = len(rows[-1]) if partial else 1
            if row < 0:  # in the header line itself
                row = None
            elif names and 0 < fields <= len(names):
                column = str(names[fields - 1])
        except Exception:  # noqa: BLE001 - the line is enough
            row = column = None
    fail(
        name,
        column,
        row,
        f"the bytes {bad!r} in the file {path} are not {encoding} ({err.reason if hasattr(err, 'reason') else err})",
        "Save the file as "
        f"{encoding}, or give its encoding in the catalog entry (load_args: encoding: latin-1, cp1252, shift_jis, ...).",
        line=line,
    )


def check_file_repeats_no_header(name: str, dataset: Any) -> None:
    """Fail where a later line of a ``dask.CSVDataset``'s local file is its header line again (files joined with
    ``cat``). Dask drops such a line when a block starts with it, so :func:`check_no_repeated_header` sees it
    only by chance of the block offsets (pandas reads it as a row, which that check refuses). The files are
    searched as bytes (``mmap``), a C search: no parsing (0.2 s for a 200 MB ratings file here)."""
    if _csv_kind(dataset) != "dask":
        return
    args = getattr(dataset, "_load_args", None) or {}
    if "names" in args or args.get("header", "infer") not in ("infer", 0):
        return
    if args.get("compression") not in (None, "infer"):
        return  # compressed: its bytes are not the text's
    try:
        import fsspec

        files = fsspec.open_files(str(dataset._filepath), **dataset.fs_args)
    except Exception:  # noqa: BLE001 - left to the load, which says why
        return
    for opened in files:
        if getattr(opened.fs, "protocol", None) not in ("file", ("file", "local")):
            continue  # a local file only: a remote one would be downloaded here
        if Path(opened.path).suffix in _COMPRESSED:
            continue
        path = Path(opened.path)
        found = _repeated_header_line(path)
        if found is not None:
            line, header = found
            fail(
                name,
                None,
                None,
                f"the file {path} repeats its header line here ({header})",
                "Files joined one after the other each bring their header line: remove the repeated one, and "
                "check that the rows after it belong in this table.",
                line=line,
            )


def _repeated_header_line(path: Path) -> tuple[int, str] | None:
    """``(line, header)`` of the first later line of ``path`` equal to its first line, or None."""
    import mmap

    try:
        with path.open("rb") as handle:
            header = handle.readline().rstrip(b"\r\n")
            if not header or path.stat().st_size <= len(header) + 2:
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                places = [data.find(b"\n" + header + end, len(header)) for end in (b"\n", b"\r\n")]
                last = data.rfind(b"\n" + header)  # the file's last line, without a newline after it
                places = [at for at in places if at != -1] + ([last] if last + 1 + len(header) == len(data) else [])
                if not places:
                    return None
                at = min(places)
                return data[: at + 1].count(b"\n") + 1, header.decode(errors="replace")
    except (OSError, ValueError):  # unreadable, or empty for mmap: left to the load
        return None


def check_usecols_header(name: str, dataset: Any) -> None:
    """Fail on a column that the catalog entry ``name`` reads with ``load_args: usecols`` and its file's header
    line names more than once.

    Without ``usecols`` pandas renames the second one (``score.1``), which :func:`check_table` refuses; with
    ``usecols`` pandas (and dask) read the first and drop the other without a word, so the table a check node
    is given shows nothing of it. Hence this look at the file itself, before the run.
    """
    usecols = (getattr(dataset, "_load_args", None) or {}).get("usecols")
    if not usecols or callable(usecols):
        return
    wanted = [c for c in usecols if isinstance(c, str)]
    if not wanted:
        return
    try:
        names = csv_header(dataset)
    except Exception:  # noqa: BLE001 - a file that cannot be read is left to its load, which says why
        return
    for column in wanted:
        if names is not None and names.count(column) > 1:
            fail(
                name,
                column,
                None,
                f"the column appears {names.count(column)} times in the header line of the file, and load_args "
                "usecols reads only the first of them",
                "Remove or rename the repeated column.",
            )


def check_default_index(df: pd.DataFrame, dataset: str) -> None:
    """Fail on a table whose rows are labelled (an index without a name) instead of numbered 0, 1, 2, ...

    A CSV whose data rows each have one field more than its header line (a delimiter at the end of every
    row, as some spreadsheet exports write) is read by pandas (and Dask) with the first field of each row as
    the row's label and every column shifted one to the left: the ratings read as movie ids, and a check of
    the columns would pass. Its two marks, both required: rows labelled instead of numbered from 0 (a reader
    gives a plain table a ``RangeIndex`` from 0; pandas makes first fields 1, 2, 3, ... one from 1), and a last
    column with no value in any row (the empty field after the trailing delimiter, shifted into it). A table
    indexed on purpose (``load_args: index_col``: the index has the column's name), or a slice of a table a
    caller passes (its labels, but values in its last column), is left alone.
    """
    index = df.index
    default = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    if default or any(name is not None for name in index.names) or df.shape[1] == 0:
        return
    last = df.iloc[:, -1]
    if not (last.isna() | last.map(lambda v: isinstance(v, str) and not v.strip())).all():
        return
    fields = index.nlevels
    first = index[0] if len(index) else None
    fail(
        dataset,
        None,
        0,
        f"each row has {fields} field{'s' if fields > 1 else ''} more than the header line names "
        f"({len(df.columns)} columns: {list(df.columns)[:8]}): the reader took the first field of each row "
        f"({_show(first)} in row 0) as the row's label and shifted every column one to the left",
        "A delimiter at the end of every data row (a trailing delimiter, as some spreadsheet exports write) does "
        "this: remove it from the rows, or name the extra column in the header line.",
    )


def _check_single_line(values: pd.Series, col: Column, dataset: str) -> None:
    """Fail on the first cell of a one-line text column that holds a line break."""
    broken = values.map(lambda v: isinstance(v, str) and ("\n" in v or "\r" in v)).to_numpy(dtype=bool)
    if broken.any():
        i = _first(broken)
        text = values.iloc[i]
        fail(
            dataset,
            col.name,
            i,
            f"the text runs over {len(text.splitlines())} lines ({text[:80]!r}...), where one line is expected",
            _advice(
                'A quote (") that opens a cell and is never closed makes the reader take the lines after '
                "it, up to the next quote, into this cell, and their rows are lost: close or remove the "
                "quote in this row (or the line break, if the text has one).",
                col.hint,
            ),
        )


def _mojibake(value: object) -> str | None:
    """What ``value`` reads as when its latin-1 characters are taken back to bytes and read as UTF-8, where
    that succeeds and differs (``'AmÃ©lie'`` -> ``'Amélie'``); else None."""
    if not isinstance(value, str) or value.isascii():
        return None
    try:
        fixed = value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # a character beyond latin-1, or bytes that are no UTF-8: a text read right
        return None
    return fixed if fixed != value else None


def check_no_mojibake(values: pd.Series, dataset: str, column: str, encoding_hint: str = "") -> None:
    """Fail on the first text of ``values`` that is UTF-8 read as latin-1 (mojibake: ``AmÃ©lie (2001)``).

    A UTF-8 file read with ``encoding: latin-1`` gives no error (every byte is a latin-1 character), only
    texts with two characters for each accented one; titles then match nothing, without a word.
    """
    found = values.map(lambda v: _mojibake(v) is not None).to_numpy(dtype=bool)
    if found.any():
        i = _first(found)
        fail(
            dataset,
            column,
            i,
            f"the text {values.iloc[i]!r} is UTF-8 read as latin-1 (read as UTF-8 it is {_mojibake(values.iloc[i])!r})",
            encoding_hint
            or "The file is UTF-8: read it with encoding: utf-8 in its catalog entry's load_args (or drop encoding).",
        )


def _rows(rows: np.ndarray, shown: int = 5) -> str:
    """``1, 3, 7`` or ``1, 3, 7, 8, 9 and 12 more``: the 0-based rows, the first ``shown`` of them."""
    text = ", ".join(str(int(r)) for r in rows[:shown])
    return text + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


def _fail_missing_key(dataset: str, col: Column, missing: np.ndarray) -> None:
    """Fail on the rows of a unique column that have no value, naming them (the first few) and what to do."""
    rows = np.flatnonzero(missing)
    if len(rows) > 1:
        more, todo = (
            f"; {len(rows)} rows have none: {_rows(rows)}",
            "Give each of those rows its own value, or remove them.",
        )
    else:
        more, todo = "", "Give the row its own value, or remove it."
    fail(
        dataset,
        col.name,
        int(rows[0]),
        f"value is missing or blank in a column whose values must be unique (they identify the rows){more}",
        _advice(todo, col.hint),
    )


def check_table(
    df: pd.DataFrame,
    dataset: str,
    columns: Sequence[Column],
    unique_together: Sequence[Sequence[str]] = (),
    min_rows: int = 1,
    min_rows_hint: str = "",
) -> pd.DataFrame:
    """Check ``df`` against ``columns`` and return just those columns, typed.

    Args:
        df: the raw table as loaded by the catalog.
        dataset: the catalog name, used in error messages.
        columns: what each required column must hold; other columns are dropped.
        unique_together: composite keys, e.g. ``[("user_id", "movie_id")]``: no combination twice.
        min_rows: fewer rows than this is an error (a table too small to mean anything).
        min_rows_hint: what to do about a too small table.

    Raises:
        RawDataError: on an empty or too small table, a missing column, a missing, mistyped,
            out-of-range, unknown or duplicate value, or a repeated composite key.
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

    check_default_index(df, dataset)
    df = df.reset_index(drop=True)
    check_no_repeated_header(df, dataset)
    out = {}
    for col in columns:
        raw = df[col.name]
        if isinstance(raw, pd.DataFrame):  # two columns with this name
            fail(dataset, col.name, None, "the column appears more than once in the header")
        if f"{col.name}.1" in df.columns:  # pandas renames a repeated header name instead of failing
            fail(
                dataset,
                col.name,
                None,
                f"the column appears more than once in the header (the reader renamed the second '{col.name}.1')",
                "Remove or rename the repeated column.",
            )
        nulls = raw.isna().to_numpy()
        if col.kind == "str":
            nulls = nulls | raw.map(is_blank).to_numpy(dtype=bool)
        if not col.nullable and nulls.any():
            i = _first(nulls)
            if col.unique:
                _fail_missing_key(dataset, col, nulls)
            fail(dataset, col.name, i, "value is missing or blank", col.hint)
        if col.single_line:
            _check_single_line(raw.where(~nulls, None), col, dataset)
        if col.kind == "str":
            raw = raw.where(~nulls, None)  # a blank text is as missing as an empty cell (nullable columns)
        out[col.name] = _coerce(raw, col, dataset)
    typed = pd.DataFrame(out)
    _check_values(typed, df, dataset, columns, unique_together)
    if len(typed) < min_rows:
        fail(dataset, None, None, f"only {len(typed)} rows; at least {min_rows} are needed", min_rows_hint)
    return typed
