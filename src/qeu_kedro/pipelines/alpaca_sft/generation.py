"""Greedy generation for ``alpaca_sft``: whole sequences decoded without a character cut in two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def decode_whole(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of ``ids`` without a character cut in two at the end.

    A byte-level BPE token can carry part of a multi-byte UTF-8 character (most kanji are 3
    bytes): a generation stopped by ``max_new_tokens`` (or by an end-of-turn token the model put
    inside a character) can end inside one, which decodes to U+FFFD. The trailing tokens of such an
    incomplete character are dropped (at most 3: a UTF-8 character has at most 4 bytes). Trailing
    special tokens (the end-of-turn token) decode to nothing and are dropped first, so they do not
    count among the 3.
    """
    ids = list(ids)
    special = set(getattr(tokenizer, "all_special_ids", None) or ())
    while ids and ids[-1] in special:
        ids.pop()
    text = tokenizer.decode(ids, skip_special_tokens=True)
    cut = 0
    while text.endswith("\ufffd") and cut < min(3, len(ids)):
        cut += 1
        text = tokenizer.decode(ids[:-cut], skip_special_tokens=True)
    return text


def generate(
    model: Any, tokenizer: Any, texts: Sequence[str], generation: Mapping[str, Any], desc: str = "Generating answers"
) -> list[dict[str, Any]]:
    """Greedy answers to ``texts`` (already in the model's prompt format), in batches padded on the left,
    with a progress bar (``desc``) over the answers.

    Each answer is decoded whole (:func:`decode_whole`); ``ended_by_itself`` says the model ended
    its turn (eos) before ``max_new_tokens``.
    """
    import torch
    from tqdm.auto import tqdm

    eos = tokenizer.eos_token_id
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out_rows = []
    bar = tqdm(total=len(texts), desc=desc, unit="answer", leave=False)
    try:
        for lo in range(0, len(texts), generation["batch_size"]):
            batch = tokenizer(list(texts[lo : lo + generation["batch_size"]]), return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=generation["max_new_tokens"],
                    do_sample=False,
                    repetition_penalty=generation["repetition_penalty"],
                    eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for ids in out[:, batch["input_ids"].shape[1] :]:
                ids = ids.tolist()
                # Generation stops at eos; shorter answers of a batch are padded after it.
                stopped = eos in ids
                new = ids[: ids.index(eos) + 1] if stopped else ids
                out_rows.append(
                    {
                        "answer": decode_whole(tokenizer, new).strip(),
                        "n_new_tokens": len(new),
                        "ended_by_itself": stopped,
                    }
                )
            bar.update(len(out))
    finally:
        bar.close()
        tokenizer.padding_side = padding_side
    return out_rows
