"""Parsing pn.tsv: the catalog's reading of the file, the checks and the split."""

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro_datasets.pandas import CSVDataset

from qeu_kedro.pipelines.jrte_sentiment.data import check_pn, split_pn
from qeu_kedro.sample_data.jrte import make_pn, write_pn
from qeu_kedro.validation import RawDataError
from tests.conftest import REPO, load_config

TASK = load_config(REPO, None, "parameters")["jrte_sentiment"]["task"]
TWO_CLASS = {"corpus": "hand-made", "classes": [{"value": 0, "name": "negative"}, {"value": 1, "name": "positive"}]}


def pn_dataset(path: Path) -> CSVDataset:
    """The catalog's own entry for ``pn`` (its load_args), pointed at ``path``."""
    entry = dict(load_config(REPO)["jrte_sentiment.pn"])
    return CSVDataset(filepath=str(path), load_args=entry["load_args"])


def write_tsv(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "pn.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = [
    'a1\t1\t駅から近くて便利でした。\t{"0": 1, "1": 2}\ttrain',
    'a2\t0\t朝食は普通でした。\t{"0": 3}\tdev',
    'a3\t-1\t部屋が "汚くて" 残念でした。\t{"-1": 3}\ttest',
    'a4\t1\tNA\t{"1": 3}\ttrain',
]


# enough dev and test rows for their intervals (check_pn asks for MIN_UNITS = 6 of each), every class in every split
SIZED = [
    f'x{i}\t{label}\t良い。\t{{"{label}": 3}}\t{split}'
    for i, (label, split) in enumerate(
        [(v, s) for s in ("dev", "test") for v in (1, 0, -1, 1, 0, -1)] + [(0, "train"), (-1, "train")]
    )
]


def test_catalog_reads_a_headerless_tsv_with_quotes_and_na_words(tmp_path):
    pn = check_pn(pn_dataset(write_tsv(tmp_path, GOOD + SIZED)).load(), TASK).iloc[:4]
    assert list(pn["id"]) == ["a1", "a2", "a3", "a4"]
    assert list(pn["label"]) == [1, 0, -1, 1]
    assert list(pn["label_name"]) == ["positive", "normal", "negative", "positive"]
    assert pn[["votes_negative", "votes_normal", "votes_positive"]].to_numpy().tolist() == [
        [0, 1, 2],
        [0, 3, 0],
        [3, 0, 0],
        [0, 0, 3],
    ]
    assert pn.loc[2, "text"] == '部屋が "汚くて" 残念でした。'  # quotes kept as written
    assert pn.loc[3, "text"] == "NA"  # a word, not a missing value
    assert list(pn["n_judges"]) == [3, 3, 3, 3]
    assert pn["agreement"].tolist() == pytest.approx([2 / 3, 1, 1, 1])
    assert pn.loc[0, "length"] == len("駅から近くて便利でした。")


@pytest.mark.parametrize(
    ("line", "column", "problem"),
    [
        ('b1\t2\t良い。\t{"1": 3}\ttrain', "label", "unknown value 2"),
        ('b1\tpositive\t良い。\t{"1": 3}\ttrain', "label", "expected a number"),
        ('b1\t1\t良い。\t{"1": 3\ttrain', "judges", "not valid JSON"),
        ("b1\t1\t良い。\t[3]\ttrain", "judges", "JSON object of vote counts"),
        ('b1\t1\t良い。\t{"1": "three"}\ttrain', "judges", "JSON object of vote counts"),
        ('b1\t1\t良い。\t{"1": 3}\tvalidation', "usage", "unknown value 'validation'"),
        ('b1\t1\t\t{"1": 3}\ttrain', "text", "missing or blank"),
        ('a1\t1\t良い。\t{"1": 3}\ttrain', "id", "duplicate id 'a1'"),
    ],
)
def test_bad_values_name_dataset_column_and_row(tmp_path, line, column, problem):
    frame = pn_dataset(write_tsv(tmp_path, GOOD + [line])).load()
    with pytest.raises(RawDataError) as info:
        check_pn(frame, TASK)
    message = str(info.value)
    assert "dataset 'pn'" in message
    assert f"column '{column}'" in message
    assert "row 4" in message  # the fifth line, 0-based
    assert problem in message


def test_a_missing_column_is_named(tmp_path):
    # A file with four fields a line: the fifth column (usage) comes out empty.
    lines = ["\t".join(line.split("\t")[:4]) for line in GOOD]
    with pytest.raises(RawDataError, match=r"dataset 'pn', column 'usage', row 0.*missing"):
        check_pn(pn_dataset(write_tsv(tmp_path, lines)).load(), TASK)
    frame = pd.DataFrame({"id": ["x"], "label": [1], "text": ["良い"], "usage": ["train"]})
    with pytest.raises(RawDataError, match=r"dataset 'pn', column 'judges'.*required column is missing"):
        check_pn(frame, TASK)


def test_a_label_outside_the_configured_set_is_refused(tmp_path):
    # the corpus's 3 labels under a 2-class schema: -1 is not configured
    frame = pn_dataset(
        write_tsv(
            tmp_path,
            [
                'c1\t1\t良い。\t{"1": 3}\ttrain',
                'c2\t0\t悪い。\t{"0": 3}\tdev',
                'c3\t-1\t最悪。\t{"0": 3}\ttest',
            ],
        )
    ).load()
    with pytest.raises(
        RawDataError, match=r"dataset 'pn', column 'label', row 2.*unknown value -1.*0 \(negative\), 1 \(positive\)"
    ):
        check_pn(frame, TWO_CLASS)
    # a vote for a label that is not configured is refused too
    frame = pn_dataset(write_tsv(tmp_path, ['c1\t1\t良い。\t{"1": 2, "-1": 1}\ttrain'])).load()
    with pytest.raises(
        RawDataError, match=r"dataset 'pn', column 'judges', row 0.*labels \['-1'\] that are not configured"
    ):
        check_pn(frame, TWO_CLASS)
    with pytest.raises(ValueError, match="at least two classes"):
        check_pn(frame, {"classes": [{"value": 1, "name": "positive"}, {"value": 1, "name": "also"}]})


def test_split_uses_usage_and_caps_are_stratified_and_seeded():
    pn = check_pn(make_pn(n_rows=300), TASK)
    train, dev, test = split_pn(pn, {"seed": 0, "max_rows": {"train": None, "dev": None, "test": None}})
    assert (train["usage"] == "train").all() and (dev["usage"] == "dev").all() and (test["usage"] == "test").all()
    assert len(train) + len(dev) + len(test) == 300
    capped = split_pn(pn, {"seed": 0, "max_rows": {"train": 60, "dev": None, "test": None}})[0]
    assert len(capped) == 60  # exactly the cap
    # each label's share as in the whole split (train: 60, 72, 85 of 217 -> quotas 16.6, 19.9, 23.5)
    assert capped["label"].value_counts().to_dict() == {-1: 17, 0: 20, 1: 23}
    assert set(capped["id"]) <= set(train["id"])
    assert set(capped["label"]) == {1, 0, -1}
    again = split_pn(pn, {"seed": 0, "max_rows": {"train": 60, "dev": None, "test": None}})[0]
    assert capped["id"].tolist() == again["id"].tolist()
    other = split_pn(pn, {"seed": 1, "max_rows": {"train": 60, "dev": None, "test": None}})[0]
    assert capped["id"].tolist() != other["id"].tolist()
    for cap in (7, 31, 101, 216):  # the old per-class sample(frac) rounding gave 102 rows for a cap of 101
        assert len(split_pn(pn, {"seed": 0, "max_rows": {"train": cap, "dev": cap, "test": None}})[0]) == cap
    for cap in (0, -1, 2.5, True):  # 0 was read as "no cap"
        with pytest.raises(ValueError, match=rf"split\.max_rows\.train: .*found {cap!r}"):
            split_pn(pn, {"seed": 0, "max_rows": {"train": cap, "dev": None, "test": None}})
    raw = make_pn(n_rows=300)
    with pytest.raises(RawDataError, match="column 'usage'.*no row has usage 'dev'"):
        check_pn(raw[raw["usage"] != "dev"].reset_index(drop=True), TASK)  # at the check, not at the split


def test_a_dev_or_test_split_too_small_for_its_intervals_is_refused(tmp_path):
    with pytest.raises(
        RawDataError, match=r"column 'usage'.*only 1 rows have usage 'dev'; its intervals need at least 6"
    ):
        check_pn(pn_dataset(write_tsv(tmp_path, GOOD)).load(), TASK)


def test_judges_that_count_a_label_twice_or_absurdly_often_are_refused():
    raw = make_pn(n_rows=30)
    raw.loc[4, "judges"] = '{"1": 3, "1": 0, "0": 1}'
    with pytest.raises(RawDataError, match=r"column 'judges', row 4 .*label '1' is counted twice"):
        check_pn(raw, TASK)
    raw.loc[4, "judges"] = '{"1": 99999999999999999999999}'
    with pytest.raises(RawDataError, match=r"column 'judges', row 4 .*expected a JSON object of vote counts"):
        check_pn(raw, TASK)


@pytest.mark.parametrize(
    ("judges", "total"), [('{"1": 1}', 1), ('{"1": 2, "0": 2}', 4), ('{"1": 1000000, "0": 999999}', 1999999)]
)
def test_judges_whose_votes_do_not_sum_to_the_annotators_are_refused(judges, total):
    """Every real row's votes sum to JRTE's 3 annotators; a row of 1, 4 or 1999999 votes passed and changed its
    n_judges, its agreement (Level 3's buckets) and its soft-label target without a word."""
    assert TASK["annotators"] == 3
    raw = make_pn(n_rows=120)
    row = int(raw.index[raw["label"] == 1][0])
    raw.loc[row, "judges"] = judges
    with pytest.raises(
        RawDataError,
        match=rf"dataset 'pn', column 'judges', row {row} .*the votes sum to {total}, not to the corpus's 3 "
        r"annotators.*jrte_sentiment\.task\.annotators",
    ):
        check_pn(raw, TASK)
    # a corpus without a fixed panel (annotators: null) is not checked; the row keeps its own count
    assert check_pn(raw, {**TASK, "annotators": None}).loc[row, "n_judges"] == total


@pytest.mark.parametrize("annotators", [0, 2.5, "3", True])
def test_an_annotator_count_that_is_not_a_whole_number_above_0_is_refused(annotators):
    with pytest.raises(ValueError, match=r"jrte_sentiment\.task\.annotators: .*found"):
        check_pn(make_pn(n_rows=30), {**TASK, "annotators": annotators})


def test_stratified_counts_sum_to_the_cap_by_largest_remainder():
    from qeu_kedro.pipelines.jrte_sentiment.data import stratified_counts

    # quotas 101 * (34, 33, 33) / 100 = 34.34, 33.33, 33.33: 100 whole rows, the 101st to the largest remainder
    assert stratified_counts(pd.Series([34, 33, 33], index=[-1, 0, 1]), 101).tolist() == [35, 33, 33]
    # quotas 80 * (160, 261, 691) / 1112 = 11.51, 18.78, 49.71 (the real dev split capped at 80, which gave 81)
    assert stratified_counts(pd.Series([160, 261, 691], index=[-1, 0, 1]), 80).tolist() == [11, 19, 50]
    assert stratified_counts(pd.Series([1, 1, 1], index=[-1, 0, 1]), 2).tolist() == [1, 1, 0]  # a tie: first listed


def test_a_class_missing_from_a_split_is_refused():
    raw = make_pn(n_rows=300)
    for split in ("train", "dev", "test"):
        gone = raw[~((raw["usage"] == split) & (raw["label"] == 0))].reset_index(drop=True)
        with pytest.raises(
            RawDataError,
            match=rf"dataset 'pn', column 'label': the {split} split \(usage '{split}'\) has no row of the "
            r"configured classes \['normal'\]",
        ):
            check_pn(gone, TASK)


def test_a_label_that_is_not_its_judges_majority_is_refused():
    raw = make_pn(n_rows=300)
    row = int(raw.index[raw["label"] == 0][3])
    raw.loc[row, "judges"] = '{"-1": 3}'
    with pytest.raises(
        RawDataError, match=rf"dataset 'pn', column 'label', row {row} .*label 0 has 0 votes, fewer than another"
    ):
        check_pn(raw, TASK)
    raw.loc[row, "judges"] = '{"-1": 2, "0": 1}'
    with pytest.raises(RawDataError, match=rf"row {row} .*label 0 has 1 votes, fewer than another label's 2"):
        check_pn(raw, TASK)
    raw.loc[row, "judges"] = '{"-1": 1, "0": 1, "1": 1}'  # a tie at the top is a majority the label may take
    assert check_pn(raw, TASK).loc[row, "agreement"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("judges", ['{"1": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000])
def test_judges_too_long_for_python_to_read_name_the_row(judges):
    raw = make_pn(n_rows=30)
    raw.loc[4, "judges"] = judges
    with pytest.raises(RawDataError, match=r"dataset 'pn', column 'judges', row 4 .*not readable as JSON vote counts"):
        check_pn(raw, TASK)


@pytest.mark.parametrize("value", ["1", 1.0, True])
def test_a_class_value_that_is_not_a_whole_number_is_refused(value):
    task = {
        "classes": [{"value": -1, "name": "negative"}, {"value": 0, "name": "normal"}, {"value": value, "name": "p"}]
    }
    with pytest.raises(ValueError, match=r"each value must be the whole number"):
        check_pn(make_pn(n_rows=30), task)


@pytest.mark.parametrize("name", [0, 1.5, True, None])
def test_a_class_name_that_is_not_text_is_refused(name):
    """YAML reads `name: 0` as a number: the schema passed, Level 1's predictions were written, and the first
    evaluation crashed sorting 0 against 'negative'."""
    task = {"classes": [{"value": -1, "name": "negative"}, {"value": 0, "name": name}, {"value": 1, "name": "p"}]}
    with pytest.raises(ValueError, match=rf'each name must be text.*Quote it: name: "{name}"'):
        check_pn(make_pn(n_rows=30), task)


@pytest.mark.parametrize("name", ["", " ", "\t"])
def test_a_blank_class_name_is_refused(name):
    """An empty name passed the schema, and the predictions' CSV (na_values [""]) read it back as NaN: the first
    evaluation crashed sorting NaN against the other names."""
    task = {"classes": [{"value": -1, "name": "negative"}, {"value": 0, "name": name}, {"value": 1, "name": "p"}]}
    with pytest.raises(
        ValueError,
        match=r"parameters jrte_sentiment\.task\.classes: the classes of value \[0\] have an empty name .*read back as "
        r"a missing value; give each class a name that is not blank",
    ):
        check_pn(make_pn(n_rows=30), task)


def test_shipped_sample_is_what_the_generator_writes(tmp_path):
    written = write_pn(tmp_path)[0]
    assert written.read_bytes() == (REPO / "data" / "01_raw" / "pn.tsv").read_bytes()
    pn = check_pn(pn_dataset(written).load(), TASK)
    assert len(pn) == 360
    assert set(pn["usage"]) == {"train", "dev", "test"}
    assert set(pn["label_name"]) == {"positive", "normal", "negative"}
    # planted: mixed / hedged sentences have 2 of 3 votes
    assert (pn["agreement"] < 1).mean() > 0.15
    raw = written.read_text(encoding="utf-8").splitlines()
    assert all(len(line.split("\t")) == 5 for line in raw)
    assert all(isinstance(json.loads(line.split("\t")[3]), dict) for line in raw)


@pytest.mark.real_data
def test_real_pn_parses(shared_data):
    pn = check_pn(pn_dataset(shared_data / "jrte" / "pn.tsv").load(), TASK)
    assert len(pn) == 5553
    assert pn["usage"].value_counts().to_dict() == {"train": 3888, "dev": 1112, "test": 553}
    assert set(pn["label"]) == {1, 0, -1}
    assert pn["agreement"].between(1 / 3, 1).all()
    # every row's label is its judges' majority (37 rows tie at the top): no real row is refused


@pytest.mark.real_data
def test_bounded_real_split_has_exactly_its_caps(shared_data):
    pn = check_pn(pn_dataset(shared_data / "jrte" / "pn.tsv").load(), TASK)
    caps = {"train": 160, "dev": 80, "test": 120}  # test_pipeline.test_bounded_real_run's
    parts = split_pn(pn, {"seed": 42, "max_rows": caps})
    assert [len(p) for p in parts] == [160, 80, 120]


def test_a_cap_keeps_every_class_a_split_has():
    """A class of 5 rows in 200 under a cap of 10: its share (0.25 row) rounded to none, and the capped test
    split lost the class check_pn had made sure of."""
    from qeu_kedro.pipelines.jrte_sentiment.data import stratified_counts

    counts = stratified_counts(pd.Series({-1: 5, 0: 90, 1: 105}), 10)
    assert counts.to_dict() == {-1: 1, 0: 4, 1: 5} and counts.sum() == 10
    assert stratified_counts(pd.Series({-1: 5, 0: 90, 1: 105}), 2).sum() == 2  # fewer rows than classes: no promise
