"""Scale of the partitioned ridge (issue 14): time, peak memory and equality with the in-memory solver.

    nice -n 10 python benchmarks/scale.py equality --data data/benchmarks/ml1m
    nice -n 10 python benchmarks/scale.py ridge --data data/benchmarks/ml32m [--cv] [--workers 2]

The data are what ``python -m qeu_kedro.sample_data.ratings_32m`` writes (partitioned Parquet,
git-ignored under data/benchmarks/). ``ridge`` runs the ridge_analysis nodes' partitioned path
(the functions the ``dask`` environment's pipeline calls: build, split, fit, evaluate, and with
``--cv`` the repeated k-fold CV) on a ``LocalCluster`` of ``--workers`` single-threaded worker
processes bound to 127.0.0.1, sampling the resident memory of the client and of every worker
process every 0.2 s. ``equality`` also loads the ratings into pandas and fits the in-memory
exact solver (``nodes.fit_ridge``), for the coefficient difference. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

PARAMS = {
    "alpha": 5.0,
    "fit_intercept": True,
    "test_size": 0.2,
    "seed": 42,
    "cv": {"folds": 5, "repeats": 5, "seed": 42},
}


class PeakMemory:
    """Peak RSS of a set of processes, sampled on a thread; ``pids`` may change while it runs."""

    def __init__(self, period: float = 0.2) -> None:
        import psutil

        self._psutil = psutil
        self.pids: dict[str, int] = {"client": os.getpid()}
        self.peak: dict[str, int] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds (user + system) at the last sample
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)

    def _run(self, period: float) -> None:
        while not self._stop.is_set():
            total = 0
            for name, pid in list(self.pids.items()):
                try:
                    process = self._psutil.Process(pid)
                    rss = process.memory_info().rss
                    times = process.cpu_times()
                except self._psutil.Error:
                    continue
                self.cpu[name] = times.user + times.system
                self.peak[name] = max(self.peak.get(name, 0), rss)
                total += rss
            self.peak_total = max(self.peak_total, total)
            time.sleep(period)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def machine() -> dict[str, object]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "loadavg_before": os.getloadavg(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["equality", "ridge"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GB", help="per worker (Dask pauses at 80 %%, restarts at 95 %%)")
    parser.add_argument("--cv", action="store_true", help="also the 5 x 5-fold CV")
    args = parser.parse_args()

    import dask.dataframe as dd
    import yaml
    from distributed import Client, LocalCluster, get_task_stream

    from qeu_kedro.pipelines.ridge_analysis import nodes
    from qeu_kedro.pipelines.ridge_analysis import partitioned as P

    # conf/base's ridge_analysis with PARAMS' values; the join loss is not checked (timings and equality only)
    conf = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_ridge_analysis.yml"
    params = {**yaml.safe_load(conf.read_text())["ridge_analysis"], **PARAMS, "max_join_loss": None}

    out: dict[str, object] = {"mode": args.mode, "data": str(args.data), "machine": machine()}
    users = pd.read_parquet(args.data / "users.parquet")
    embeddings = pd.read_parquet(args.data / "movie_embeddings.parquet")
    timings: dict[str, float] = {}

    def timed(name, fn, *a):
        start = time.perf_counter()
        result = fn(*a)
        timings[name] = round(time.perf_counter() - start, 2)
        return result

    with (
        PeakMemory() as memory,
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=args.memory_limit,
        ) as cluster,
        Client(cluster) as client,
    ):
        for address, pid in client.run(os.getpid).items():
            memory.pids[f"worker {address.rsplit(':', 1)[-1]}"] = pid
        ratings = dd.read_parquet(str(args.data / "ratings"), columns=["user_id", "movie_id", "rating"])
        # the pipeline's check nodes on partitions, timed apart from the ridge: check_ratings (each partition's
        # cells, each (user, movie) pair once: one pass) and check_rated_users (a pass over the user ids)
        timed("check_ratings", P.check_partitioned_ratings, ratings, params["rating_step"])
        timed("check_rated_users", P.check_partitioned_users, ratings, users)
        start = time.perf_counter()
        with get_task_stream() as stream:
            design, stats = timed("build_model_input", P.build_partitioned_input, ratings, users, embeddings, params)
            train, test = timed("split_ratings", P.split_partitioned, design, params)
            model = timed("fit_ridge", P.fit_partitioned, train, params)
            metrics = timed("evaluate_ridge", P.evaluate_partitioned, model, train, test, stats)
            timings["ridge_total"] = round(time.perf_counter() - start, 2)
            if args.cv:
                cv = timed(
                    "cross_validate_ridge", P.cross_validate_partitioned, design, {"alpha": params["alpha"]}, params
                )
                out["cv_r2_test_mean"] = float(cv["r2_test"].mean())
        sums_tasks = [
            t
            for t in stream.data
            if any(str(k).startswith("('partition_sums") or "partition_sums" in str(k) for k in [t["key"]])
        ]
        if sums_tasks:
            seconds = [
                sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute") for t in sums_tasks
            ]
            out["partition_sums_tasks"] = len(seconds)
            out["partition_sums_seconds_median"] = round(float(np.median(seconds)), 3)
            out["rows_per_partition_median"] = int(np.median(np.diff(design.offsets)))
        out["workers"] = len(client.scheduler_info()["workers"])
    out.update(
        timings=timings,
        metrics={
            k: metrics[k]
            for k in ("r2_train", "r2_test", "n_train", "n_test", "n_ratings_in", "n_users", "n_movies", "n_features")
        },
        partitions=len(design.rows),
        peak_rss_gb={k: round(v / 1e9, 2) for k, v in memory.peak.items()},
        peak_rss_total_gb=round(memory.peak_total / 1e9, 2),
        cpu_seconds={k: round(v, 1) for k, v in memory.cpu.items()},
    )
    if args.mode == "equality":
        start = time.perf_counter()
        table = pd.read_parquet(args.data / "ratings", columns=["user_id", "movie_id", "rating"])
        in_memory, _ = nodes.build_model_input(table, users, embeddings, params)
        reference = nodes.fit_ridge(nodes.split_ratings(in_memory, params)[0], params)
        out["in_memory_seconds"] = round(time.perf_counter() - start, 2)
        assert reference["features"] == model["features"]
        out["max_abs_coef_diff"] = float(np.abs(np.subtract(reference["coefficients"], model["coefficients"])).max())
        out["abs_intercept_diff"] = abs(reference["intercept"] - model["intercept"])
    out["machine"]["loadavg_after"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
