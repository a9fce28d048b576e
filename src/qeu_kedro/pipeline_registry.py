"""Project pipelines: every folder under ``pipelines/`` with a ``create_pipeline`` is found."""

import difflib
from pathlib import Path

from kedro.framework.project import find_pipelines
from kedro.framework.project import pipelines as registry
from kedro.pipeline import Pipeline

PIPELINES_DIR = Path(__file__).parent / "pipelines"


def pipeline_names() -> list[str]:
    """The pipelines there are: folders under ``pipelines/`` with a ``pipeline.py``, and ``__default__``."""
    return sorted(p.parent.name for p in PIPELINES_DIR.glob("*/pipeline.py")) + ["__default__"]


def check_requested(requested: list[str] | None) -> None:
    """Fail on a ``--pipelines`` name that is no pipeline, with the closest name and the list."""
    names = pipeline_names()
    for name in requested or []:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"Unknown pipeline '{name}' (--pipelines).{hint} Pipelines: {', '.join(names)}.")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` runs them all."""
    # Kedro imports only the requested pipelines, and reports a missing one as a failed import.
    check_requested(getattr(registry, "_requested_pipelines", None))
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
