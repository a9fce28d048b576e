"""Input checks before the first save (:mod:`qeu_kedro.preflight`): in a run of several pipelines, a bad
input of one stops the run before another has written anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from qeu_kedro.preflight import INPUT_CHECK, run_checks_first, save_before_check
from qeu_kedro.validation import RawDataError
from tests.conftest import run_kedro


def _pipeline(name: str) -> Pipeline:
    import importlib

    from qeu_kedro.pipeline_registry import pipeline_names

    if name != "__default__":
        return importlib.import_module(f"qeu_kedro.pipelines.{name}").create_pipeline()
    return sum((_pipeline(n) for n in pipeline_names() if n != "__default__"), Pipeline([]))


@pytest.mark.parametrize(
    "name", ["alpaca_sft", "bge_finetune", "jrte_sentiment", "movie_embedding", "ridge_analysis", "__default__"]
)
def test_every_check_node_and_what_it_waits_for_is_tagged(name):
    """The preflight reruns the tagged nodes: each must be a cheap check whose ancestors are checks too."""
    pipeline = _pipeline(name)
    parents = pipeline.node_dependencies
    for node in pipeline.nodes:
        if node.name.split(".")[-1].startswith("check_"):
            assert INPUT_CHECK in node.tags, node.name
        if INPUT_CHECK in node.tags:
            for parent in parents[node]:
                assert INPUT_CHECK in parent.tags, f"{node.name} waits for untagged {parent.name}"


class Recording(AbstractDataset):
    """A dataset that is not in memory (as a file is) and records its saves."""

    def __init__(self, saved: list[str]) -> None:
        self.saved = saved

    def _load(self):
        raise AssertionError("not read")

    def _save(self, data) -> None:
        self.saved.append(data)

    def _describe(self) -> dict:
        return {}


def _toy(saved: list[str], fail: bool) -> tuple[Pipeline, DataCatalog]:

    def check(x: int) -> int:
        if fail:
            raise RawDataError("dataset 'raw', column 'x', row 0: bad")
        return x

    pipeline = Pipeline(
        [
            Node(lambda x: x + 1, "raw_a", "out", name="a_writes"),
            Node(lambda x: x, "raw_b", "b0", name="b_first", tags=INPUT_CHECK),
            Node(check, "b0", "b1", name="z_check", tags=INPUT_CHECK),
        ]
    )
    catalog = DataCatalog({"raw_a": MemoryDataset(1), "raw_b": MemoryDataset(2), "out": Recording(saved)})
    return pipeline, catalog


def test_a_save_before_a_check_is_found_in_either_order():
    pipeline, catalog = _toy([], fail=False)
    assert save_before_check(pipeline, catalog, sequential=False).name == "a_writes"
    # sequential order: level 0 holds a_writes and b_first (by name), z_check comes after a_writes
    assert save_before_check(pipeline, catalog, sequential=True).name == "a_writes"
    checks_only = Pipeline([n for n in pipeline.nodes if n.name != "a_writes"])
    assert save_before_check(checks_only, catalog) is None


def test_a_failing_check_stops_before_anything_is_saved():
    saved: list[str] = []
    pipeline, catalog = _toy(saved, fail=True)
    with pytest.raises(RawDataError, match="column 'x', row 0"):
        run_checks_first(pipeline, catalog)
    assert saved == []
    pipeline, catalog = _toy(saved, fail=False)
    run_checks_first(pipeline, catalog)  # passes, saves nothing
    assert saved == []


def test_a_check_waiting_for_an_untagged_node_is_refused():
    pipeline = Pipeline(
        [
            Node(lambda x: x, "raw", "mid", name="heavy"),
            Node(lambda x: x, "mid", "checked", name="check", tags=INPUT_CHECK),
            Node(lambda x: x, "raw", "out", name="a_writes"),
        ]
    )
    catalog = DataCatalog({"raw": MemoryDataset(1), "out": Recording([])})
    with pytest.raises(ValueError, match="not tagged 'input_check': heavy"):
        run_checks_first(pipeline, catalog, sequential=False)


def test_a_bad_split_of_one_pipeline_stops_a_run_of_two_before_the_other_writes(project: Path):
    """bge_finetune saves its train/test pairs (second node) before alpaca_sft's split check (fourth) in
    Kedro's order; that check refusing the run must leave nothing written."""
    with pytest.raises(RawDataError, match="eval_size"):
        run_kedro(
            project, params={"alpaca_sft": {"split": {"eval_size": 29}}}, pipeline_names=["bge_finetune", "alpaca_sft"]
        )
    written = sorted(
        str(p.relative_to(project)) for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts
    )
    assert written == []
