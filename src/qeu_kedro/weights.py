"""Averaging the weights of models of one architecture: model soups (``bge_finetune``) and checkpoint averages (``jrte_sentiment``).

Imports torch only inside the function that needs it.
"""

from __future__ import annotations

from typing import Any


def average_state_dicts(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameter-by-parameter mean of models with the same architecture (a uniform model soup).

    Floating-point tensors are averaged (in float64, cast back to their dtype); other tensors
    (integer buffers such as position ids) must be equal in every member and are kept as they are.
    Members with different keys or shapes are an error that names the first offending tensor.
    """
    import torch

    if not states:
        raise ValueError("average_state_dicts: no models to average")
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=2):
        if list(state) != keys:
            missing = sorted(set(keys) ^ set(state))
            raise ValueError(f"model {i} has other tensors than model 1: {missing[:5]}")
    soup = {}
    for key in keys:
        tensors = [s[key] for s in states]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise ValueError(f"tensor {key!r} has different shapes in the models: {sorted(shapes)}")
        if tensors[0].is_floating_point():
            soup[key] = torch.stack([t.double() for t in tensors]).mean(dim=0).to(tensors[0].dtype)
        else:
            if any(not torch.equal(t, tensors[0]) for t in tensors[1:]):
                raise ValueError(f"non-float tensor {key!r} differs between the models: cannot average it")
            soup[key] = tensors[0].clone()
    return soup
