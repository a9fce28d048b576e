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
        # the pipeline's tag on every node; the input checks also carry input_check (qeu_kedro.preflight)
        assert {frozenset(n.tags - {"input_check"}) for n in nodes} == {frozenset({name})}
    assert "bge_finetune.metrics" in pipelines["movie_comparison"].inputs()
    assert {"movie_comparison.summary", "movie_comparison.figure"} <= pipelines["movie_comparison"].all_outputs()


def test_check_namespaces_takes_every_namespace_and_its_parents_and_suggests_the_closest():
    import pytest

    from qeu_kedro.session import check_namespaces

    pipe = Pipeline(
        [
            Node(_identity, "a", "b", name="fit", namespace="runs.level2"),
            Node(_identity, "b", "c", name="plain"),
            Node(_identity, "c", "d", name="score", namespace="base"),
        ]
    )
    check_namespaces(["runs", "runs.level2", "base"], pipe, ["demo"])
    check_namespaces(None, pipe, ["demo"])
    with pytest.raises(
        ValueError,
        match=r"^No node of the pipelines demo is in the namespace 'runs\.levl2' \(--namespaces\)\. "
        r"Did you mean 'runs\.level2'\? Their namespaces: base, runs, runs\.level2\.$",
    ):
        check_namespaces(["base", "runs.levl2"], pipe, ["demo"])
    with pytest.raises(ValueError, match=r"'zzz' \(--namespaces\)\. Their namespaces: base, runs, runs\.level2\.$"):
        check_namespaces(["zzz"], pipe, ["demo"])
    with pytest.raises(ValueError, match=r"Their namespaces: none: their nodes are in no namespace"):
        check_namespaces(["base"], Pipeline([Node(_identity, "a", "b", name="plain")]), ["demo"])


def test_kedro_run_with_a_mistyped_namespace_lists_the_namespaces(project):
    """`kedro run --namespaces bsae` got Kedro's "Pipeline does not contain nodes with the following namespaces:
    ['bsae']", raised by its filter before any project hook runs; settings.SESSION_CLASS is the project's way in."""
    from click.testing import CliRunner
    from kedro.framework.cli.project import run
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    result = CliRunner().invoke(run, ["--pipelines", "ridge_analysis", "--namespaces", "bsae"])
    assert isinstance(result.exception, ValueError), result.output
    assert str(result.exception) == (
        "No node of the pipelines ridge_analysis is in the namespace 'bsae' (--namespaces). Did you mean 'base'? "
        "Their namespaces: base, finetuned."
    )
    assert not (project / "data" / "02_intermediate").exists() and not (project / "data" / ".runs").exists()
