"""Performance benchmarks of the movie pipelines (issue 6), written to benchmarks/RESULTS_perf.md.

Run from the repository root after ``bash scripts/setup.sh``, with the real data in
``../shared/data`` (or ``QEU_SHARED_DATA``)::

    nice -n 10 python benchmarks/perf.py            # everything (about 10-20 min on 2 cores)
    python benchmarks/perf.py --only ridge scaling  # some parts; see --help

Every measurement runs in a fresh interpreter (``python benchmarks/perf.py child ...``), so
each method's peak memory is its own: the child loads its inputs, resets the kernel's
peak-RSS mark (``/proc/self/clear_refs``), runs the method and reports ``VmHWM``. Times are
wall-clock; on a shared machine they are noisy, so the two methods compared are run
alternately in the same run and ratios are taken from that run. Nothing here is copied
into the repository: the work folder is ``data/benchmarks/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "data" / "benchmarks"
SHARED = Path(os.environ.get("QEU_SHARED_DATA") or REPO.parent / "shared" / "data").resolve()
RESULTS_MD = REPO / "benchmarks" / "RESULTS_perf.md"
RESULTS_JSON = REPO / "benchmarks" / "results_perf.json"
HEAVY = ("torch", "transformers", "sentence_transformers")
RIDGE = {"alpha": 5.0, "fit_intercept": True, "test_size": 0.2, "seed": 42}


def base_ridge_params() -> dict[str, Any]:
    """conf/base's ridge_analysis parameters with RIDGE's values; the join loss is not checked (timings only)."""
    import yaml

    base = yaml.safe_load((REPO / "conf" / "base" / "parameters_ridge_analysis.yml").read_text())["ridge_analysis"]
    return {**base, **RIDGE, "max_join_loss": None}


# users / movies of MovieLens 100K, 1M and 10M: the generated data have the same shape
SCALES = {100_000: (943, 1682), 1_000_000: (6040, 3706), 10_000_000: (69_878, 10_677)}
OCCUPATIONS = 21
EMBEDDING_DIM = 768  # 2 x 384 (title and overview), as with all-MiniLM-L6-v2: 24 + 768 = 792 features
# The shipped catalog loads models lazily; the eager variant (SentenceTransformerDataset,
# which loads torch and the model when the node's inputs are loaded) is the comparison.
EAGER_CATALOG = "".join(
    f"{ns}.embedding_model:\n  type: qeu_kedro.datasets.SentenceTransformerDataset\n  model: bundled:all-MiniLM-L6-v2\n"
    for ns in ("base", "finetuned")
)


# ----------------------------------------------------------------------------- memory helpers
def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak() -> bool:
    """Reset the peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    import resource

    return _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measured(run) -> dict[str, Any]:
    """Time and peak memory of ``run()`` in this process, inputs already loaded."""
    import gc

    gc.collect()
    start_rss = _status("VmRSS")
    reset = reset_peak()
    t0 = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t0
    peak = peak_rss()
    return {
        "seconds": seconds,
        "rss_start_mb": start_rss / 2**20,
        "peak_rss_mb": peak / 2**20,
        "peak_above_start_mb": max(peak - start_rss, 0) / 2**20 if reset else None,
        "result": result,
    }


# ----------------------------------------------------------------------------- inputs
def real_inputs(embeddings_path: Path):
    import pandas as pd

    ratings = pd.read_csv(
        SHARED / "movielens-100k/u.data", sep="\t", header=None, names=["user_id", "movie_id", "rating", "timestamp"]
    )
    users = pd.read_csv(
        SHARED / "movielens-100k/u.user", sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"]
    )
    return ratings, users, pd.read_parquet(embeddings_path)


def generated_inputs(n_ratings: int, seed: int = 0, dim: int = EMBEDDING_DIM):
    """MovieLens-shaped random data: n ratings, users with 21 occupations, 768-dim embeddings."""
    import numpy as np
    import pandas as pd

    n_users, n_movies = SCALES.get(n_ratings, (max(943, n_ratings // 140), max(1682, n_ratings // 900)))
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1),
            "age": rng.integers(7, 74, n_users),
            "gender": rng.choice(["F", "M"], n_users),
            "occupation": rng.choice([f"occupation_{i:02d}" for i in range(OCCUPATIONS)], n_users),
        }
    )
    vectors = rng.standard_normal((n_movies, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = pd.DataFrame(vectors, columns=[f"e{i}" for i in range(dim)])
    embeddings.insert(0, "movie_id", np.arange(1, n_movies + 1))
    weights = rng.normal(0, 3, dim)
    ratings = pd.DataFrame(
        {
            "user_id": rng.integers(1, n_users + 1, n_ratings),
            "movie_id": rng.integers(1, n_movies + 1, n_ratings),
        }
    )
    signal = (vectors @ weights)[ratings["movie_id"].to_numpy() - 1]
    ratings["rating"] = np.clip(np.rint(3.5 + signal + rng.normal(0, 1, n_ratings)), 1, 5).astype(np.int64)
    return ratings, users, embeddings


# ----------------------------------------------------------------------------- methods
def project_method(ratings, users, embeddings) -> dict[str, Any]:
    """build_model_input -> split_ratings -> fit_ridge -> evaluate_ridge, as the pipeline runs them."""
    from qeu_kedro.pipelines.ridge_analysis import nodes

    design, stats = nodes.build_model_input(ratings, users, embeddings, base_ridge_params())
    train, test = nodes.split_ratings(design, RIDGE)
    model = nodes.fit_ridge(train, RIDGE)
    metrics = nodes.evaluate_ridge(model, train, test, stats)
    return {"model": model, "metrics": metrics}


def original_method(ratings, users, embeddings) -> dict[str, Any]:
    """The notebook's method: flatten one row per rating, scikit-learn Ridge, metrics on the rows."""
    import numpy as np
    from sklearn.metrics import mean_squared_error, r2_score

    from qeu_kedro.pipelines.ridge_analysis import reference

    table = reference.build_flat_model_input(ratings, users, embeddings)
    train, test = reference.split_flat(table, RIDGE)
    model = reference.fit_ridge_flat(train, RIDGE)
    metrics: dict[str, Any] = {}
    for name, part in (("train", train), ("test", test)):
        y, y_hat = part["rating"].to_numpy(np.float64), reference.predict_flat(model, part)
        metrics[f"r2_{name}"] = float(r2_score(y, y_hat))
        metrics[f"rmse_{name}"] = float(np.sqrt(mean_squared_error(y, y_hat)))
    return {"model": model, "metrics": metrics}


# ----------------------------------------------------------------------------- children
def child_ridge(args) -> dict[str, Any]:
    if args.source == "real":
        inputs = real_inputs(Path(args.embeddings))
    else:
        inputs = generated_inputs(args.n)
    method = project_method if args.method == "project" else original_method
    method(*generated_inputs(2000, seed=1, dim=16))  # warm-up: libraries and BLAS buffers load before measuring
    out = measured(lambda: method(*inputs))
    result = out.pop("result")
    out["metrics"] = {k: result["metrics"][k] for k in ("r2_train", "r2_test", "rmse_test")}
    out["n_ratings"] = len(inputs[0])
    if args.model_out:
        Path(args.model_out).write_text(json.dumps(result["model"]))
    return out


def child_encode(args) -> dict[str, Any]:
    """texts/s of plain encode (the original: batches of 256) against the node's encoder settings."""
    import statistics

    import numpy as np
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    from qeu_kedro.datasets import SentenceTransformerDataset
    from qeu_kedro.pipelines.movie_embedding.nodes import encode_texts
    from qeu_kedro.pipelines.movie_embedding.overviews import check_movie_overviews, check_movies, match_overviews
    from qeu_kedro.settings import CONFIG_LOADER_ARGS

    # the movielens environment's movie table: its raw movie list and TMDB overviews through the nodes
    os.environ["QEU_SHARED_DATA"] = str(SHARED)
    config = OmegaConfigLoader(str(REPO / "conf"), env="movielens", **CONFIG_LOADER_ARGS)
    catalog, params = DataCatalog.from_config(config["catalog"]), config["parameters"]["movie_overviews"]
    overviews = check_movie_overviews(catalog.load("movie_overviews"), params)
    movies = match_overviews(check_movies(catalog.load("movies")), overviews, params)
    texts = movies["title"].tolist() + movies["overview"].tolist()
    model = SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load().model  # the SentenceTransformer
    base = {"batch_size": 256, "normalize_embeddings": True, "show_progress_bar": False}
    variants = {
        "plain encode (batch 256, fp32)": None,
        "length_buckets (fp32)": {"batching": "length_buckets", "max_tokens_per_batch": 4096, "quantize": "none"},
        "length_buckets + int8": {"batching": "length_buckets", "max_tokens_per_batch": 4096, "quantize": "int8"},
    }
    model.encode(texts[:32], batch_size=32)  # warm-up
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):  # alternate the variants so that load on the machine hits all alike
        for name, encoder in variants.items():
            t0 = time.perf_counter()
            if encoder is None:
                v = model.encode(
                    texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
            else:
                v = encode_texts(model, texts, {**base, "encoder": encoder})
            seconds[name].append(time.perf_counter() - t0)
            vectors[name] = np.asarray(v, dtype=np.float32)
    ref = vectors["plain encode (batch 256, fp32)"]
    out = {}
    for name in variants:
        cos = (vectors[name] * ref).sum(axis=1) / (np.linalg.norm(vectors[name], axis=1) * np.linalg.norm(ref, axis=1))
        med = statistics.median(seconds[name])
        out[name] = {
            "texts": len(texts),
            "seconds": seconds[name],
            "texts_per_s": len(texts) / med,
            "cosine_min": float(cos.min()),
            "cosine_mean": float(cos.mean()),
        }
    return out


def child_kedro_run(args) -> dict[str, Any]:
    """One ``kedro run`` in this process; the time of ``session.run`` and whether torch was imported."""
    t_start = time.perf_counter()
    from kedro.framework.hooks import hook_impl
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    class Timer:
        """From the first dataset a node loads to the last output saved: the pipeline's own work."""

        first: float | None = None
        last: float | None = None

        @hook_impl
        def before_dataset_loaded(self, dataset_name):
            self.first = self.first or time.perf_counter()

        @hook_impl
        def after_node_run(self, node):
            self.last = time.perf_counter()

    project = Path(args.project)
    os.chdir(project)
    bootstrap_project(project)
    timer = Timer()
    with KedroSession.create(project_path=project, env=args.env) as session:
        session._hook_manager.register(timer)
        t0 = time.perf_counter()
        session.run(pipeline_names=args.pipeline, namespaces=args.namespaces or None)
        run_seconds = time.perf_counter() - t0
    return {
        "pipeline_seconds": timer.last - timer.first,
        "run_seconds": run_seconds,
        "process_seconds_after_start": time.perf_counter() - t_start,
        "heavy_imported": sorted(m for m in HEAVY if m in sys.modules),
    }


# ----------------------------------------------------------------------------- driver
def run_child(*args: str, timeout: int = 3600) -> dict[str, Any]:
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "QEU_SHARED_DATA": str(SHARED),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "child", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def copy_project(dest: Path, eager: bool) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO / "conf", dest / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir()
    if eager:  # in the movielens env itself: an --env run does not read conf/local
        (dest / "conf" / "movielens" / "catalog_bench_eager.yml").write_text(EAGER_CATALOG)
    shutil.copytree(REPO / "data" / "01_raw", dest / "data" / "01_raw")
    (dest / "src").mkdir()
    return dest


def bench_cache(results: dict) -> Path:
    """movie_embedding on the real data twice per catalog variant; returns the embeddings file."""
    out = {}
    for variant, eager in (
        ("lazy model (shipped catalog, LazySentenceTransformerDataset)", False),
        ("eager model (SentenceTransformerDataset, for comparison)", True),
    ):
        project = copy_project(WORK / ("project_eager" if eager else "project_lazy"), eager)
        runs = []
        for _ in range(2):
            runs.append(
                run_child(
                    "kedro-run",
                    "--project",
                    str(project),
                    "--env",
                    "movielens",
                    "--pipeline",
                    "movie_embedding",
                    "--namespaces",
                    "base",
                )
            )
        out[variant] = {
            "first": runs[0],
            "second": runs[1],
            "ratio_pipeline": runs[1]["pipeline_seconds"] / runs[0]["pipeline_seconds"],
            "ratio_run": runs[1]["run_seconds"] / runs[0]["run_seconds"],
            "ratio_wall": runs[1]["wall_seconds"] / runs[0]["wall_seconds"],
        }
        print(
            f"[cache] {variant}: pipeline {out[variant]['ratio_pipeline']:.3f}, session.run {out[variant]['ratio_run']:.3f}, "
            f"process {out[variant]['ratio_wall']:.3f} of the first run",
            flush=True,
        )
    results["cache"] = out
    return WORK / "project_lazy" / "data/04_feature/movielens/base/movie_embeddings.parquet"


def bench_ridge(results: dict, embeddings: Path, rounds: int) -> None:
    runs: dict[str, list] = {"project": [], "original": []}
    for r in range(rounds):
        for method in ("project", "original"):
            runs[method].append(
                run_child(
                    "ridge",
                    "--method",
                    method,
                    "--source",
                    "real",
                    "--embeddings",
                    str(embeddings),
                    "--model-out",
                    str(WORK / f"ridge_{method}.json"),
                )
            )
            print(
                f"[ridge] {method} round {r}: {runs[method][-1]['seconds']:.2f} s, "
                f"peak {runs[method][-1]['peak_above_start_mb']} MB",
                flush=True,
            )
    import numpy as np

    ours = json.loads((WORK / "ridge_project.json").read_text())
    theirs = json.loads((WORK / "ridge_original.json").read_text())
    a, b = np.asarray(ours["coefficients"]), np.asarray(theirs["coefficients"])
    best = {m: min(v, key=lambda x: x["seconds"]) for m, v in runs.items()}
    results["ridge_real"] = {
        "runs": runs,
        "coef_rel_diff": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
        "intercept_diff": abs(ours["intercept"] - theirs["intercept"]),
        "speedup": min(r["seconds"] for r in runs["original"]) / min(r["seconds"] for r in runs["project"]),
        "speedup_median": float(
            np.median([r["seconds"] for r in runs["original"]]) / np.median([r["seconds"] for r in runs["project"]])
        ),
        "memory_ratio_above_start": max(r["peak_above_start_mb"] for r in runs["original"])
        / max(r["peak_above_start_mb"] for r in runs["project"]),
        "memory_ratio_process_peak": max(r["peak_rss_mb"] for r in runs["original"])
        / max(r["peak_rss_mb"] for r in runs["project"]),
        "best": best,
    }


def bench_scaling(results: dict, sizes: list[int]) -> None:
    out = {}
    for n in sizes:
        row = {"project": run_child("ridge", "--method", "project", "--source", "generated", "--n", str(n))}
        print(
            f"[scaling] {n:,}: project {row['project']['seconds']:.1f} s, peak {row['project']['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        if n <= 100_000:  # the flat matrix: n x 792 float32 plus float64 copies; 1M would need ~20 GB
            row["original"] = run_child("ridge", "--method", "original", "--source", "generated", "--n", str(n))
        out[str(n)] = row
    results["scaling"] = out


def bench_encode(results: dict, rounds: int) -> None:
    results["encode"] = run_child("encode", "--rounds", str(rounds))
    for name, r in results["encode"].items():
        if isinstance(r, dict):
            print(f"[encode] {name}: {r['texts_per_s']:.0f} texts/s, cosine min {r['cosine_min']:.4f}", flush=True)


def bench_startup(results: dict) -> None:
    project = WORK / "project_lazy"  # has the real-data embeddings from bench_cache
    out = {}
    commands = {
        "kedro registry list": ["registry", "list"],
        "kedro viz build": ["viz", "build"],
        "kedro run --env movielens --pipeline ridge_analysis --namespaces base": [
            "run",
            "--env",
            "movielens",
            "--pipeline",
            "ridge_analysis",
            "--namespaces",
            "base",
        ],
    }
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "QEU_SHARED_DATA": str(SHARED)}
    for label, args in commands.items():
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "kedro", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
        modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        out[label] = {
            "wall_seconds": wall,
            "heavy_imported": sorted(m for m in modules if m.split(".")[0] in HEAVY and "." not in m),
        }
        print(f"[startup] {label}: {wall:.1f} s, heavy imports {out[label]['heavy_imported']}", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sentence_transformers"], check=True, capture_output=True)
    out["for comparison: python -c 'import sentence_transformers'"] = {"wall_seconds": time.perf_counter() - t0}
    results["startup"] = out


def checkout() -> str:
    """The commit measured, and whether the working tree differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"commit {commit}" + (" with uncommitted changes" if dirty else " (working tree clean)")


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    import numpy
    import pandas
    import sklearn

    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
    }


def driver(args) -> None:
    if not (SHARED / "movielens-100k" / "u.data").exists():
        sys.exit(f"Real data not found at {SHARED}: put ../shared/data beside the repository or set QEU_SHARED_DATA.")
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = json.loads(RESULTS_JSON.read_text()) if args.only and RESULTS_JSON.exists() else {}
    results["machine"] = machine()
    results["where"] = checkout()
    results["command"] = " ".join(["python", "benchmarks/perf.py", *sys.argv[1:]])
    parts = args.only or ["cache", "ridge", "scaling", "encode", "startup"]
    embeddings = WORK / "project_lazy" / "data/04_feature/movielens/base/movie_embeddings.parquet"
    if "cache" in parts or not embeddings.exists():
        embeddings = bench_cache(results)
    if "ridge" in parts:
        bench_ridge(results, embeddings, args.rounds)
    if "scaling" in parts:
        bench_scaling(results, args.sizes)
    if "encode" in parts:
        bench_encode(results, args.rounds)
    if "startup" in parts:
        bench_startup(results)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS_JSON.write_text(json.dumps(results, indent=1, default=str))
    from report import write_report  # benchmarks/report.py

    write_report(results, RESULTS_MD)
    print(f"wrote {RESULTS_MD.relative_to(REPO)} and {RESULTS_JSON.relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    child = sub.add_parser("child", help="one measurement in this process (used by the driver)")
    child.add_argument("what", choices=["ridge", "encode", "kedro-run"])
    child.add_argument("--method", choices=["project", "original"])
    child.add_argument("--source", choices=["real", "generated"])
    child.add_argument("--embeddings")
    child.add_argument("--model-out")
    child.add_argument("--n", type=int)
    child.add_argument("--rounds", type=int, default=2)
    child.add_argument("--project")
    child.add_argument("--env")
    child.add_argument("--pipeline", nargs="+")
    child.add_argument("--namespaces", nargs="*")
    parser.add_argument("--only", nargs="+", choices=["cache", "ridge", "scaling", "encode", "startup"])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SCALES))
    parser.add_argument("--rounds", type=int, default=2, help="alternating repetitions of compared methods")
    args = parser.parse_args()
    if args.cmd == "child":
        result = {"ridge": child_ridge, "encode": child_encode, "kedro-run": child_kedro_run}[args.what](args)
        print(json.dumps(result, default=float))
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        driver(args)


if __name__ == "__main__":
    main()
