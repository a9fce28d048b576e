"""Parallel first runs (issue 16): several ``kedro run`` started at once on a fresh copy of the project.

Each trial copies the project (conf, shipped raw data, pyproject; no mlflow.db yet) to a new
folder and starts ``--concurrency`` runs of the two check nodes of ``ridge_analysis`` at the
same moment: each run goes through the whole MLflow set-up (store, experiment, run, params),
which is what raced on a fresh clone. Prints one line per trial and a summary::

    nice -n 10 python benchmarks/parallel_first_runs.py --trials 10 --concurrency 3
    nice -n 10 python benchmarks/parallel_first_runs.py --trials 1 --concurrency 10

``--src`` runs another checkout's package (e.g. the code before the fix) instead of this one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NODES = "base.check_ratings,base.check_users"


def fresh_copy(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO / "conf", dest / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir()
    shutil.copytree(REPO / "data" / "01_raw", dest / "data" / "01_raw")
    (dest / "src").mkdir()
    return dest


def trial(root: Path, concurrency: int, src: Path) -> list[tuple[int, str]]:
    """Start ``concurrency`` runs at once in a fresh copy; (return code, last error line) of each."""
    project = fresh_copy(root)
    env = {**os.environ, "PYTHONPATH": str(src), "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "kedro", "run", "--pipelines", "ridge_analysis", "--nodes", NODES]
    procs = [
        subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(concurrency)
    ]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        lines = [line for line in err.splitlines() if "Error" in line or "Exception" in line]
        results.append((proc.returncode, lines[-1].strip() if lines else ""))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--src", type=Path, default=REPO / "src")
    args = parser.parse_args()
    ok = total = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="parallel-first-runs-") as scratch:
        for t in range(args.trials):
            results = trial(Path(scratch) / f"trial{t}", args.concurrency, args.src.resolve())
            good = sum(code == 0 for code, _ in results)
            ok, total = ok + good, total + len(results)
            errors = sorted({msg for code, msg in results if code != 0})
            print(f"trial {t}: {good}/{len(results)} runs succeeded" + (f"; {errors}" if errors else ""), flush=True)
    trials_ok = ok == total
    print(
        f"{ok}/{total} runs succeeded over {args.trials} trials of {args.concurrency} at once "
        f"({time.perf_counter() - started:.0f} s){'' if trials_ok else ' -- FAILURES'}"
    )


if __name__ == "__main__":
    main()
