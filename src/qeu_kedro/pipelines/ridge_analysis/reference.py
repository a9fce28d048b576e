"""The original notebook's method, kept as the reference: flatten, then scikit-learn's Ridge.

Every rating becomes one dense row (user features, then every embedding dimension), so
memory grows as ratings x features. The pipeline uses :mod:`.nodes` instead, which gives
the same coefficients without that matrix; this module is what the equality tests and
``benchmarks/`` compare against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from qeu_kedro.validation import fail

CATEGORICAL = ("gender", "occupation")
TARGET = "rating"


def build_flat_model_input(ratings: pd.DataFrame, users: pd.DataFrame, movie_embeddings: pd.DataFrame) -> pd.DataFrame:
    """One dense row per rating: age, one-hot gender and occupation, every embedding dimension, rating."""
    unknown_user = ~ratings["user_id"].isin(users["user_id"]).to_numpy()
    if unknown_user.any():
        i = int(np.flatnonzero(unknown_user)[0])
        fail("ratings", "user_id", i, f"user {ratings['user_id'].iloc[i]} is not in 'users'")
    joined = ratings.merge(users, on="user_id", how="left", validate="many_to_one")
    joined = joined.merge(movie_embeddings, on="movie_id", how="inner", validate="many_to_one")
    embedding_cols = [c for c in movie_embeddings.columns if c != "movie_id"]
    dummies = pd.get_dummies(joined[list(CATEGORICAL)], prefix=list(CATEGORICAL), dtype=np.float32)
    return pd.concat(
        [joined[["age"]].astype(np.float32), dummies, joined[embedding_cols], joined[[TARGET]].astype(np.float32)],
        axis=1,
    )


def split_flat(table: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original split of the rating rows."""
    return tuple(train_test_split(table, test_size=params["test_size"], random_state=params["seed"]))


def fit_ridge_flat(train: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """scikit-learn's ``Ridge`` on the flattened rows; the model as plain data like :func:`.nodes.fit_ridge`."""
    features = [c for c in train.columns if c != TARGET]
    model = Ridge(alpha=params["alpha"], fit_intercept=params["fit_intercept"])
    model.fit(train[features].to_numpy(dtype=np.float64), train[TARGET].to_numpy(dtype=np.float64))
    return {
        "alpha": float(params["alpha"]),
        "intercept": float(model.intercept_),
        "features": features,
        "coefficients": [float(c) for c in model.coef_],
    }


def predict_flat(model: dict[str, Any], table: pd.DataFrame) -> np.ndarray:
    """Predicted ratings for the flattened rows of ``table``."""
    x = table[model["features"]].to_numpy(dtype=np.float64)
    return x @ np.asarray(model["coefficients"]) + model["intercept"]
