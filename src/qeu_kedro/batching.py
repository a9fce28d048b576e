"""Batches of texts of similar length: short texts are not padded to the longest one in a batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def length_sorted_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, max_tokens: int | None = None
) -> list[np.ndarray]:
    """Indices into ``lengths`` grouped longest first, at most ``batch_size`` per batch.

    With ``max_tokens``, a batch's ``size x longest`` also stays within ``max_tokens`` (at least
    one text per batch). Every index appears once; put each batch's outputs back with ``out[batch]``.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = batch_size
        if max_tokens is not None:
            size = max(1, min(batch_size, max_tokens // max(int(lengths[order[start]]), 1)))
        batches.append(order[start : start + size])
        start += size
    return batches
