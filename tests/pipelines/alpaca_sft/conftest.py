"""Fixtures of the alpaca_sft tests: the sample sheet and the pipeline's base parameters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def params() -> dict:
    """conf/base/parameters_alpaca_sft.yml (plain YAML: no interpolations in it)."""
    return yaml.safe_load((REPO / "conf" / "base" / "parameters_alpaca_sft.yml").read_text(encoding="utf-8"))[
        "alpaca_sft"
    ]


@pytest.fixture
def sheet() -> pd.DataFrame:
    from qeu_kedro.sample_data.alpaca import make_alpaca

    return make_alpaca()
