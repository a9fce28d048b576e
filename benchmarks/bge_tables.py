"""Markdown table of a bge_finetune metrics.json: metrics before -> after at every dimension."""

import json
import sys
from pathlib import Path


def table(metrics: dict, title: str) -> str:
    data, training = metrics["data"], metrics["training"]
    lines = [
        f"### {title}",
        "",
        f"{data['n_test_queries']} test queries, corpus of {data['n_corpus']}, "
        f"{data['n_train_rows']} training rows ({'triplets' if data['triplets'] else 'pairs'}, split by {data['split_by']}), "
        f"{training['steps']} steps in {training['runtime_s']:.0f} s.",
        "",
        "| dim | NDCG@10 before | NDCG@10 after | difference [95 % interval] | relative | verdict "
        "| MRR@10 before → after | Recall@1 before → after | Recall@10 before → after |",
        "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for d in map(str, metrics["dims"]):
        b, a, c = metrics["before"][d], metrics["after"][d], metrics["comparison"][d]["ndcg@10"]
        lines.append(
            f"| {d} | {b['ndcg@10']:.4f} | {a['ndcg@10']:.4f} | {c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] "
            f"| {c['relative']:+.1%} | {c['verdict']} "
            f"| {b['mrr@10']:.4f} → {a['mrr@10']:.4f} | {b['recall@1']:.4f} → {a['recall@1']:.4f} "
            f"| {b['recall@10']:.4f} → {a['recall@10']:.4f} |"
        )
    validation = training.get("validation") or {}
    if validation.get("n_queries"):
        lines += [
            "",
            f"Validation ({validation['n_queries']} queries): base NDCG@10 {validation['base_ndcg@10']:.4f}, "
            f"checkpoints {[round(e['ndcg@10'], 4) for e in validation['curve']]}; kept: {validation['chosen']}.",
        ]
    lines += ["", f"Better (95 % interval above 0) at every dimension: {metrics['better_at_every_dim']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    path, title = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
    print(table(json.loads(Path(path).read_text()), title))
