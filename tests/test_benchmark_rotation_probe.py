"""benchmarks/bge_rotation_probe.py: a learned orthogonal rotation moves the ranking signal into the kept axes."""

import numpy as np
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def probe():
    return load_benchmark("bge_rotation_probe")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _task(rng: np.random.Generator, docs_signal: np.ndarray, n_queries: int) -> tuple:
    """Queries and documents of 16 dims: the match lives in the last 4, the first 12 are independent noise."""
    n_docs = len(docs_signal)
    relevant = rng.integers(0, n_docs, size=n_queries)
    corpus = np.hstack([rng.normal(size=(n_docs, 12)), docs_signal])
    queries = np.hstack(
        [rng.normal(size=(n_queries, 12)), docs_signal[relevant] + 0.1 * rng.normal(size=(n_queries, 4))]
    )
    return _unit(queries), _unit(corpus), relevant


def test_learned_rotation_is_orthogonal_keeps_the_full_dimension_and_helps_truncation(probe):
    rng = np.random.default_rng(0)
    signal = 2.0 * rng.normal(size=(40, 4))
    fit, validation, test = (_task(rng, signal, n) for n in (200, 60, 100))
    dims = [16, 8, 4]

    m, curve = probe._fit_rotation(
        np.eye(16, dtype=np.float32), fit, validation, dims, steps=150, eval_every=10, lr=1e-2
    )

    np.testing.assert_allclose(m.T @ m, np.eye(16), atol=1e-4)  # orthogonal
    assert curve[0][0] == 0 and max(score for _, _, score in curve) >= curve[0][2]
    q, c, rel = test
    full_before = probe.ndcg_at_10(q, c, rel, 16)
    full_after = probe.ndcg_at_10(q @ m, c @ m, rel, 16)
    np.testing.assert_allclose(full_after, full_before)  # a rotation leaves every full-dimension cosine as it was
    before, after = probe.ndcg_at_10(q, c, rel, 4).mean(), probe.ndcg_at_10(q @ m, c @ m, rel, 4).mean()
    assert before < 0.5 and after > before + 0.3, (before, after)


def test_no_training_steps_keep_the_starting_rotation(probe):
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(20, 4))
    fit, validation = _task(rng, signal, 30), _task(rng, signal, 10)
    start = np.linalg.qr(rng.normal(size=(16, 16)))[0].astype(np.float32)
    m, curve = probe._fit_rotation(start, fit, validation, [16, 8], steps=0, eval_every=5, lr=1e-2)
    np.testing.assert_array_equal(m, start)
    assert len(curve) == 1
