"""What the original judged by eye, as numbers: repetition, script/language, length; and how
close an answer is to its reference (chrF).

Pure string functions, no model: tested on known strings.
"""

from __future__ import annotations

import re
from typing import Any

# A unit is a latin word/number, or one other letter/digit character: Japanese and Chinese
# have no spaces, so their characters are the units (as character n-grams).
_UNITS = re.compile(r"[A-Za-z0-9\u00C0-\u024F']+|[^\W_]")
# Sentences/lines end at newlines and at latin or CJK sentence punctuation.
_SENTENCE_END = re.compile(r"[\n。．！？!?]+|(?<=[A-Za-z0-9])\.(?:\s+|$)")


def units(text: str) -> list[str]:
    """Words of latin text and single characters of CJK text, lower-cased; punctuation dropped, and so
    are quote marks at a word's edges (``'yes'`` is ``yes``; ``don't`` keeps its apostrophe)."""
    return [w for w in (u.lower().strip("'") for u in _UNITS.findall(text)) if w]


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of the text's ``n``-grams (over :func:`units`) that repeat an earlier one.

    An answer of fewer than ``n`` units is one gram of all its units (``n`` is lowered to the number
    of units it has): a single gram cannot repeat, so it scores 0 rather than going unmeasured. An
    answer without units (empty) scores 0: nothing repeats; its emptiness is what ``n_chars`` reports.
    """
    seq = units(text)
    if not seq:
        return 0.0
    grams = _ngrams(seq, min(n, len(seq)))
    return 1.0 - len(set(grams)) / len(grams)


def _ngrams(seq: list[str], n: int) -> list[tuple[str, ...]]:
    if n < 1:  # 0 would give empty grams, which every text shares: shares of nothing, not an error
        raise ValueError(
            f"n-grams need n of 1 or more, not {n}: set parameters alpaca_sft.measures.ngram to 1 or more."
        )
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def copied_from_prompt_share(text: str, prompt: str, n: int) -> float:
    """Share of the answer's ``n``-grams that also occur in the prompt (an answer that echoes the question).

    An answer of fewer than ``n`` units is measured with ``n`` lowered to the number of units it has
    (the prompt's grams of that length too): ``東京`` answered to ``東京はどこ`` is copied whole (1.0),
    where a 4-gram share would have no gram to count. An answer without units (empty) scores 0:
    nothing is copied; its emptiness is what ``n_chars`` reports.
    """
    seq = units(text)
    if not seq:
        return 0.0
    size = min(n, len(seq))
    grams = _ngrams(seq, size)
    source = set(_ngrams(units(prompt), size))
    return sum(g in source for g in grams) / len(grams)


def chrf(answer: str, reference: str, char_order: int = 6, beta: int = 2) -> float:
    """chrF (0-100) of one answer against its reference: sacrebleu's implementation.

    Character n-grams (1 to ``char_order``, whitespace removed) with F-beta of their precision
    and recall, so Japanese and Chinese, which have no spaces, are scored like any other
    language (Popović, "chrF: character n-gram F-score for automatic MT evaluation", WMT 2015).
    An empty answer scores 0.
    """
    from sacrebleu.metrics import CHRF

    return float(CHRF(char_order=char_order, word_order=0, beta=beta).sentence_score(answer, [reference]).score)


def duplicate_sentence_share(text: str) -> float:
    """Share of the text's sentences/lines that are exact repeats of an earlier one; 0 when empty."""
    # A piece without any letter or digit (a stray ":") is not a sentence.
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and units(s)]
    if not sentences:
        return 0.0
    return 1.0 - len(set(sentences)) / len(sentences)


def _is_kana(code: int) -> bool:
    """Hiragana, katakana (the phonetic extensions and half-width forms included) letters; not the
    middle dot ・ (U+30FB), used between names in Chinese as in Japanese, nor the prolonged sound mark."""
    return (
        0x3041 <= code <= 0x309F
        or 0x30A1 <= code <= 0x30FA
        or 0x31F0 <= code <= 0x31FF
        or 0xFF66 <= code <= 0xFF6F
        or 0xFF71 <= code <= 0xFF9D
    )


# the prolonged sound mark ー and its half-width form: kana when they lengthen a kana (カード), else not
_PROLONGED = (0x30FC, 0xFF70)


def script_counts(text: str) -> dict[str, int]:
    """Characters per script: ``kana`` (hiragana, katakana), ``han`` (CJK ideographs), ``latin`` letters.

    The middle dot ・ is no kana (``列夫・托尔斯泰`` is Chinese); the prolonged sound mark ー counts as
    kana only right after a kana (or another such mark after one), as in ``カード``.
    """
    counts = {"kana": 0, "han": 0, "latin": 0}
    after_kana = False
    for ch in text:
        code = ord(ch)
        kana = _is_kana(code) or (code in _PROLONGED and after_kana)
        after_kana = kana
        if kana:
            counts["kana"] += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
            counts["han"] += 1
        elif ("A" <= ch <= "Z") or ("a" <= ch <= "z") or (0x00C0 <= code <= 0x024F and ch.isalpha()):
            counts["latin"] += 1
    return counts


def detect_language(text: str, kana_share_for_ja: float) -> str:
    """``ja``, ``zh``, ``en`` or ``none`` from the script counts.

    CJK characters outnumbering latin letters mean ja or zh; Japanese is told from Chinese by
    kana: at least ``kana_share_for_ja`` of the CJK characters are kana (Chinese has none).
    """
    c = script_counts(text)
    cjk = c["kana"] + c["han"]
    if cjk == 0 and c["latin"] == 0:
        return "none"
    if cjk >= c["latin"]:
        return "ja" if c["kana"] / cjk >= kana_share_for_ja else "zh"
    return "en"


def measure_answer(
    text: str, language: str, ngram: int, kana_share_for_ja: float, prompt: str = "", reference: str | None = None
) -> dict[str, Any]:
    """All measures of one answer; ``language_match`` compares the detected language with the requested one.

    With a ``reference``, also its ``chrf`` against the answer and the yardsticks the reference itself
    sets: its own share of ``n``-grams copied from the prompt (``reference_copied_<n>gram_share``) and
    whether the detector finds it in the requested language (``reference_language_match``: a
    reference of kanji only reads as Chinese, one of digits or code as no language or English).
    """
    c = script_counts(text)
    letters = max(1, c["kana"] + c["han"] + c["latin"])
    detected = detect_language(text, kana_share_for_ja)
    out: dict[str, Any] = {
        "n_chars": len(text.strip()),
        f"repeated_{ngram}gram_share": round(repeated_ngram_share(text, ngram), 4),
        "duplicate_sentence_share": round(duplicate_sentence_share(text), 4),
        f"copied_{ngram}gram_share": round(copied_from_prompt_share(text, prompt, ngram), 4),
        "kana_ratio": round(c["kana"] / letters, 4),
        "han_ratio": round(c["han"] / letters, 4),
        "latin_ratio": round(c["latin"] / letters, 4),
        "detected_language": detected,
        "language_match": detected == language,
    }
    if reference is not None:
        out["chrf"] = round(chrf(text, reference), 4)
        out[f"reference_copied_{ngram}gram_share"] = round(copied_from_prompt_share(reference, prompt, ngram), 4)
        out["reference_language_match"] = detect_language(reference, kana_share_for_ja) == language
    return out
