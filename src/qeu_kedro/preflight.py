"""Every input check of a ``kedro run`` before the run's first save.

Each pipeline checks its raw inputs in its first nodes, so a pipeline run alone stops on bad input
before it writes anything. Kedro runs the nodes of several pipelines in one topological order,
though: in ``kedro run`` (all pipelines) ``bge_finetune`` saves its train/test split and
``jrte_sentiment`` trains and saves a classifier before ``alpaca_sft``'s split check runs, so a bad
sheet stopped the run with other pipelines' outputs already written.

The check nodes are tagged :data:`INPUT_CHECK` (tests keep every ancestor of a check node tagged
too: they are all cheap, pure functions of raw inputs and parameters). When some node that saves a
file could run before some check (:func:`save_before_check`), :func:`run_checks_first` runs the
tagged nodes first, in memory, saving nothing; a bad input then stops the run before any node has
run. The run itself runs them again: their cost, logged, is paid twice (seconds on MovieLens 100K),
and not at all where the order already checks before it saves (one pipeline, sequential runner).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)

INPUT_CHECK = "input_check"  # the tag of a node that checks raw input (kedro-viz can filter on it)


def _saves(catalog: Any, name: str) -> bool:
    """Whether ``name`` is saved somewhere (a catalog entry, or a dataset factory, that is not in memory)."""
    from kedro.io import MemoryDataset

    try:
        dataset = catalog.get(name)
    except Exception:  # noqa: BLE001 - a name the catalog cannot resolve is a memory dataset at run time
        return False
    return dataset is not None and not isinstance(dataset, MemoryDataset)


def _ancestors(pipeline: Any) -> dict[Any, set[Any]]:
    """Each node's ancestors (every node it waits for, directly or not)."""
    parents = pipeline.node_dependencies
    found: dict[Any, set[Any]] = {}
    for node in pipeline.nodes:  # topological order: a node's parents are done before it
        found[node] = set().union(*({p, *found[p]} for p in parents[node])) if parents[node] else set()
    return found


def check_nodes(pipeline: Any) -> list[Any]:
    """The run's nodes tagged :data:`INPUT_CHECK`, in the order the sequential runner runs them."""
    return [node for node in pipeline.nodes if INPUT_CHECK in node.tags]


def save_before_check(pipeline: Any, catalog: Any, sequential: bool = True) -> Any | None:
    """A node that saves a file and could run before a check node, or None.

    ``sequential``: the order is the sequential runner's (``pipeline.nodes``); otherwise (parallel or
    thread runner) any node that saves and does not wait for every check node could."""
    checks = check_nodes(pipeline)
    if not checks:
        return None
    nodes = pipeline.nodes
    if sequential:
        last_check = max(nodes.index(node) for node in checks)
        for node in nodes[:last_check]:
            if any(_saves(catalog, name) for name in node.outputs):
                return node
        return None
    ancestors = _ancestors(pipeline)
    for node in nodes:
        if any(_saves(catalog, name) for name in node.outputs) and any(
            check is not node and check not in ancestors[node] for check in checks
        ):
            return node
    return None


def run_checks_first(pipeline: Any, catalog: Any, sequential: bool = True) -> None:
    """Run the check nodes of ``pipeline`` (and their ancestors) in memory before the run, when a node
    that saves could otherwise run before one of them; saves nothing. A failing check raises its own
    error (which names the dataset, column and row), before any node has run.

    Raises:
        ValueError: a check node waits for a node that is not tagged :data:`INPUT_CHECK` (it would run
            that node twice: tag it if it is a cheap check, or make the check independent of it).
    """
    early = save_before_check(pipeline, catalog, sequential)
    if early is None:
        return
    checks = check_nodes(pipeline)
    ancestors = _ancestors(pipeline)
    needed = set(checks).union(*(ancestors[node] for node in checks))
    untagged = sorted(node.name for node in needed if INPUT_CHECK not in node.tags)
    if untagged:
        raise ValueError(
            f"The input checks wait for node(s) not tagged '{INPUT_CHECK}': {', '.join(untagged)}. Tag them "
            f"'{INPUT_CHECK}' if they are cheap checks of raw input, or make the checks independent of them."
        )
    order = [node for node in pipeline.nodes if node in needed]
    uses = Counter(name for node in order for name in node.inputs)
    values: dict[str, Any] = {}
    start = time.perf_counter()
    # The run checks again and logs what it keeps or drops: this pass stays quiet except for its errors.
    logging.disable(logging.WARNING)
    try:
        for node in order:
            inputs = {}
            for name in node.inputs:
                if name not in values:
                    values[name] = catalog.load(name)
                inputs[name] = values[name]
            try:
                outputs = node.run(inputs)
            except Exception:
                logging.disable(logging.NOTSET)
                logger.error("Input check '%s' failed before any node ran: nothing was written.", node.name)
                raise
            for name in node.inputs:
                uses[name] -= 1
                if uses[name] == 0:
                    del values[name]  # no later check reads it: free it
            values.update({name: value for name, value in outputs.items() if uses[name] > 0})
    finally:
        logging.disable(logging.NOTSET)
    logger.info(
        "Input checks run first (%d nodes, %.1f s): '%s' would have saved before the last check ran. "
        "All passed; the run now runs them again in their place.",
        len(order),
        time.perf_counter() - start,
        early.name,
    )
