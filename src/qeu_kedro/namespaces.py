"""Namespaces of the project's modular pipelines, and the one way they are built.

The movie pipelines run twice, as ``base`` (the pretrained model) and ``finetuned`` (the model
``bge_finetune`` writes). ``bge_finetune``, ``alpaca_sft`` and ``movie_comparison`` each run once in
a namespace named after the pipeline, so their datasets are ``<pipeline>.<name>`` and kedro-viz
draws each as one collapsible box. Every node is tagged with its pipeline's name.

The movie pipelines' raw-input nodes (``check_ratings``, ``check_movies``, ...) sit inside each
namespace, so a run of both namespaces checks the same raw tables twice. That is the price of
``kedro run --namespaces base`` (or ``finetuned``) working alone: Kedro 1.7's filter
(``Pipeline.only_nodes_with_namespaces``) keeps only nodes whose namespace is the one asked
for, so a shared check node outside the namespaces would be dropped and its in-memory output
missing (kedro-org/kedro#4507), and a node has one namespace, so it cannot serve both.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from kedro.pipeline import Pipeline

MOVIE_NAMESPACES: tuple[str, ...] = ("base", "finetuned")


def modular(
    template: Pipeline,
    namespace: str,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    tag: str | None = None,
) -> Pipeline:
    """``template`` in ``namespace``, its nodes tagged ``tag`` (default: the namespace).

    Every parameter keeps its name (``params:bge_finetune`` stays ``params:bge_finetune``: the
    parameter files are per pipeline already); ``inputs`` and ``outputs`` are datasets shared with
    other pipelines, which keep their names too. Every other dataset becomes ``<namespace>.<name>``.
    """
    parameters = {name for name in template.inputs() if name.startswith("params:")}
    return Pipeline(
        template,
        namespace=namespace,
        inputs=set(inputs),
        outputs=set(outputs),
        parameters=parameters,
        tags=tag or namespace,
    )


@contextmanager
def dotted_names_allowed() -> Iterator[None]:
    """Silence Kedro's warning about a '.' in a dataset name: a modular pipeline that reads
    another namespace's dataset (``base.embedding_model``, ``bge_finetune.metrics``) names it in full."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        yield
