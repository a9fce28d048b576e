#!/usr/bin/env bash
# The original's question: do the fine-tuned embeddings predict ratings better than the pretrained ones?
# Runs the movie pipelines for both namespaces and movie_comparison, then prints the paired CV difference
# of test R² (5 x 5 folds, corrected 95 % interval) and its verdict, for RESULTS.md / RESULTS_bge.md.
# The folds hold out what ridge_analysis.group_by says (conf/base: whole movies; before 2026-12-07: ratings).
# Usage: bash benchmarks/movie_comparison.sh [sample|movielens ...]   (default: sample)
# The finetuned namespace reads the model bge_finetune wrote in that environment: run bge_finetune first
# (sample: `kedro run --pipelines bge_finetune`; movielens: `bash benchmarks/bge_finetune.sh tmdb-full`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. "${QEU_VENV:-.venv}/bin/activate"
export KEDRO_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true

for name in "${@:-sample}"; do
    case "$name" in
        sample) env_args=(); prefix="" ;;
        movielens) env_args=(--env movielens); prefix="movielens/" ;;
        *) echo "unknown set $name" >&2; exit 2 ;;
    esac
    echo "== $name: kedro run ${env_args[*]} --pipelines movie_embedding,ridge_analysis,movie_comparison"
    start=$(date +%s)
    kedro run "${env_args[@]}" --pipelines movie_embedding,ridge_analysis,movie_comparison
    echo "== $name finished in $(( $(date +%s) - start )) s"
    python - "data/08_reporting/${prefix}comparison/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
cv = s["cv_r2_test"]
print(f"- data: {s['data']}; models: {s['models']}")
print(f"- single split test R² (each namespace's own; their difference has no interval, so none is printed): "
      f"base {s['r2_test']['base']:.5f}, finetuned {s['r2_test']['finetuned']:.5f}")
held_out = cv.get("held_out", "ratings")  # what each fold held out: movies (ridge_analysis.group_by: movie_id) or ratings
print(f"- CV test R² ({cv['n']} folds of {held_out}, {cv['n_ratings']} ratings): base {cv['before']:.5f}, finetuned {cv['after']:.5f}, "
      f"difference {cv['difference']:+.5f} [{cv['ci_low']:+.5f}, {cv['ci_high']:+.5f}]: {cv['verdict']}")
print(f"- {s['n_shared_top_features']} of {s['top_k']['base']} top features shared")
print(f"- retrieval verdicts of the fine-tuned model (NDCG@10 by dim): {s['finetuned_model_retrieval']['ndcg@10_verdicts']}")
PY
done
