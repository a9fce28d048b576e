"""The task's schema (labels and their names, from parameters), the raw ``pn`` table's checks and the split."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.stats import MIN_UNITS
from qeu_kedro.validation import Column, check_table, fail

logger = logging.getLogger(__name__)

#: The columns every prediction table starts with (``p_<class>`` columns follow when the model gives them).
PREDICTION_COLUMNS = ["split", "id", "text", "true", "predicted", "confidence", "length", "agreement"]

NAMESPACE = "jrte_sentiment"  # the pipeline's namespace: its datasets' and parameters' names and its figures' titles
DATASET = "pn"


def class_names(task: dict[str, Any]) -> list[str]:
    """The class names in class-index order (the classifier's head, every report and matrix)."""
    return [c["name"] for c in task["classes"]]


def name_of_value(task: dict[str, Any]) -> dict[int, str]:
    """Corpus label value -> class name."""
    return {int(c["value"]): c["name"] for c in task["classes"]}


def check_task(task: dict[str, Any]) -> None:
    """Refuse a schema the pipeline would misread: fewer than two classes, a value that is not a whole
    number (``"1"`` and ``1`` would be two labels here and one in the corpus), repeated values or names."""
    values, names = [c["value"] for c in task["classes"]], class_names(task)
    not_int = [v for v in values if not isinstance(v, int) or isinstance(v, bool)]
    if not_int:
        raise ValueError(
            f"parameters jrte_sentiment.task.classes: each value must be the whole number the corpus's label "
            f'column holds, found {not_int!r}. Write it without quotes (value: 1, not value: "1").'
        )
    if len(values) < 2 or len(set(values)) != len(values) or len(set(names)) != len(names):
        raise ValueError(
            f"parameters jrte_sentiment.task.classes need at least two classes with distinct values and names, "
            f"found values {values} and names {names}."
        )


def pn_columns(task: dict[str, Any]) -> tuple[Column, ...]:
    """What each column of ``pn`` must hold under the configured label set."""
    labels = ", ".join(f"{c['value']} ({c['name']})" for c in task["classes"])
    return (
        Column("id", "str", unique=True),
        Column(
            "label",
            "int",
            allowed=tuple(name_of_value(task)),
            hint=f"The configured labels (parameters jrte_sentiment.task.classes) are {labels}.",
        ),
        Column("text", "str"),
        Column("judges", "str", hint='judges holds the annotators\' JSON vote counts, e.g. {"1": 2, "0": 1}.'),
        Column("usage", "str", allowed=("train", "dev", "test"), hint="usage names the split: train, dev or test."),
    )


#: More votes than this for one label in one row is a broken file, not a corpus (JRTE has 3 annotators).
MAX_VOTES = 2**31


class _RepeatedKey(ValueError):
    pass


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice (``json`` would keep the last silently)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen[key] = value
    return seen


def _parse_judges(judges: pd.Series, task: dict[str, Any]) -> pd.DataFrame:
    """Votes per class (columns ``votes_<name>``), failing at the first bad JSON or unknown label."""
    columns = pn_columns(task)
    values = [str(c["value"]) for c in task["classes"]]
    counts = np.zeros((len(judges), len(values)), int)
    for i, raw in enumerate(judges):
        try:
            votes = json.loads(raw, object_pairs_hook=_no_repeated_keys)
        except json.JSONDecodeError as exc:
            fail(DATASET, "judges", i, f"not valid JSON ({exc.msg} at character {exc.pos}): {raw!r}", columns[3].hint)
        except _RepeatedKey as exc:
            fail(DATASET, "judges", i, f"label {exc.args[0]!r} is counted twice: {raw!r}", columns[3].hint)
        if (
            not isinstance(votes, dict)
            or not votes
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_VOTES for v in votes.values())
            or sum(votes.values()) == 0
        ):
            fail(DATASET, "judges", i, f"expected a JSON object of vote counts, found {raw!r}", columns[3].hint)
        unknown = sorted(set(votes) - set(values))
        if unknown:
            fail(DATASET, "judges", i, f"votes for labels {unknown} that are not configured: {raw!r}", columns[1].hint)
        counts[i] = [votes.get(v, 0) for v in values]
    return pd.DataFrame(counts, columns=[f"votes_{n}" for n in class_names(task)])


def check_pn(pn: pd.DataFrame, task: dict[str, Any]) -> pd.DataFrame:
    """Check the raw ``pn`` table against the task's labels; add ``label_name``, votes, ``agreement``, ``length``.

    Args:
        pn: the raw table (id, label, text, judges, usage).
        task: ``classes``, a list of ``{value, name}``: the corpus's label values and their names.

    Raises:
        RawDataError: a missing column, a label not in the configured set, an unknown usage, a split
            (train, dev, test) with no row, a duplicate id or judges that are not a JSON object of vote counts of configured
            labels; the message names the dataset, the column and the first bad row.
    """
    check_task(task)
    columns = pn_columns(task)
    if isinstance(pn, pd.DataFrame) and not pd.api.types.is_integer_dtype(pn.index):
        # pandas puts the extra leading fields of a row longer than the named columns into the index
        fail(
            DATASET,
            None,
            None,
            f"rows have more than the {len(columns)} tab-separated fields "
            f"{[c.name for c in columns]} (an extra column, or a tab inside a text): the fields are shifted, "
            f"row 0 starts with {pn.index[0]!r}",
            "Remove the extra field; pn.tsv has exactly five fields per line.",
        )
    checked = check_table(pn, DATASET, columns)
    checked["label_name"] = checked["label"].map(name_of_value(task))
    votes = _parse_judges(checked["judges"], task)
    counts = checked["usage"].value_counts()
    for split in ("train", "dev", "test"):  # here, not at the split: before anything else runs
        if split not in counts:
            fail(DATASET, "usage", None, f"no row has usage '{split}'", "Each split (train, dev, test) needs rows.")
    for split in ("dev", "test"):  # each is scored with intervals, which need MIN_UNITS sentences
        if counts[split] < MIN_UNITS:
            fail(
                DATASET,
                "usage",
                None,
                f"only {counts[split]} rows have usage '{split}'; its intervals need at least {MIN_UNITS}",
                f"Give the {split} split more rows.",
            )
    checked = pd.concat([checked, votes], axis=1)
    checked["n_judges"] = votes.sum(axis=1)
    checked["agreement"] = votes.max(axis=1) / checked["n_judges"]
    checked["length"] = checked["text"].str.len()
    logger.info(
        "pn: %d rows, %s; labels %s",
        len(checked),
        checked["usage"].value_counts().to_dict(),
        checked["label_name"].value_counts().to_dict(),
    )
    return checked.drop(columns="judges")


def split_pn(pn: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split by ``usage`` into train, dev and test; ``params["max_rows"]`` caps a split (stratified, seeded).

    A cap makes a bounded run (CI) on the real corpus; ``null`` keeps the whole split.
    """
    out = []
    for split in ("train", "dev", "test"):
        part = pn[pn["usage"] == split]  # not empty: check_pn has seen every split
        cap = (params.get("max_rows") or {}).get(split)
        if cap and len(part) > cap:
            frac = cap / len(part)
            part = part.groupby("label", group_keys=False).sample(frac=frac, random_state=params["seed"])
        out.append(part.reset_index(drop=True))
        logger.info("%s: %d rows", split, len(out[-1]))
    return tuple(out)
