"""What the input checks run first cost (``qeu_kedro.preflight``): per environment, whether the default run
(all pipelines) needs them and how long they take, against the same check nodes' own time in the run.

    python benchmarks/preflight_time.py [local movielens jrte dask ...]

For each environment: the first node that would save before a check ran (the reason the checks run first), the
time of ``run_checks_first`` on the default pipeline (every input check node and what it waits for, in memory),
and whether ``movie_embedding,ridge_analysis`` (the scale runs) needs it at all. Best of three; the first
call also pays imports, so it is run once before timing. Real-data environments read ``../shared/data``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(envs: list[str]) -> None:
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from qeu_kedro.preflight import check_nodes, run_checks_first, save_before_check

    bootstrap_project(Path.cwd())
    print("| env | check nodes | would save first | checks run first (s), best of 3 | movie_embedding+ridge_analysis |")
    print("| --- | ---: | --- | ---: | --- |")
    for env in envs:
        with KedroSession.create(project_path=Path.cwd(), env=None if env == "local" else env) as session:
            catalog = session.load_context().catalog
            default = pipelines["__default__"]
            run_checks_first(default, catalog)  # imports, file caches
            times = []
            for _ in range(3):
                start = time.perf_counter()
                run_checks_first(default, catalog)
                times.append(time.perf_counter() - start)
            early = save_before_check(default, catalog)
            movies = save_before_check(pipelines["movie_embedding"] + pipelines["ridge_analysis"], catalog)
            print(
                f"| {env} | {len(check_nodes(default))} | {early.name if early else 'nothing'} | {min(times):.2f} "
                f"| {'runs them first' if movies else 'not needed: checks come first'} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["local", "movielens", "jrte", "dask"])
