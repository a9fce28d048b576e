"""Markdown table of a bge_finetune metrics.json: every metric before -> after at every dimension, with the paired
difference, its interval and verdict as ``metrics.json``'s ``comparison`` holds them."""

import json
import sys
from pathlib import Path

METRICS = {"ndcg@10": "NDCG@10", "mrr@10": "MRR@10", "recall@1": "Recall@1", "recall@10": "Recall@10"}


def _relative(value: float | None) -> str:
    """The relative change, or n/a where the baseline is 0 (metrics.json's relative is then null)."""
    return "n/a" if value is None else f"{value:+.1%}"


def table(metrics: dict, title: str) -> str:
    data, training = metrics["data"], metrics["training"]
    first = metrics["comparison"][str(metrics["dims"][0])]["ndcg@10"]
    level = f"{first['confidence']:.0%}".replace("%", " %")
    lines = [
        f"### {title}",
        "",
        f"{data['n_test_queries']} test queries, corpus of {data['n_corpus']}, "
        f"{data['n_train_rows']} training rows ({'triplets' if data['triplets'] else 'pairs'}, split by {data['split_by']}), "
        f"{training['steps']} steps in {training['runtime_s']:.0f} s.",
        "",
        f"| dim | metric | before | after | difference [{level} interval] | relative | verdict |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for d in map(str, metrics["dims"]):
        for key, name in METRICS.items():
            b, a, c = metrics["before"][d][key], metrics["after"][d][key], metrics["comparison"][d][key]
            lines.append(
                f"| {d} | {name} | {b:.4f} | {a:.4f} | {c['difference']:+.4f} [{c['ci_low']:+.4f}, "
                f"{c['ci_high']:+.4f}] | {_relative(c['relative'])} | {c['verdict']} |"
            )
    validation = training.get("validation") or {}
    if validation.get("n_queries"):
        lines += [
            "",
            f"Validation ({validation['n_queries']} queries): base NDCG@10 {validation['base_ndcg@10']:.4f}, "
            f"checkpoints {[round(e['ndcg@10'], 4) for e in validation['curve']]}; kept: {validation['chosen']}.",
        ]
    lines += [
        "",
        f"NDCG@10 better ({level} interval above 0) at every dimension: {metrics['better_at_every_dim']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    path, title = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
    print(table(json.loads(Path(path).read_text()), title))
