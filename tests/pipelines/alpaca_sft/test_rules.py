"""The reasoning rule engine: conditions on any columns -> text appended; idempotent."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca
from qeu_kedro.sample_data.alpaca import LANGUAGES, RULE_HITS
from qeu_kedro.validation import RawDataError

OPEN = "Don't output the same answer over and over again unnecessarily."
CREATIVE = (
    "You should create sentences with correct grammar using free ideas within the framework specified by the user."
)


def _frame(rows):
    return pd.DataFrame(rows, columns=["category", "uniqueness", "language", "reasoning"])


def test_a_rule_applies_only_where_all_its_conditions_hold():
    frame = _frame(
        [
            ("open_qa", "simple", "en", ""),
            ("open_qa", "complex", "en", ""),
            ("creative", "simple", "ja", "Given."),
            ("closed_qa", "simple", "zh", ""),
        ]
    )
    rules = {"separator": " ", "rules": [{"when": {"category": "open_qa", "uniqueness": "simple"}, "append": "A."}]}
    out = apply_reasoning_rules(frame, rules)
    assert out["reasoning"].tolist() == ["A.", "", "Given.", ""]
    assert frame["reasoning"].tolist() == ["", "", "Given.", ""]  # the input is not modified


def test_conditions_on_any_column_and_lists_of_values():
    frame = _frame(
        [("open_qa", "simple", "ja", "x"), ("creative", "complex", "zh", ""), ("open_qa", "simple", "en", "")]
    )
    rules = {
        "separator": " / ",
        "rules": [{"when": {"language": ["ja", "zh"]}, "append": "Answer in the user's language."}],
    }
    out = apply_reasoning_rules(frame, rules)
    assert out["reasoning"].tolist() == ["x / Answer in the user's language.", "Answer in the user's language.", ""]


def test_running_the_rules_twice_is_idempotent(sheet, params):
    once = apply_reasoning_rules(
        check_alpaca(sheet, params["schema"], params["category_rules"]), params["reasoning_rules"]
    )
    twice = apply_reasoning_rules(once, params["reasoning_rules"])
    pd.testing.assert_frame_equal(once, twice)
    assert twice["reasoning"].str.count(re.escape(OPEN)).max() == 1


def test_the_original_rules_on_the_sample(sheet, params):
    checked = check_alpaca(sheet, params["schema"], params["category_rules"])
    out = apply_reasoning_rules(checked, params["reasoning_rules"])
    has_open = out["reasoning"].str.contains(OPEN, regex=False)
    has_creative = out["reasoning"].str.contains(CREATIVE, regex=False)
    want_open = (out["category"] == "open_qa") & (out["uniqueness"] == "simple")
    want_creative = (out["category"] == "creative") & (out["uniqueness"] == "simple")
    assert has_open.tolist() == want_open.tolist()
    assert has_creative.tolist() == want_creative.tolist()
    assert want_open.sum() == RULE_HITS[("open_qa", "simple")] * len(LANGUAGES)
    assert want_creative.sum() == RULE_HITS[("creative", "simple")] * len(LANGUAGES)
    # An existing reasoning is kept, and the sentence follows it after the separator.
    first = out.iloc[0]
    assert first["reasoning"] == f"{checked.iloc[0]['reasoning']} {OPEN}"
    # Rows the rules do not touch keep their reasoning exactly.
    untouched = ~(want_open | want_creative)
    assert out.loc[untouched, "reasoning"].tolist() == checked.loc[untouched, "reasoning"].tolist()


def test_a_rule_on_an_unknown_column_is_a_clear_error(sheet, params):
    rules = {"separator": " ", "rules": [{"when": {"topic": "x"}, "append": "A."}]}
    with pytest.raises(RawDataError, match="column 'topic'.*does not have"):
        apply_reasoning_rules(check_alpaca(sheet, params["schema"], params["category_rules"]), rules)


def test_a_rule_without_conditions_is_an_error(sheet, params):
    with pytest.raises(RawDataError, match="no 'when' conditions"):
        apply_reasoning_rules(
            check_alpaca(sheet, params["schema"], params["category_rules"]),
            {"separator": " ", "rules": [{"when": {}, "append": "A."}]},
        )
