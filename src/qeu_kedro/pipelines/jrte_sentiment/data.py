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


def blank_names_problem(classes: list[Any]) -> str | None:
    """What is wrong with class names that are empty or only spaces (None when there are none): the predictions'
    CSV reads an empty name back as missing (its ``na_values``), so every sentence of that class would be an
    error and the evaluation would fail sorting it against the other names."""
    blank = [c for c in classes if isinstance(c, dict) and isinstance(c.get("name"), str) and not c["name"].strip()]
    if not blank:
        return None
    values = [c.get("value") for c in blank]
    return (
        f"the classes of value {values} have an empty name {[c['name'] for c in blank]!r}, which the predictions' "
        "CSV would read back as a missing value; give each class a name that is not blank, e.g. name: neutral"
    )


def check_task(task: dict[str, Any]) -> None:
    """Refuse a schema the pipeline would misread: fewer than two classes, a value that is not a whole
    number (``"1"`` and ``1`` would be two labels here and one in the corpus), a name that is not text (YAML
    reads ``name: 0`` as a number, which the predictions' CSV and the reports' sorting would not keep) or is empty
    (:func:`blank_names_problem`), repeated
    values or names, an annotator count that is not a whole number above 0 (or null)."""
    values, names = [c["value"] for c in task["classes"]], class_names(task)
    not_int = [v for v in values if not isinstance(v, int) or isinstance(v, bool)]
    if not_int:
        raise ValueError(
            f"parameters jrte_sentiment.task.classes: each value must be the whole number the corpus's label "
            f'column holds, found {not_int!r}. Write it without quotes (value: 1, not value: "1").'
        )
    not_str = [n for n in names if not isinstance(n, str)]
    if not_str:
        raise ValueError(
            f"parameters jrte_sentiment.task.classes: each name must be text (the predictions, reports and matrices "
            f'carry it as text), found {not_str!r}. Quote it: name: "{not_str[0]}", not name: {not_str[0]}.'
        )
    blank = blank_names_problem(task["classes"])
    if blank:
        raise ValueError(f"parameters jrte_sentiment.task.classes: {blank}.")
    if len(values) < 2 or len(set(values)) != len(values) or len(set(names)) != len(names):
        raise ValueError(
            f"parameters jrte_sentiment.task.classes need at least two classes with distinct values and names, "
            f"found values {values} and names {names}."
        )
    annotators = task.get("annotators")
    if annotators is not None and (isinstance(annotators, bool) or not isinstance(annotators, int) or annotators < 1):
        raise ValueError(
            f"parameters jrte_sentiment.task.annotators: the number of votes every row's judges sum to is a whole "
            f"number above 0, or null for a corpus without a fixed panel (not checked); found {annotators!r}."
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


#: More votes than this for one label in one row is a broken file, not a corpus (JRTE has 3 annotators; with
#: task.annotators set, the sum is checked against it too).
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
    """Votes per class (columns ``votes_<name>``), failing at the first bad JSON, unknown label or row whose
    votes do not sum to ``task["annotators"]`` (None or absent: not checked)."""
    columns = pn_columns(task)
    annotators = task.get("annotators")
    values = [str(c["value"]) for c in task["classes"]]
    counts = np.zeros((len(judges), len(values)), int)
    for i, raw in enumerate(judges):
        try:
            votes = json.loads(raw, object_pairs_hook=_no_repeated_keys)
        except json.JSONDecodeError as exc:
            fail(DATASET, "judges", i, f"not valid JSON ({exc.msg} at character {exc.pos}): {raw!r}", columns[3].hint)
        except _RepeatedKey as exc:
            fail(DATASET, "judges", i, f"label {exc.args[0]!r} is counted twice: {raw!r}", columns[3].hint)
        except (ValueError, RecursionError) as exc:
            # Python's limit on the digits of an integer (a ValueError), or objects nested past the recursion limit
            shown = raw if len(raw) <= 80 else f"{raw[:60]!r}... ({len(raw)} characters)"
            fail(
                DATASET,
                "judges",
                i,
                f"not readable as JSON vote counts ({type(exc).__name__}): {shown}",
                columns[3].hint,
            )
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
        if annotators is not None and sum(votes.values()) != annotators:
            fail(
                DATASET,
                "judges",
                i,
                f"the votes sum to {sum(votes.values())}, not to the corpus's {annotators} annotators: {raw!r}",
                "Each annotator votes once per row: correct the judges of that row, or set parameters "
                "jrte_sentiment.task.annotators to the corpus's panel size (null for a corpus without a fixed panel).",
            )
        counts[i] = [votes.get(v, 0) for v in values]
    return pd.DataFrame(counts, columns=[f"votes_{n}" for n in class_names(task)])


def check_pn(pn: pd.DataFrame, task: dict[str, Any]) -> pd.DataFrame:
    """Check the raw ``pn`` table against the task's labels; add ``label_name``, votes, ``agreement``, ``length``.

    Args:
        pn: the raw table (id, label, text, judges, usage).
        task: ``classes``, a list of ``{value, name}``: the corpus's label values and their names;
            ``annotators``, the number of votes every row's judges sum to (None or absent: not checked).

    Raises:
        RawDataError: a missing column, a label not in the configured set, an unknown usage, a split
            (train, dev, test) with no row, a duplicate id, judges that are not a JSON object of vote counts of configured
            labels or whose votes do not sum to ``annotators``; the message names the dataset, the column and the
            first bad row.
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
    _check_label_against_votes(checked["label"], votes, task)
    _check_classes_per_split(checked, task)
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


def _check_label_against_votes(labels: pd.Series, votes: pd.DataFrame, task: dict[str, Any]) -> None:
    """Refuse a row whose label got fewer votes than another label (a tie at the top is a valid majority)."""
    column = {int(c["value"]): j for j, c in enumerate(task["classes"])}
    own = votes.to_numpy()[np.arange(len(labels)), [column[int(v)] for v in labels]]
    below = np.flatnonzero(own < votes.to_numpy().max(axis=1))
    if len(below):
        i = int(below[0])
        fail(
            DATASET,
            "label",
            i,
            f"label {int(labels.iloc[i])} has {int(own[i])} votes, fewer than another label's "
            f"{int(votes.iloc[i].max())} (votes {votes.iloc[i].to_dict()}) "
            f"({len(below)} such rows)",
            "The label is the annotators' majority: correct the label or the judges of that row.",
        )


def _check_classes_per_split(checked: pd.DataFrame, task: dict[str, Any]) -> None:
    """Every configured class in every split: a class absent from dev or test scores F1 = 0 in macro-F1 whatever
    the model does (a perfect classifier would get (k - 1) / k), and one absent from train is never learnt."""
    present = checked.groupby("usage")["label_name"].agg(set)
    for split in ("train", "dev", "test"):
        missing = [n for n in class_names(task) if n not in present[split]]
        if missing:
            fail(
                DATASET,
                "label",
                None,
                f"the {split} split (usage '{split}') has no row of the configured classes {missing}",
                "Each split needs every class of parameters jrte_sentiment.task.classes; add rows of "
                "that class to the split, or remove the class from the task.",
            )


def stratified_counts(class_sizes: pd.Series, cap: int) -> pd.Series:
    """Rows to keep per class so that they sum to exactly ``cap``, in proportion to ``class_sizes``.

    Largest remainder (Hamilton): each class gets the whole part of its share ``cap * size / total``, and
    the rows still missing go one each to the classes with the largest fractional parts (ties: the
    class listed first). No class gets more rows than it has, and every class gets at least one row
    when the cap is at least the number of classes.
    """
    quota = class_sizes.to_numpy(np.float64) * cap / class_sizes.sum()
    counts = np.floor(quota).astype(int)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: cap - counts.sum()]] += 1
    # a class the split has keeps at least one row when the cap allows one per class (check_pn has made
    # sure every class is there; a cap must not take one out again): the row comes from the largest class
    sizes = class_sizes.to_numpy()
    if cap >= int((sizes > 0).sum()):
        for j in np.flatnonzero((counts == 0) & (sizes > 0)):
            counts[int(np.argmax(counts))] -= 1
            counts[j] = 1
    return pd.Series(counts, index=class_sizes.index)


def split_pn(pn: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split by ``usage`` into train, dev and test; ``params["max_rows"]`` caps a split (stratified, seeded).

    A cap makes a bounded run (CI) on the real corpus: the capped split has exactly ``cap`` rows, each
    label's share as in the whole split (:func:`stratified_counts`), drawn with ``params["seed"]``;
    ``null`` keeps the whole split.
    """
    out = []
    for split in ("train", "dev", "test"):
        part = pn[pn["usage"] == split]  # not empty: check_pn has seen every split
        cap = (params.get("max_rows") or {}).get(split)
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(
                f"parameters jrte_sentiment.split.max_rows.{split}: a cap is a whole number of rows above 0, or null "
                f"for the whole split; found {cap!r}."
            )
        if cap is not None and len(part) > cap:
            counts = stratified_counts(part["label"].value_counts(sort=False).sort_index(), cap)
            part = pd.concat(
                [
                    part[part["label"] == label].sample(n=int(n), random_state=params["seed"])
                    for label, n in counts.items()
                ]
            ).sort_index()
        out.append(part.reset_index(drop=True))
        logger.info("%s: %d rows", split, len(out[-1]))
    return tuple(out)
