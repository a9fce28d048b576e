"""Nodes of ``movie_comparison``: what fine-tuning the embedding model changed in the ridge analysis.

The original compared the top-20 coefficients before and after fine-tuning by eye; here
the two tables are joined on the feature name, ranks side by side, with the R² of each.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

NAMESPACES = ("base", "finetuned")
# ridge_metrics.json keys compared (both namespaces use the same split and seed)
METRICS = ("r2_train", "r2_test", "rmse_train", "rmse_test")


def compare_ridge(
    base_metrics: dict[str, Any],
    finetuned_metrics: dict[str, Any],
    base_top: pd.DataFrame,
    finetuned_top: pd.DataFrame,
) -> dict[str, Any]:
    """R² / RMSE of each namespace and their difference, and which top features the two share."""
    summary: dict[str, Any] = {}
    for key in METRICS:
        base, fine = float(base_metrics[key]), float(finetuned_metrics[key])
        summary[key] = {"base": base, "finetuned": fine, "finetuned_minus_base": fine - base}
    base_features, fine_features = list(base_top["feature"]), list(finetuned_top["feature"])
    shared = [f for f in base_features if f in set(fine_features)]  # in base's rank order
    summary.update(
        {
            "top_k": {"base": len(base_features), "finetuned": len(fine_features)},
            "n_shared_top_features": len(shared),
            "shared_top_features": shared,
            "only_base": [f for f in base_features if f not in set(shared)],
            "only_finetuned": [f for f in fine_features if f not in set(shared)],
        }
    )
    return summary


def side_by_side(base_top: pd.DataFrame, finetuned_top: pd.DataFrame) -> pd.DataFrame:
    """Row ``rank``: each namespace's feature and coefficient at that rank, and its rank in the other.

    ``*_rank_in_other`` is empty when the feature is not in the other's top list.
    """
    rank_of = {ns: dict(zip(top["feature"], top["rank"])) for ns, top in zip(NAMESPACES, (base_top, finetuned_top))}
    n = max(len(base_top), len(finetuned_top))
    table = pd.DataFrame({"rank": range(1, n + 1)})
    for ns, other, top in (("base", "finetuned", base_top), ("finetuned", "base", finetuned_top)):
        ordered = top.sort_values("rank").reset_index(drop=True)
        table[f"{ns}_feature"] = ordered["feature"].reindex(range(n))
        table[f"{ns}_coefficient"] = ordered["coefficient"].reindex(range(n))
        table[f"{ns}_rank_in_{other}"] = table[f"{ns}_feature"].map(rank_of[other]).astype("Int64")
    return table


def plot_comparison(summary: dict[str, Any], base_top: pd.DataFrame, finetuned_top: pd.DataFrame) -> plt.Figure:
    """R² of both namespaces, and both top-coefficient bar charts with the shared features marked."""
    n = max(len(base_top), len(finetuned_top))
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.3 * n + 2.5), gridspec_kw={"width_ratios": [1, 2, 2]})
    ax = axes[0]
    x = range(2)
    for offset, ns in ((-0.2, "base"), (0.2, "finetuned")):
        values = [summary["r2_train"][ns], summary["r2_test"][ns]]
        bars = ax.bar([i + offset for i in x], values, width=0.4, label=ns)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(list(x), ["R² train", "R² test"])
    ax.set_title("Ridge fit")
    ax.legend(fontsize=8)
    shared = set(summary["shared_top_features"])
    for ax, ns, top in ((axes[1], "base", base_top), (axes[2], "finetuned", finetuned_top)):
        ordered = top.sort_values("rank").iloc[::-1]
        colors = ["tab:purple" if f in shared else ("tab:blue" if c >= 0 else "tab:red")
                  for f, c in zip(ordered["feature"], ordered["coefficient"])]
        ax.barh(ordered["feature"], ordered["coefficient"], color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{ns}: top {len(top)} coefficients (purple: in both)", fontsize=10)
    fig.suptitle(f"Pretrained vs fine-tuned embeddings: {summary['n_shared_top_features']} top features shared")
    fig.tight_layout()
    return fig
