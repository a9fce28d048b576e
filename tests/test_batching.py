"""Length-sorted batches: every index once, similar lengths together, within the token budget."""

import numpy as np

from qeu_kedro.batching import length_sorted_batches


def test_batches_respect_the_token_budget():
    lengths = np.array([5, 120, 7, 118, 6, 60, 5])
    batches = length_sorted_batches(lengths, batch_size=4, max_tokens=250)
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    assert all(len(b) * lengths[b].max() <= 250 for b in batches)
    assert batches[0].tolist() == [1, 3]  # the two long texts together, no short one padded to them


def test_without_a_budget_batches_are_of_batch_size_longest_first():
    batches = length_sorted_batches([3, 9, 1, 9, 4], batch_size=2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]  # ties keep their order


def test_a_text_longer_than_the_budget_is_a_batch_of_its_own():
    assert [b.tolist() for b in length_sorted_batches([500, 2, 3], batch_size=8, max_tokens=100)] == [[0], [2, 1]]
