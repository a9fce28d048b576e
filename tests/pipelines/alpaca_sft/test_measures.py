"""The measures of what the original judged by eye, on known strings."""

from __future__ import annotations

import pytest

from qeu_kedro.pipelines.alpaca_sft.measures import (
    copied_from_prompt_share,
    detect_language,
    duplicate_sentence_share,
    measure_answer,
    repeated_ngram_share,
    script_counts,
    units,
)


def test_units_are_words_for_latin_and_characters_for_cjk():
    assert units("The cat, 2 cats!") == ["the", "cat", "2", "cats"]
    assert units("東京です。OK") == ["東", "京", "で", "す", "ok"]


def test_repeated_ngram_share():
    assert repeated_ngram_share("one two three four five", 2) == 0.0
    # 8 words, 7 bigrams, 2 distinct ("the cat", "cat the"): 5 of 7 repeat an earlier one.
    assert repeated_ngram_share("the cat the cat the cat the cat", 2) == pytest.approx(5 / 7)
    # ああああ: 3 bigrams, all "ああ".
    assert repeated_ngram_share("ああああ", 2) == pytest.approx(2 / 3)
    # fewer units than n: one gram of all of them, which cannot repeat; "no no": one bigram "no no"
    assert repeated_ngram_share("short", 4) == 0.0
    assert repeated_ngram_share("no no", 4) == 0.0
    # ああああ at n = 8: one 4-gram, not unmeasured; at n = 3, 2 trigrams "あああ", the second a repeat
    assert repeated_ngram_share("ああああ", 8) == 0.0 and repeated_ngram_share("ああああ", 3) == pytest.approx(1 / 2)
    assert repeated_ngram_share("", 4) == 0.0  # empty: nothing repeats (n_chars reports the emptiness)


def test_duplicate_sentence_share():
    assert duplicate_sentence_share("日本の首都は東京です。日本の首都は東京です。") == pytest.approx(0.5)
    assert duplicate_sentence_share("Yes. No. Yes.") == pytest.approx(1 / 3)
    assert duplicate_sentence_share("A line\nA line\nA line\n:") == pytest.approx(2 / 3)
    assert duplicate_sentence_share("") == 0.0


def test_script_counts_and_language():
    assert script_counts("ひらがなカタカナ漢字abc") == {"kana": 8, "han": 2, "latin": 3}
    assert detect_language("日本の首都は東京です。", 0.1) == "ja"
    assert detect_language("中国的首都是北京。", 0.1) == "zh"
    assert detect_language("The capital is Tokyo (東京).", 0.1) == "en"
    assert detect_language("1234 !?", 0.1) == "none"
    # Kanji only: no kana, so not recognisably Japanese.
    assert detect_language("東京", 0.1) == "zh"


def test_measure_answer():
    m = measure_answer("どこですか？\nどこですか？", "ja", 4, 0.1)
    assert m["detected_language"] == "ja" and m["language_match"] is True
    assert m["duplicate_sentence_share"] == 0.5
    assert m["n_chars"] == 13
    assert m["kana_ratio"] == 1.0 and m["han_ratio"] == 0.0
    # どこですかどこですか: 7 four-grams, the last two repeat the first two.
    assert m["repeated_4gram_share"] == pytest.approx(round(2 / 7, 4))
    english = measure_answer("Tokyo is the capital.", "ja", 4, 0.1)
    assert english["language_match"] is False and english["detected_language"] == "en"


def test_copied_from_prompt_share():
    prompt = "### Instruction:\n日本の首都はどこですか？"
    assert copied_from_prompt_share("日本の首都はどこですか？", prompt, 4) == 1.0
    assert copied_from_prompt_share("東京です。", prompt, 4) == 0.0
    # 日本の首都は東京: 5 four-grams, the first three (日本の首, 本の首都, の首都は) are in the prompt.
    assert copied_from_prompt_share("日本の首都は東京", prompt, 4) == pytest.approx(3 / 5)
    assert measure_answer("日本の首都は東京", "ja", 4, 0.1, prompt)["copied_4gram_share"] == 0.6


def test_an_ngram_of_0_or_less_is_refused_not_measured():
    """n = 0 made every answer's grams empty tuples, which every prompt shares too: a verbatim echo of the
    prompt scored copied 0 and a five-word answer repeated 0.83."""
    echo = "Name the capital of France and describe it in one sentence."
    for n in (0, -2):
        with pytest.raises(ValueError, match=rf"n-grams need n of 1 or more, not {n}: set parameters alpaca_sft"):
            copied_from_prompt_share(echo, "### Instruction:\n" + echo, n)
        with pytest.raises(ValueError, match="alpaca_sft.measures.ngram"):
            repeated_ngram_share("one two three four five", n)
    assert copied_from_prompt_share("", echo, 0) == 0.0  # an empty answer has no grams of any n


def test_a_short_answer_is_measured_with_the_units_it_has():
    """An answer of fewer than n units scored 0 copied though copied word for word: it is now one gram
    of all its units, against the prompt's grams of that length."""
    # 東京: 2 units, one bigram (東, 京), which 東京はどこ has
    assert copied_from_prompt_share("東京", "東京はどこ", 4) == 1.0
    # 京都: the bigram (京, 都) is not in 東京はどこ (東京, 京は, はど, どこ)
    assert copied_from_prompt_share("京都", "東京はどこ", 4) == 0.0
    # 東京は大: 4 units, one 4-gram, not in the prompt; "Paris": one word, in the prompt
    assert copied_from_prompt_share("東京は大", "東京はどこ", 4) == 0.0
    assert copied_from_prompt_share("Paris.", "Is it Paris or Rome?", 4) == 1.0
    # 3 units, 2 of 3 in order (どこ) but not the trigram どこか: 0
    assert copied_from_prompt_share("どこか", "東京はどこ", 4) == 0.0
    # empty: nothing copied (n_chars reports the emptiness)
    assert copied_from_prompt_share("", "東京はどこ", 4) == 0.0 and copied_from_prompt_share("。", "。", 4) == 0.0


def test_quote_marks_at_a_words_edges_are_not_part_of_it():
    assert units("'yes' \"no\" don't 'tis") == ["yes", "no", "don't", "tis"]
    assert copied_from_prompt_share("'yes'", "Answer yes or no.", 4) == 1.0


def test_middle_dot_and_prolonged_mark_are_not_kana_by_themselves():
    """・ (U+30FB) between Chinese or kanji names made the text Japanese; ー counts only after a kana."""
    assert script_counts("東京・大阪・京都") == {"kana": 0, "han": 6, "latin": 0}
    assert detect_language("東京・大阪・京都", 0.1) == "zh"
    assert detect_language("列夫・托尔斯泰", 0.1) == "zh"
    # カード: カ, ー after a kana, ド; ｶｰﾄﾞ half-width: ｶ, ｰ after it, ﾄ (the voicing mark ﾞ is no letter)
    assert script_counts("カード") == {"kana": 3, "han": 0, "latin": 0}
    assert script_counts("ｶｰﾄﾞ") == {"kana": 3, "han": 0, "latin": 0}
    # ー after a kanji or at the start is no kana
    assert script_counts("ー東ー京") == {"kana": 0, "han": 2, "latin": 0}
    assert detect_language("トルストイ・レフ", 0.1) == "ja"


# ---- chrF against the reference, and its paired before/after interval (issue 13)
REFERENCES = [
    "日本の首都は東京です。",
    "富士山の高さは3776メートルです。",
    "The cat sat on the mat.",
    "水は100度で沸騰します。",
]


def test_chrf_on_known_strings():
    from qeu_kedro.pipelines.alpaca_sft.measures import chrf

    assert chrf("日本の首都は東京です。", "日本の首都は東京です。") == pytest.approx(100.0)
    assert chrf("abc", "日本の首都") == 0.0 and chrf("", "日本") == 0.0
    # Character n-grams: a Japanese answer that shares a part of the reference scores between the two,
    # and more shared characters score higher.
    part, more = chrf("東京です。", REFERENCES[0]), chrf("首都は東京です。", REFERENCES[0])
    assert 0 < part < more < 100


def test_identical_answers_give_a_zero_difference_and_an_interval_containing_zero():
    from qeu_kedro.pipelines.alpaca_sft.measures import chrf
    from qeu_kedro.stats import paired_bootstrap

    answers = ["東京です。", "三千メートル。", "A cat sat.", "沸騰します。"]
    scores = [chrf(a, r) for a, r in zip(answers, REFERENCES, strict=True)] * 2  # 8 prompts: an interval needs 6
    result = paired_bootstrap(scores, scores, n_resamples=2000, seed=0)
    assert result.difference == 0.0 and result.ci_low <= 0.0 <= result.ci_high
    assert result.verdict == "no evidence"


def test_a_constructed_improvement_gives_an_interval_above_zero():
    from qeu_kedro.pipelines.alpaca_sft.measures import chrf
    from qeu_kedro.stats import paired_bootstrap

    references = REFERENCES * 3
    before = [chrf(a, r) for a, r in zip(["わかりません"] * len(references), references, strict=True)]
    # After: every answer is the first half of its reference, then the whole reference.
    after = [chrf(r[: len(r) // 2] if i % 2 else r, r) for i, r in enumerate(references)]
    result = paired_bootstrap(before, after, n_resamples=2000, seed=0)
    assert result.ci_low > 0 and result.verdict == "better"
    assert "better" in result.describe("chrF")


def test_measure_answer_with_a_reference_scores_it_and_the_references_own_copying():
    prompt = "### Instruction:\n日本の首都はどこですか。"
    m = measure_answer("日本の首都は東京です。", "ja", 4, 0.1, prompt, "日本の首都は東京です。")
    assert m["chrf"] == pytest.approx(100.0)
    # 日本の首 本の首都 の首都は are in the prompt: 3 of the reference's 7 character 4-grams (punctuation dropped).
    assert m["reference_copied_4gram_share"] == pytest.approx(3 / 7, abs=1e-4)
    assert "chrf" not in measure_answer("x", "en", 4, 0.1, prompt)
    # the reference's own language by the same detector: the ceiling of language_match
    assert m["reference_language_match"] is True
    assert measure_answer("東京", "ja", 4, 0.1, prompt, "東京")["reference_language_match"] is False  # kanji only: zh
    assert measure_answer("42", "ja", 4, 0.1, prompt, "42")["reference_language_match"] is False  # no letters: none
