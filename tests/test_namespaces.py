"""The modular-pipeline convention: namespace = pipeline name, parameters and shared datasets keep their names."""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import modular


def _identity(*args):
    return args[0]


def test_modular_prefixes_own_datasets_keeps_parameters_and_shared_names_and_tags_nodes():
    template = Pipeline(
        [
            Node(_identity, ["raw_in", "params:demo.block"], "step", name="first"),
            Node(_identity, ["step", "shared_model", "params:demo"], ["metrics", "shared_out"], name="second"),
        ]
    )
    pipe = modular(template, "demo", inputs={"raw_in", "shared_model"}, outputs={"shared_out"})
    assert pipe.inputs() == {"raw_in", "shared_model", "params:demo.block", "params:demo"}
    assert pipe.outputs() == {"demo.metrics", "shared_out"}
    assert {n.name for n in pipe.nodes} == {"demo.first", "demo.second"}
    assert {frozenset(n.tags) for n in pipe.nodes} == {frozenset({"demo"})}
    assert {n.namespace for n in pipe.nodes} == {"demo"}


def test_registered_modular_pipelines_use_their_own_name_as_namespace():
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    from tests.conftest import REPO

    bootstrap_project(REPO)
    for name in ("bge_finetune", "alpaca_sft", "movie_comparison"):
        nodes = pipelines[name].nodes
        assert {n.namespace for n in nodes} == {name}
        assert {frozenset(n.tags) for n in nodes} == {frozenset({name})}
    assert "bge_finetune.metrics" in pipelines["movie_comparison"].inputs()
    assert {"movie_comparison.summary", "movie_comparison.figure"} <= pipelines["movie_comparison"].all_outputs()
