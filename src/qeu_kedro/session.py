"""The project's ``KedroSession`` (``settings.SESSION_CLASS``): a ``--namespaces`` name that no node of the
run's pipelines is in is refused with the namespaces there are and the closest one.

Kedro 1.7 filters the pipeline by namespace inside ``KedroSession.run``, before any project hook sees
the run (``before_pipeline_run`` is given the filtered pipeline), and its error names only what it did
not find (``Pipeline does not contain nodes with the following namespaces: ['bsae']``).
``SESSION_CLASS`` is the setting Kedro 1.x gives a project for its session; ``kedro run`` and
``python -m qeu_kedro`` create theirs through it, so this check runs before Kedro's filter there.
A session created as ``KedroSession`` itself (the tests' ``run_kedro``) keeps Kedro's own message.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from typing import Any

from kedro.framework.session import KedroSession
from kedro.pipeline import Pipeline


def _with_parents(namespace: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: Kedro's filter takes a namespace with every one nested in it."""
    parts = namespace.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def check_namespaces(requested: Iterable[str] | None, pipeline: Pipeline, pipeline_names: list[str]) -> None:
    """Fail on a name of ``requested`` that no node of ``pipeline`` (the run's ``pipeline_names``) is in.

    The message lists the namespaces of those pipelines and suggests the closest one.
    """
    known = sorted({ns for node in pipeline.nodes if node.namespace for ns in _with_parents(node.namespace)})
    which = "__default__ (all)" if pipeline_names == ["__default__"] else ", ".join(pipeline_names)
    for name in requested or []:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listed = ", ".join(known) if known else "none: their nodes are in no namespace (leave --namespaces out)"
        raise ValueError(
            f"No node of the pipelines {which} is in the namespace '{name}' (--namespaces).{hint} "
            f"Their namespaces: {listed}."
        )


class ProjectSession(KedroSession):
    """``KedroSession`` whose ``run`` first checks ``namespaces`` against the pipelines it runs."""

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from kedro.framework.project import pipelines

        given = inspect.signature(KedroSession.run).bind(self, *args, **kwargs).arguments
        if given.get("namespaces"):
            names = [given["pipeline_name"]] if given.get("pipeline_name") else list(given.get("pipeline_names") or [])
            # as KedroSession.run does before it reads them: only the requested pipelines are imported
            pipelines.set_requested(names or None)
            run_names = names or ["__default__"]
            if all(name in pipelines for name in run_names):  # else the run itself names the unknown pipeline
                selected = sum((pipelines[name] for name in run_names), Pipeline([]))
                check_namespaces(given["namespaces"], selected, run_names)
        return super().run(*args, **kwargs)
