"""Nodes of ``movie_comparison``: what fine-tuning the embedding model changed in the ridge analysis.

The original compared the top-20 coefficients before and after fine-tuning by eye; here
the two tables are joined on the feature name, ranks side by side, with the R² of each.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from qeu_kedro.figures import suptitle
from qeu_kedro.stats import corrected_cv_interval, signed

logger = logging.getLogger(__name__)

NAMESPACES = ("base", "finetuned")
# ridge_metrics.json keys compared (both namespaces use the same split and seed)
METRICS = ("r2_train", "r2_test", "rmse_train", "rmse_test")


#: What to do when the namespaces' ridge results cannot be paired because of their parameters.
RERUN = (
    "Re-run both namespaces with the same ridge_analysis parameters (the same --params, or none): "
    "kedro run --pipelines movie_embedding,ridge_analysis,movie_comparison"
)


def unpack_results(results: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """One namespace's ``ridge_results`` (:func:`qeu_kedro.pipelines.ridge_analysis.nodes.collect_results`)
    as the three things compared: its metrics (with ``settings``: the ``ridge_analysis`` parameters they were
    computed with), its top-coefficient table and its CV fold scores."""
    missing = [key for key in ("metrics", "settings", "top_coefficients", "cv_scores") if key not in results]
    if missing:
        raise ValueError(
            f"movie_comparison: ridge_results has no {missing}; it was written by another version of "
            "ridge_analysis. Re-run `kedro run --pipelines ridge_analysis` before movie_comparison."
        )
    metrics = {**results["metrics"], "settings": results["settings"]}
    return metrics, pd.DataFrame(results["top_coefficients"]), pd.DataFrame(results["cv_scores"])


def shared_settings(base_metrics: dict[str, Any], finetuned_metrics: dict[str, Any]) -> dict[str, Any]:
    """The ``ridge_analysis`` parameters both namespaces were fitted with (their metrics' ``settings``).

    Refused when a namespace's are unknown or the two differ (alpha, alpha: auto's search, fit_intercept,
    user_features, group_by, test_size, seed, cv): the difference of the scores would then be the
    parameters' as much as the embeddings'. With ``alpha: auto`` the setting is compared (``auto`` and its
    grid), not the alpha each namespace chose.
    """
    settings = {ns: m.get("settings") for ns, m in zip(NAMESPACES, (base_metrics, finetuned_metrics), strict=True)}
    unknown = [ns for ns, s in settings.items() if s is None]
    if unknown:
        raise ValueError(
            f"movie_comparison: the ridge results of {unknown} do not say which ridge_analysis parameters they "
            f"were fitted with (written by an older version), so they cannot be paired. {RERUN}"
        )
    base, fine = settings["base"], settings["finetuned"]
    differ = [key for key in dict.fromkeys([*base, *fine]) if base.get(key) != fine.get(key)]
    if differ:
        each = "; ".join(f"{key}: {base.get(key)!r} in base, {fine.get(key)!r} in finetuned" for key in differ)
        raise ValueError(
            f"movie_comparison: base and finetuned were fitted with different ridge_analysis parameters ({each}), "
            f"so the difference of their scores would not be the embeddings' alone. {RERUN}"
        )
    return dict(base)


def compare_ridge(
    base_metrics: dict[str, Any],
    finetuned_metrics: dict[str, Any],
    base_top: pd.DataFrame,
    finetuned_top: pd.DataFrame,
    base_cv: pd.DataFrame,
    finetuned_cv: pd.DataFrame,
    retrieval: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """R² / RMSE of each namespace, the paired CV difference with its interval and verdict, shared top features.

    ``retrieval`` is ``bge_finetune``'s report: its per-dimension verdicts on the fine-tuned model
    (better / no evidence / worse than the base at retrieval) are quoted, so the summary says what
    the ``finetuned`` namespace's model is.
    ``cv_r2_test`` pairs the two namespaces' repeated k-fold CV test R² fold by fold (the folds
    must hold the same ratings: checked by their fingerprints) and gives ``finetuned - base``
    with the Nadeau-Bengio corrected 95 % interval (:func:`qeu_kedro.stats.corrected_cv_interval`).
    Both namespaces must have been fitted with the same ``ridge_analysis`` parameters (their metrics'
    ``settings``, :func:`shared_settings`); ``ridge_settings`` records them.
    ``held_out`` says what the folds hold out: ``movies`` (``ridge_analysis.group_by: movie_id``, the
    default), so the comparison asks which embedding predicts the ratings of movies its ridge has not
    seen; or ``ratings``, where every test movie is rated in training and the ridge fits movie offsets
    from any vectors (random ones too), so the difference says little about the embeddings.
    The single-split numbers stay for continuity with the original, each namespace's own; their difference
    is not reported, because one split gives it no interval (the CV difference is the comparison).
    """
    # first: namespaces fitted with other parameters are not compared at all
    settings = shared_settings(base_metrics, finetuned_metrics)
    summary: dict[str, Any] = {"data": params["data"], "models": params["models"], "ridge_settings": settings}
    for key in METRICS:
        base, fine = float(base_metrics[key]), float(finetuned_metrics[key])
        summary[key] = {"base": base, "finetuned": fine}
    if "held_out" in base_metrics:
        summary["r2_test"]["held_out"] = base_metrics["held_out"]
    summary["cv_r2_test"] = _paired_cv(base_cv, finetuned_cv, params)
    summary["finetuned_model_retrieval"] = {
        "data": retrieval.get("data_label"),
        "ndcg@10_verdicts": retrieval["verdicts"],
        "conclusion": retrieval["conclusion"],
    }
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
    logger.info("%s", summary["cv_r2_test"]["conclusion"])
    return summary


#: What the CV folds hold out (the CV table's ``held_out``), in the comparison's words.
FOLD_UNITS = {
    "movies": "folds of whole movies, each fold's movies unseen in training",
    "ratings": "folds of single ratings, each fold's movies also rated in training",
}


def held_out_of(cv: pd.DataFrame) -> str:
    """What a namespace's CV folds hold out: ``movies`` or ``ratings`` (a table written before the column: ratings)."""
    if "held_out" not in cv:
        return "ratings"
    units = set(cv["held_out"])
    if len(units) != 1 or not units <= set(FOLD_UNITS):
        raise ValueError(
            f"movie_comparison: the CV folds' held_out is {sorted(units)}; expected one of {list(FOLD_UNITS)}"
        )
    return units.pop()


def _paired_cv(base_cv: pd.DataFrame, finetuned_cv: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    units = {"base": held_out_of(base_cv), "finetuned": held_out_of(finetuned_cv)}
    if units["base"] != units["finetuned"]:
        raise ValueError(
            f"movie_comparison: base's CV folds hold out {units['base']}, finetuned's {units['finetuned']}: "
            "run ridge_analysis for both namespaces with the same ridge_analysis.group_by."
        )
    key = ["repeat", "fold"]
    paired = base_cv.merge(finetuned_cv, on=key, suffixes=("_base", "_finetuned"), validate="one_to_one")
    if len(paired) != len(base_cv) or len(paired) != len(finetuned_cv):
        raise ValueError(
            f"movie_comparison: base has {len(base_cv)} CV folds and finetuned {len(finetuned_cv)}; "
            "run ridge_analysis for both namespaces with the same ridge_analysis.cv parameters."
        )
    differ = paired["test_hash_base"] != paired["test_hash_finetuned"]
    if differ.any():
        row = paired.loc[differ].iloc[0]
        raise ValueError(
            f"movie_comparison: CV fold (repeat {row['repeat']}, fold {row['fold']}) holds different ratings in "
            "base and finetuned, so the folds cannot be paired: both namespaces must keep the same ratings "
            "(embed the same movies) and use the same ridge_analysis.cv seed. Re-run both namespaces."
        )
    # Nadeau-Bengio's n_test / n_train from the folds' own sizes: the correlation of two folds' scores is taken
    # as the test share n_test / n, averaged over the folds (grouped folds differ in ratings), and the
    # interval's variance term is that share's n_test / n_train. Over the k folds of a repeat the shares add
    # to 1, so the mean is 1/k, grouped or not.
    test_fraction = float((paired["n_test_base"] / (paired["n_test_base"] + paired["n_train_base"])).mean())
    result = corrected_cv_interval(
        paired["r2_test_base"].to_numpy(),
        paired["r2_test_finetuned"].to_numpy(),
        test_fraction,
        confidence=params["confidence"],
    )
    n_ratings = int(paired["n_test_base"].iloc[0] + paired["n_train_base"].iloc[0])
    repeats, folds = int(paired["repeat"].nunique()), int(paired["fold"].nunique())
    held_out = units["base"]
    design = f"{repeats} x {folds}-fold CV, {FOLD_UNITS[held_out]}, {len(paired)} fold scores"
    return {
        **result.to_dict(),
        "n_ratings": n_ratings,
        "cv_repeats": repeats,
        "cv_folds": folds,
        "held_out": held_out,
        "test_fraction": test_fraction,
        "conclusion": result.describe(
            f"With the fine-tuned embeddings, the cross-validated test R² ({design}, {n_ratings} ratings)"
        ),
    }


def side_by_side(base_top: pd.DataFrame, finetuned_top: pd.DataFrame) -> pd.DataFrame:
    """Row ``rank``: each namespace's feature and coefficient at that rank, and its rank in the other.

    ``*_rank_in_other`` is empty when the feature is not in the other's top list.
    """
    rank_of = {
        ns: dict(zip(top["feature"], top["rank"], strict=True))
        for ns, top in zip(NAMESPACES, (base_top, finetuned_top), strict=True)
    }
    n = max(len(base_top), len(finetuned_top))
    table = pd.DataFrame({"rank": range(1, n + 1)})
    for ns, other, top in (("base", "finetuned", base_top), ("finetuned", "base", finetuned_top)):
        ordered = top.sort_values("rank").reset_index(drop=True)
        table[f"{ns}_feature"] = ordered["feature"].reindex(range(n))
        table[f"{ns}_coefficient"] = ordered["coefficient"].reindex(range(n))
        table[f"{ns}_rank_in_{other}"] = table[f"{ns}_feature"].map(rank_of[other]).astype("Int64")
    return table


def plot_comparison(summary: dict[str, Any], base_top: pd.DataFrame, finetuned_top: pd.DataFrame) -> Any:
    """The CV difference of test R² with its 95 % interval (on an axis where it shows), and both top-coefficient charts.

    The title states the verdict; purple bars are features in both top lists.
    """
    import matplotlib.pyplot as plt

    cv = summary["cv_r2_test"]
    n = max(len(base_top), len(finetuned_top))
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.3 * n + 3.2), gridspec_kw={"width_ratios": [1.1, 2, 2]})
    ax = axes[0]
    ax.axhline(0, color="black", linewidth=0.8, label="no difference")
    ax.errorbar(
        [0],
        [cv["difference"]],
        yerr=[[cv["difference"] - cv["ci_low"]], [cv["ci_high"] - cv["difference"]]],
        fmt="o",
        color="tab:purple",
        capsize=8,
        markersize=7,
        label=f"{cv['cv_repeats']} x {cv['cv_folds']}-fold CV mean of {cv['n']} fold scores, "
        f"{cv['confidence']:.0%} interval\nfolds of {'whole movies' if cv.get('held_out') == 'movies' else 'ratings'}",
    )
    ax.set_xlim(-0.5, 0.5)
    ax.set_xticks([])
    span = max(abs(cv["ci_low"]), abs(cv["ci_high"])) * 1.6 or 1e-3
    ax.set_ylim(-span, span)
    ax.set_ylabel(
        "test R² of unseen movies: finetuned - base" if cv.get("held_out") == "movies" else "test R²: finetuned - base"
    )
    ax.set_title(
        # signed: a firm difference too small for 4 decimals reads +3.1e-05, not +0.0000 beside "better"
        f"R² base {cv['before']:.4f}, finetuned {cv['after']:.4f}\n{cv['verdict']}: "
        f"{signed(cv['difference'])} [{signed(cv['ci_low'])}, {signed(cv['ci_high'])}]",
        fontsize=9,
    )
    # below the axes (it has no x ticks): inside, it covered a y tick label
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.01), frameon=False)
    shared = set(summary["shared_top_features"])
    for ax, ns, top in ((axes[1], "base", base_top), (axes[2], "finetuned", finetuned_top)):
        ordered = top.sort_values("rank").iloc[::-1]
        colors = [
            "tab:purple" if f in shared else ("tab:blue" if c >= 0 else "tab:red")
            for f, c in zip(ordered["feature"], ordered["coefficient"], strict=True)
        ]
        ax.barh(ordered["feature"], ordered["coefficient"], color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("ridge coefficient")
        ax.set_title(f"{ns} ({summary['models'][ns]}): top {len(top)} |coefficients|", fontsize=9)
    from matplotlib.patches import Patch

    axes[2].legend(
        handles=[
            Patch(color="tab:purple", label="in both top lists"),
            Patch(color="tab:blue", label="positive, one list"),
            Patch(color="tab:red", label="negative, one list"),
        ],
        fontsize=7,
        loc="lower right",
    )
    suptitle(
        fig,
        f"movie_comparison on {summary['data']} ({cv['n_ratings']} ratings, CV folds of "
        f"{'whole movies' if cv.get('held_out') == 'movies' else 'single ratings'}): fine-tuned vs pretrained embeddings: "
        f"{verdict_title(cv['verdict'], cv['confidence'])}; {summary['n_shared_top_features']} of {n} top features shared",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def verdict_title(verdict: str, confidence: float) -> str:
    """The verdict in the figure's title, with the interval's own confidence."""
    pct = f"{confidence:.0%}".replace("%", " %")
    return {
        "better": f"test R² better ({pct} interval above 0)",
        "no evidence": f"no evidence of a change in test R² ({pct} interval contains 0)",
        "worse": f"test R² worse ({pct} interval below 0)",
    }[verdict]
