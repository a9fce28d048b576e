"""Issue 16's probe classes, run against a checkout's code: refused (and with what message), or accepted.

Each probe breaks one thing in a fresh copy of the project (sample data) and runs the
first nodes that would meet it through a real ``KedroSession``, or calls the dataset or
function concerned. It records whether the run was refused, the last line of the error,
and how many files the run wrote outside ``data/01_raw`` (the stand-in embeddings excepted)::

    PYTHONPATH=/old/src python benchmarks/input_probes.py --label before --project /old
    PYTHONPATH=src              python benchmarks/input_probes.py --label after
    python benchmarks/input_probes.py --table     # the Markdown table of both

Results go to ``benchmarks/results_input_probes_<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks"
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


SOURCE = REPO  # the checkout whose conf and sample data are copied (--project)


def fresh(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy2(SOURCE / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(SOURCE / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(SOURCE / "data" / "01_raw", root / "data" / "01_raw")
    (root / "src").mkdir()
    return root


def stand_in_embeddings(project: Path, keep: float = 1.0) -> None:
    """Random movie embeddings for ``base`` (the ridge needs them; no model is loaded)."""
    movies = pd.read_csv(project / "data/01_raw/movies.csv")
    movies = movies.iloc[: int(len(movies) * keep)]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        rng.normal(size=(len(movies), 8)).astype(np.float32), columns=[f"title_embedding_{i}" for i in range(8)]
    )
    table.insert(0, "movie_id", movies["movie_id"].to_numpy())
    (project / "data/04_feature/base").mkdir(parents=True, exist_ok=True)
    table.to_parquet(project / "data/04_feature/base/movie_embeddings.parquet")


def written(project: Path) -> list[str]:
    return outputs(str(p.relative_to(project / "data")) for p in (project / "data").rglob("*") if p.is_file())


def outputs(paths: Any) -> list[str]:
    """Outputs among ``paths`` (relative to data/): not the raw inputs, the stand-in embeddings or the
    run records (``.runs/``, which name what a failed run wrote)."""
    return sorted(p for p in paths if not p.startswith(("01_raw/", "04_feature/", ".runs/")))


def run(project: Path, env: str | None = None, params: dict | None = None, **kwargs: Any) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        session.run(**kwargs)


def edit_csv(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    change(pd.read_csv(path, keep_default_na=False, na_values=[""])).to_csv(path, index=False)


RIDGE_CHECKS = {"pipeline_names": ["ridge_analysis"], "node_names": ["base.check_users", "base.check_ratings"]}
RIDGE_INPUT = {
    "pipeline_names": ["ridge_analysis"],
    "node_names": ["base.check_users", "base.check_ratings", "base.build_model_input"],
}
BGE_SPLIT = {"pipeline_names": ["bge_finetune"], "node_names": ["bge_finetune.make_pairs", "bge_finetune.split_pairs"]}


def set_cell(column: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({column: object})
        df.loc[row, column] = value
        return df

    return change


def probe_gender_x(p: Path) -> Any:
    edit_csv(p / "data/01_raw/users.csv", set_cell("gender", 3, "X"))
    run(p, **RIDGE_CHECKS)


def probe_occupation_space(p: Path) -> Any:
    edit_csv(p / "data/01_raw/users.csv", set_cell("occupation", 3, "Engineer "))
    run(p, **RIDGE_CHECKS)


def probe_rated_twice(p: Path) -> Any:
    edit_csv(
        p / "data/01_raw/ratings.csv",
        lambda df: pd.concat([df, df.iloc[[0]].assign(rating=df["rating"].iloc[0] % 5 + 1)]),
    )
    run(p, **RIDGE_CHECKS)


def probe_half_movies(p: Path) -> Any:
    stand_in_embeddings(p, keep=0.5)
    run(p, **RIDGE_INPUT)


def probe_title_na(p: Path) -> Any:
    edit_csv(p / "data/01_raw/movies.csv", set_cell("title", 3, "NA"))
    run(p, pipeline_names=["movie_embedding"], node_names=["base.check_movies"])


def probe_pn_extra_column(p: Path) -> Any:
    path = p / "data/01_raw/pn.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] += "\textra"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run(p, pipeline_names=["jrte_sentiment"], node_names=["jrte_sentiment.check_pn"])


def probe_three_pairs(p: Path) -> Any:
    path = p / "data/01_raw/pairs.csv"
    pd.read_csv(path).head(3).to_csv(path, index=False)
    run(p, **BGE_SPLIT)


def probe_param_typo(p: Path) -> Any:
    run(p, params={"ridge_analysis": {"alpah": 1.0}}, **RIDGE_CHECKS)


def probe_alpha_negative(p: Path) -> Any:
    run(p, params={"ridge_analysis": {"alpha": -5}}, **RIDGE_CHECKS)


def probe_alpha_five(p: Path) -> Any:
    (p / "conf/local/parameters_ridge_analysis.yml").write_text("ridge_analysis:\n  alpha: five\n")
    run(p, **RIDGE_CHECKS)


def probe_partial_local_block(p: Path) -> Any:
    (p / "conf/local/parameters_ridge_analysis.yml").write_text("ridge_analysis:\n  alpha: 2.0\n")
    stand_in_embeddings(p)
    run(
        p,
        pipeline_names=["ridge_analysis"],
        node_names=["base.check_users", "base.check_ratings", "base.build_model_input", "base.split_ratings"],
    )


def probe_top_k_zero(p: Path) -> Any:
    run(p, params={"ridge_analysis": {"top_k": 0}}, **RIDGE_CHECKS)


def probe_bge_batch_zero(p: Path) -> Any:
    run(p, params={"bge_finetune": {"trainer": {"per_device_train_batch_size": 0}}}, **BGE_SPLIT)


def probe_env_typo(p: Path) -> Any:
    run(p, env="movielen", **RIDGE_CHECKS)


def probe_pipeline_typo(p: Path) -> Any:
    run(p, pipeline_names=["ridge_analisys"])


def probe_corrupt_cache(p: Path) -> Any:
    from qeu_kedro.datasets.embedding_cache import EmbeddingCacheDataset

    path = p / "data/04_feature/base/embedding_cache.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 truncated")
    return f"loaded {len(EmbeddingCacheDataset(str(path)).load())} entries (empty: rebuilt by the run)"


def probe_stale_temp_folder(p: Path) -> Any:
    from qeu_kedro.datasets.lazy_sentence_transformer import LazySentenceTransformerDataset

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = p / f"data/06_models/.bge_finetuned.tmp-{dead.pid}-x"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"0" * 1024)
    LazySentenceTransformerDataset(filepath=str(p / "data/06_models/bge_finetuned"), model="bundled:all-MiniLM-L6-v2")
    return "temp folder of the killed save " + ("still there" if stale.exists() else "removed")


def probe_identity_readme(p: Path) -> Any:
    from qeu_kedro.datasets.lazy_sentence_transformer import folder_identity
    from qeu_kedro.models import resolve_model

    source = Path(resolve_model("bundled:all-MiniLM-L6-v2"))
    copy = shutil.copytree(source, p / "retrained")
    (copy / "README.md").write_text("Trained at 17:03, 312 s.")
    same = folder_identity(copy) == folder_identity(source)
    return "identity " + ("unchanged: cache kept" if same else "changed: cache invalidated")


PROBES = {
    "users: gender `X`": probe_gender_x,
    "users: occupation `Engineer ` (trailing space)": probe_occupation_space,
    "ratings: a (user, movie) rated twice, other stars": probe_rated_twice,
    "movies: half deleted (about half the ratings lose their movie)": probe_half_movies,
    "movies: a title `NA`": probe_title_na,
    "pn.tsv: an extra column": probe_pn_extra_column,
    "pairs: a file of 3 rows": probe_three_pairs,
    "--params ridge_analysis.alpah=1.0 (typo)": probe_param_typo,
    "--params ridge_analysis.alpha=-5": probe_alpha_negative,
    "conf/local: alpha: five": probe_alpha_five,
    "conf/local: a partial ridge_analysis block": probe_partial_local_block,
    "--params ridge_analysis.top_k=0": probe_top_k_zero,
    "--params bge_finetune.trainer.per_device_train_batch_size=0": probe_bge_batch_zero,
    "--env movielen (typo)": probe_env_typo,
    "--pipeline ridge_analisys (typo)": probe_pipeline_typo,
    "corrupt embedding cache": probe_corrupt_cache,
    "temp folder of a killed model save": probe_stale_temp_folder,
    "retrained model, only README differs": probe_identity_readme,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="after")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--project", type=Path, default=REPO, help="checkout whose conf and sample data are used")
    args = parser.parse_args()
    global SOURCE
    SOURCE = args.project.resolve()
    if args.table:
        table()
        return
    logging.disable(logging.WARNING)
    results = {}
    with tempfile.TemporaryDirectory(prefix="input-probes-") as scratch:
        for i, (name, probe) in enumerate(PROBES.items()):
            if args.only and not any(o in name for o in args.only):
                continue
            project = fresh(Path(scratch) / f"p{i}")
            cwd = os.getcwd()
            os.chdir(project)
            try:
                note = probe(project)
                outcome = {"refused": False, "message": note or "ran"}
            except BaseException as err:  # noqa: BLE001 - the outcome is what we measure
                last = str(err).strip().splitlines() or [""]
                outcome = {
                    "refused": True,
                    "error": type(err).__name__,
                    "message": " ".join(line.strip() for line in last)[:400],
                }
                if not isinstance(err, Exception):
                    traceback.print_exc()
            finally:
                os.chdir(cwd)
            outcome["written"] = written(project)
            results[name] = outcome
            print(
                f"{name}: {'REFUSED' if outcome['refused'] else 'accepted'} | {outcome['message'][:160]} | "
                f"wrote {len(outcome['written'])} file(s)",
                flush=True,
            )
    path = OUT / f"results_input_probes_{args.label}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"-> {path}")


#: What a trustworthy outcome is, per probe: refused with a message matching the pattern (the
#: dataset and column, or the key and where it came from), or accepted with a note matching it.
EXPECTED: dict[str, tuple[bool, str]] = {
    "users: gender `X`": (True, r"dataset 'users', column 'gender', row 3 .*unknown value 'X'"),
    "users: occupation `Engineer ` (trailing space)": (
        True,
        r"dataset 'users', column 'occupation', row 3 .*'Engineer '",
    ),
    "ratings: a (user, movie) rated twice, other stars": (
        True,
        r"dataset 'ratings', column 'user_id, movie_id', row \d+",
    ),
    "movies: half deleted (about half the ratings lose their movie)": (
        True,
        r"dataset 'ratings', column 'movie_id'.*max_join_loss",
    ),
    "movies: a title `NA`": (False, r"ran"),
    "pn.tsv: an extra column": (True, r"dataset 'pn'.*more than the 5 tab-separated fields"),
    "pairs: a file of 3 rows": (True, r"dataset 'bge_pairs'.*only \d+ training pairs"),
    "--params ridge_analysis.alpah=1.0 (typo)": (
        True,
        r"ridge_analysis\.alpah \(from --params\).*did you mean 'ridge_analysis\.alpha'",
    ),
    "--params ridge_analysis.alpha=-5": (True, r"ridge_analysis\.alpha \(from --params\).*greater than 0"),
    "conf/local: alpha: five": (True, r"ridge_analysis\.alpha \(in .*conf/local/parameters_ridge_analysis\.yml\)"),
    "conf/local: a partial ridge_analysis block": (False, r"ran"),
    "--params ridge_analysis.top_k=0": (True, r"ridge_analysis\.top_k \(from --params\)"),
    "--params bge_finetune.trainer.per_device_train_batch_size=0": (
        True,
        r"bge_finetune\.trainer\.per_device_train_batch_size \(from --params\)",
    ),
    "--env movielen (typo)": (True, r"Unknown configuration environment 'movielen'.*Did you mean 'movielens'"),
    "--pipeline ridge_analisys (typo)": (
        True,
        r"Unknown pipeline 'ridge_analisys'.*Did you mean 'ridge_analysis'.*Pipelines:",
    ),
    "corrupt embedding cache": (False, r"loaded 0 entries"),
    "temp folder of a killed model save": (False, r"removed"),
    "retrained model, only README differs": (False, r"unchanged"),
}


def trustworthy(name: str, outcome: dict[str, Any] | None) -> bool:
    import re

    refused, pattern = EXPECTED[name]
    if outcome is None or outcome["refused"] != refused:
        return False
    # a refusal must write nothing (the stale temp folder is the probe's own input)
    return bool(re.search(pattern, outcome["message"])) and (not refused or not outputs(outcome["written"]))


def table() -> None:
    sys.path.insert(0, str(REPO / "src"))
    from qeu_kedro.stats import paired_bootstrap

    before = json.loads((OUT / "results_input_probes_before.json").read_text())
    after = json.loads((OUT / "results_input_probes_after.json").read_text())

    def cell(o: dict | None) -> str:
        if o is None:
            return "-"
        head = f"**refused** ({o.get('error')})" if o["refused"] else "accepted"
        files = f"; wrote {len(outputs(o['written']))} file(s)" if outputs(o["written"]) else ""
        return f"{head}: {o['message'][:220].replace('|', '/')}{files}"

    print("| probe | before | after | trustworthy before / after |\n| --- | --- | --- | --- |")
    scores_before, scores_after = [], []
    for name in PROBES:
        ok_b, ok_a = trustworthy(name, before.get(name)), trustworthy(name, after.get(name))
        scores_before.append(float(ok_b))
        scores_after.append(float(ok_a))
        print(
            f"| {name} | {cell(before.get(name))} | {cell(after.get(name))} | {'yes' if ok_b else 'no'} / {'yes' if ok_a else 'no'} |"
        )
    comparison = paired_bootstrap(scores_before, scores_after, n_resamples=10_000, seed=0)
    print()
    print(
        f"Trustworthy outcomes: {int(sum(scores_before))}/{len(PROBES)} before, {int(sum(scores_after))}/{len(PROBES)} after. "
        + comparison.describe("The share of trustworthy outcomes (paired by probe)")
    )


if __name__ == "__main__":
    main()
