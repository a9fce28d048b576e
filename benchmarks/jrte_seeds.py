"""jrte_sentiment Level 5: how much of a fine-tuning run's test macro-F1 is its seed.

The full real-corpus run trains each run once, with the configured seed (42). This script retrains one
run with other seeds, everything else as committed, and tabulates every seed's dev and test
macro-F1, each seed's paired difference from Level 2 on test, and the seed ensemble (the mean
class probabilities over the seeds, the pipeline's own ``average_runs``). Run it from the
repository root after the full run, whose predictions are Level 2's and the configured seed's member:

    kedro run --env jrte --pipelines jrte_sentiment
    python benchmarks/jrte_seeds.py --run weighted_soft_labels --seeds 1 2 3
    python benchmarks/jrte_seeds.py --run weighted_soft_labels --seeds 1 2 3 --table-only   # no training
    python benchmarks/jrte_seeds.py --pool level2 soft_labels weighted_soft_labels --seeds 1 2 3   # no training
    python benchmarks/jrte_seeds.py --pool level2 soft_labels weighted_soft_labels --seeds 1 2 3 --decision-rule

Each seed is ``kedro run --env jrte --pipelines jrte_sentiment --to-nodes
jrte_sentiment.<run>.evaluate --params <run>.trainer.seed=S,<run>.trainer.data_seed=S`` (the
split, the corpus check and that one run: about 6 min on 2 cores). Its predictions are copied
to ``data/benchmarks/jrte_seeds/<run>_seed<S>.csv`` with the run's start, end and commit; the
full run's own predictions of that run are put back afterwards. The table is printed in
markdown for ``benchmarks/RESULTS_jrte.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "data" / "07_model_output" / "jrte" / "jrte_sentiment"
REPORTING = REPO / "data" / "08_reporting" / "jrte" / "jrte_sentiment"
MODELS = REPO / "data" / "06_models" / "jrte" / "jrte_sentiment"  # level2_classifier (Level 2 saves its model)
FOLDER = REPO / "data" / "benchmarks" / "jrte_seeds"


def _copy(source: Path, target: Path) -> None:
    """A file or a folder (a saved model), replacing the target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def _train(run: str, seed: int) -> None:
    """One seed of ``run``: the kedro command, its predictions and a record of when and where."""
    params = f"jrte_sentiment.{run}.trainer.seed={seed},jrte_sentiment.{run}.trainer.data_seed={seed}"
    command = ["kedro", "run", "--env", "jrte", "--pipelines", "jrte_sentiment"]
    command += ["--to-nodes", f"jrte_sentiment.{run}.evaluate", "--params", params]
    FOLDER.mkdir(parents=True, exist_ok=True)
    log_path = FOLDER / f"{run}_seed{seed}.log"
    print(f"[jrte_seeds] seed {seed}: {' '.join(command)} (log: {log_path})", flush=True)
    start = time.time()
    with open(log_path, "w") as log:
        rc = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc:
        sys.exit(f"seed {seed} of {run} failed (exit code {rc}): read {log_path}")
    shutil.copy(OUTPUT / f"{run}_predictions.csv", FOLDER / f"{run}_seed{seed}.csv")
    record = {
        "command": " ".join(command),
        "commit": _commit(),
        "start_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "wall_s": round(time.time() - start),
        "load_average_end": os.getloadavg()[0],
    }
    (FOLDER / f"{run}_seed{seed}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"[jrte_seeds] seed {seed}: {record['wall_s']} s", flush=True)


def _parameters() -> dict:
    """conf/base merged with conf/jrte, as ``kedro run --env jrte`` sees them."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(REPO)
    with KedroSession.create(project_path=REPO, env="jrte") as session:
        return session.load_context().params["jrte_sentiment"]


def configured_seed(params: dict, run: str) -> int:
    """The seed the full run trained ``run`` with, merged as the pipeline merges it (``run_trainer``)."""
    from qeu_kedro.pipelines.jrte_sentiment.model import run_trainer

    return run_trainer(params["training"], params[run])["seed"]


def _members(
    params: dict,
    run: str,
    seeds: list[int],
    full_run_label: str = "seed {seed} (the full run)",
    label: str = "seed {seed}",
) -> dict[str, pd.DataFrame]:
    """The full run's predictions of ``run`` and those of each seed in ``seeds``, by label."""
    own = configured_seed(params, run)
    members = {full_run_label.format(run=run, seed=own): pd.read_csv(OUTPUT / f"{run}_predictions.csv")}
    for seed in seeds:
        path = FOLDER / f"{run}_seed{seed}.csv"
        if not path.exists():
            sys.exit(f"{path} is missing: run `python benchmarks/jrte_seeds.py --run {run} --seeds {seed}` first")
        members[label.format(run=run, seed=seed)] = pd.read_csv(path)
    return members


def _ensemble(members: dict[str, pd.DataFrame], task: dict) -> pd.DataFrame:
    """The mean class probabilities of ``members`` (the pipeline's own ``average_runs``)."""
    from qeu_kedro.pipelines.jrte_sentiment.model import average_runs

    return average_runs({"enabled": True, "members": list(members)}, task, **members)


def _rows(params: dict, level2: pd.DataFrame, rows: dict[str, pd.DataFrame], heading: str) -> tuple[list[str], dict]:
    """Markdown lines: each row's dev macro-F1, test macro-F1 with its interval, and its paired
    difference from Level 2 on test with the verdict; and each row's test macro-F1 by label."""
    from qeu_kedro.pipelines.jrte_sentiment.report import classification_metrics, paired_comparison

    task, statistics = params["task"], params["statistics"]
    lines = [
        f"| {heading} | dev macro-F1 | test macro-F1 [95 %] | minus Level 2 [95 % paired] | verdict |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    tests = {}
    for label, predictions in rows.items():
        m = classification_metrics(predictions, task, statistics)
        dev = classification_metrics(predictions, task, statistics, split="dev")["macro_f1"]
        d = paired_comparison(level2, predictions, task, statistics)["macro_f1"]
        tests[label] = m["macro_f1"]
        lines.append(
            f"| {label} | {dev:.4f} | {m['macro_f1']:.4f} "
            f"[{m['macro_f1_ci'][0]:.4f}, {m['macro_f1_ci'][1]:.4f}] | {d['difference']:+.4f} "
            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | {d['verdict']} |"
        )
    return lines, tests


def table(params: dict, run: str, seeds: list[int]) -> str:
    """Markdown: every seed of ``run`` and their ensemble, against the full run's Level 2 on test."""
    from qeu_kedro.pipelines.jrte_sentiment.report import classification_metrics

    task, statistics = params["task"], params["statistics"]
    level2 = pd.read_csv(OUTPUT / "level2_predictions.csv")
    members = _members(params, run, seeds)
    rows = {**members, f"ensemble of the {len(members)} seeds": _ensemble(members, task)}
    lines, scores = _rows(params, level2, rows, f"`{run}`")
    tests = [scores[label] for label in members]
    l2, l2_dev = (classification_metrics(level2, task, statistics, split) for split in ("test", "dev"))
    spread = max(tests) - min(tests)
    lines += [
        "",
        f"Level 2 (seed {configured_seed(params, 'level2')}): dev macro-F1 {l2_dev['macro_f1']:.4f}, test {l2['macro_f1']:.4f}, "
        f"n = {l2['n']} test sentences. Over the {len(tests)} seeds the test macro-F1 ranges from {min(tests):.4f} "
        f"to {max(tests):.4f} (spread {spread:.4f}, mean {sum(tests) / len(tests):.4f}).",
    ]
    return "\n".join(lines)


def pooled_table(params: dict, runs: list[str], seeds: list[int], decision_rule: bool = False) -> str:
    """Markdown: the seed ensemble of each run in ``runs`` and the ensemble of all their seeds together
    (no training: the seeds' predictions must be there), dev and test, against Level 2 on test.

    With ``decision_rule`` each ensemble also gets a row with Level 5's decision rule on top: the bias on
    ``level5.decision_rule.class`` tuned on dev over the configured grid (the pipeline's ``tune_class_bias``),
    and a second table compares each ensemble with the rule against the same ensemble without it on test.
    """
    from qeu_kedro.pipelines.jrte_sentiment.model import tune_class_bias
    from qeu_kedro.pipelines.jrte_sentiment.report import paired_comparison

    task = params["task"]
    rule = {**params["level5"]["decision_rule"], "enabled": True}
    every: dict[str, pd.DataFrame] = {}
    ensembles = {}
    for run in runs:
        members = _members(params, run, seeds, "{run} seed {seed}", "{run} seed {seed}")
        every.update(members)
        ensembles[f"`{run}`, {len(members)} seeds"] = _ensemble(members, task)
    ensembles[f"all {len(every)} models ({len(runs)} runs x {len(seeds) + 1} seeds)"] = _ensemble(every, task)
    rows = dict(ensembles)
    against_itself = [
        "| ensemble | test macro-F1 with the rule minus without [95 % paired] | verdict for the rule |",
        "| --- | --- | --- |",
    ]
    if decision_rule:
        for label, ensemble in ensembles.items():
            tuned, chosen = tune_class_bias(ensemble, rule, task)
            rows[f"{label} + decision rule (bias {chosen['bias']:+.2f} on {chosen['class']!r})"] = tuned
            d = paired_comparison(ensemble, tuned, task, params["statistics"])["macro_f1"]
            against_itself.append(
                f"| {label} | {d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | {d['verdict']} |"
            )
    level2 = pd.read_csv(OUTPUT / "level2_predictions.csv")
    lines = _rows(params, level2, rows, "ensemble (mean class probabilities)")[0]
    if decision_rule:
        lines += ["", *against_itself]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="weighted_soft_labels", help="a fine-tuning run of jrte_sentiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds besides the full run's")
    parser.add_argument("--table-only", action="store_true", help="tabulate seeds trained before")
    parser.add_argument(
        "--pool", nargs="+", metavar="RUN", help="no training: the seed ensembles of these runs and of all their seeds"
    )
    parser.add_argument(
        "--decision-rule",
        action="store_true",
        help="with --pool: each ensemble also with the dev-tuned bias of level5.decision_rule on top",
    )
    args = parser.parse_args()
    from qeu_kedro.pipelines.jrte_sentiment.pipeline import RUNS

    for run in [args.run, *(args.pool or [])]:
        if run not in RUNS:
            parser.error(f"{run}: not a fine-tuning run of jrte_sentiment; choose from {', '.join(RUNS)}")
    if args.decision_rule and not args.pool:
        parser.error("--decision-rule goes with --pool")
    params = _parameters()
    if args.pool:
        print(pooled_table(params, args.pool, args.seeds, args.decision_rule))
        return 0
    own = configured_seed(params, args.run)
    if own in args.seeds:
        parser.error(f"seed {own} is the full run's own: its predictions are used as they are")
    full_run = OUTPUT / f"{args.run}_predictions.csv"
    if not full_run.exists():
        parser.error(f"{full_run} is missing: run `kedro run --env jrte --pipelines jrte_sentiment` first")
    if not args.table_only:
        # the full run's outputs of this run (predictions, metrics, figures, a saved model) are put back after
        originals = [p for folder in (OUTPUT, REPORTING, MODELS) for p in folder.glob(f"{args.run}_*")]
        kept = FOLDER / "full_run"
        for path in originals:
            _copy(path, kept / path.relative_to(REPO / "data"))
        try:
            for seed in args.seeds:
                _train(args.run, seed)
        finally:
            for path in originals:
                _copy(kept / path.relative_to(REPO / "data"), path)
    print(table(params, args.run, args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
