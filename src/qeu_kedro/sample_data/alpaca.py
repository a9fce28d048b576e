"""A small multilingual alpaca-style Excel sheet in the original experiment's shape.

Columns: ``NO, category, field, input, instruction, language, output, reasoning, seq, uniqueness``.
The same twelve tasks are written in Japanese, English and Chinese (36 rows). Planted
structure the pipeline's tests rely on:

- per language, two ``open_qa`` × ``simple`` rows and two ``creative`` × ``simple`` rows,
  so each of the original's two reasoning rules fires on 6 of the 36 rows (``RULE_HITS``);
- ``open_qa`` and ``creative`` also have ``complex`` rows, where no rule fires;
- some rows start with a reasoning text, others with an empty one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["NO", "category", "field", "input", "instruction", "language", "output", "reasoning", "seq", "uniqueness"]
FILENAME = "alpaca_sample.xlsx"

# (category, uniqueness, field) of the twelve tasks, in order.
_TASKS = [
    ("open_qa", "simple", "geography"),
    ("open_qa", "simple", "calendar"),
    ("open_qa", "complex", "health"),
    ("creative", "simple", "writing"),
    ("creative", "simple", "writing"),
    ("creative", "complex", "writing"),
    ("closed_qa", "simple", "reading"),
    ("classification", "simple", "sentiment"),
    ("classification", "simple", "food"),
    ("brainstorming", "complex", "leisure"),
    ("summarization", "complex", "reading"),
    ("closed_qa", "complex", "reading"),
]

# (instruction, input, output, reasoning) per language, aligned with _TASKS.
_TEXTS: dict[str, list[tuple[str, str, str, str]]] = {
    "en": [
        ("What is the capital of Japan?", "", "The capital of Japan is Tokyo.", "There is exactly one correct answer."),
        ("How many days are there in a week?", "", "There are seven days in a week.", ""),
        (
            "How can I sleep better?",
            "",
            "Go to bed at the same time every day, avoid screens before sleep and keep your bedroom dark and cool.",
            "Give a few practical tips.",
        ),
        (
            "Write one sentence that uses the word 'river'.",
            "",
            "The children watched the boats drift slowly down the river.",
            "",
        ),
        (
            "Write a sentence about autumn that ends with the word 'leaves'.",
            "",
            "In October the wind scatters the red and yellow leaves.",
            "The user fixes the last word.",
        ),
        (
            "Write a very short story about a lost cat.",
            "",
            "Mimi slipped out of the open window one rainy night. After three days of searching, "
            "her owner found her asleep in the bakery next door, warm between two sacks of flour.",
            "",
        ),
        (
            "When was the bridge opened?",
            "The old stone bridge was built in 1890 and opened to traffic in 1892.",
            "The bridge was opened in 1892.",
            "Answer only from the text.",
        ),
        (
            "Is the sentiment of this review positive or negative?",
            "The food was cold and the waiter was rude.",
            "Negative",
            "",
        ),
        (
            "Is a tomato a fruit or a vegetable in botany?",
            "",
            "In botany, a tomato is a fruit.",
            "There is one botanical answer.",
        ),
        (
            "Give me three ideas for a rainy weekend.",
            "",
            "1. Bake bread at home. 2. Visit a museum. 3. Start a jigsaw puzzle with friends.",
            "",
        ),
        (
            "Summarize the text in one sentence.",
            "The town library will close for two weeks in March to replace its roof. "
            "During the closure, books can be returned at the town hall.",
            "The library closes for two weeks in March for roof repairs, and books can be returned at the town hall.",
            "",
        ),
        (
            "Why did the author move to the countryside?",
            "After years in the city, the author wanted a quiet place to write, "
            "cheaper rent and a garden to grow vegetables.",
            "The author wanted quiet for writing, lower rent and a garden.",
            "Several reasons are given; list them.",
        ),
    ],
    "ja": [
        ("日本の首都はどこですか？", "", "日本の首都は東京です。", "正解は一つだけです。"),
        ("一週間は何日ですか？", "", "一週間は七日です。", ""),
        (
            "よく眠るにはどうすればよいですか？",
            "",
            "毎日同じ時間に寝て、寝る前にスマートフォンを見ないようにし、寝室を暗く涼しく保ちましょう。",
            "実用的なこつをいくつか挙げてください。",
        ),
        (
            "「川」という言葉を使って文を一つ作ってください。",
            "",
            "子どもたちは川をゆっくり下っていく舟を眺めていました。",
            "",
        ),
        (
            "「葉」という言葉で終わる秋の文を書いてください。",
            "",
            "十月になると、風が赤や黄色に色づいた葉を散らします。",
            "最後の言葉は指定されています。",
        ),
        (
            "迷子の猫についての短い物語を書いてください。",
            "",
            "ある雨の夜、ミミは開いた窓からそっと抜け出しました。三日間探し回った末、飼い主は隣のパン屋で小麦粉の袋の間で温かく眠っているミミを見つけました。",
            "",
        ),
        (
            "その橋はいつ開通しましたか？",
            "古い石橋は1890年に建設され、1892年に開通しました。",
            "その橋は1892年に開通しました。",
            "本文だけから答えてください。",
        ),
        ("このレビューの感情は肯定的ですか、否定的ですか？", "料理は冷めていて、店員の態度も悪かった。", "否定的", ""),
        (
            "植物学ではトマトは果物ですか、野菜ですか？",
            "",
            "植物学では、トマトは果物です。",
            "植物学上の答えは一つです。",
        ),
        (
            "雨の週末の過ごし方を三つ提案してください。",
            "",
            "1. 家でパンを焼く。2. 美術館に行く。3. 友達とジグソーパズルを始める。",
            "",
        ),
        (
            "次の文章を一文で要約してください。",
            "町の図書館は屋根の交換のため、三月に二週間休館します。休館中、本は町役場で返却できます。",
            "図書館は屋根の修理のため三月に二週間休館し、本は町役場で返却できます。",
            "",
        ),
        (
            "筆者はなぜ田舎に引っ越したのですか？",
            "何年も都会で暮らした後、筆者は執筆のための静かな場所と、安い家賃と、野菜を育てる庭を求めていました。",
            "筆者は執筆のための静けさ、安い家賃、そして庭を求めていました。",
            "理由が複数あるので、すべて挙げてください。",
        ),
    ],
    "zh": [
        ("日本的首都是哪里？", "", "日本的首都是东京。", "只有一个正确答案。"),
        ("一周有几天？", "", "一周有七天。", ""),
        (
            "怎样才能睡得更好？",
            "",
            "每天在同一时间睡觉，睡前不要看手机，并保持卧室黑暗和凉爽。",
            "给出几条实用的建议。",
        ),
        ("请用“河”这个词造一个句子。", "", "孩子们看着小船慢慢地顺河而下。", ""),
        ("请写一个以“叶子”结尾的关于秋天的句子。", "", "十月的风吹落了红色和黄色的叶子。", "用户指定了最后一个词。"),
        (
            "请写一个关于走失的猫的小故事。",
            "",
            "一个下雨的夜晚，咪咪从打开的窗户溜了出去。找了三天之后，主人发现它在隔壁面包店的两袋面粉之间暖暖地睡着了。",
            "",
        ),
        (
            "这座桥是什么时候通车的？",
            "这座古老的石桥建于1890年，于1892年通车。",
            "这座桥于1892年通车。",
            "只根据文本回答。",
        ),
        ("这条评论的情感是正面的还是负面的？", "饭菜是凉的，服务员也很粗鲁。", "负面", ""),
        ("在植物学上，番茄是水果还是蔬菜？", "", "在植物学上，番茄是水果。", "植物学上的答案只有一个。"),
        ("请给出三个下雨的周末可以做的事情。", "", "1. 在家烤面包。2. 去博物馆。3. 和朋友一起拼拼图。", ""),
        (
            "请用一句话总结下面的文字。",
            "镇图书馆将在三月闭馆两周以更换屋顶。闭馆期间，可以在镇政府还书。",
            "图书馆三月因修屋顶闭馆两周，书可以在镇政府归还。",
            "",
        ),
        (
            "作者为什么搬到了乡下？",
            "在城市生活多年后，作者想要一个安静的写作地方、更便宜的房租和一个种菜的花园。",
            "作者想要安静的写作环境、更低的房租和一个花园。",
            "理由有好几个，请全部列出。",
        ),
    ],
}

LANGUAGES = ("ja", "en", "zh")
# Rows per language where each of the original's two rules applies.
RULE_HITS = {("open_qa", "simple"): 2, ("creative", "simple"): 2}


def make_alpaca() -> pd.DataFrame:
    """Return the 36-row sample sheet (12 tasks × ja, en, zh)."""
    rows = []
    number = 1
    for language in LANGUAGES:
        for seq, ((category, uniqueness, field), (instruction, inp, output, reasoning)) in enumerate(
            zip(_TASKS, _TEXTS[language], strict=True), start=1
        ):
            rows.append(
                {
                    "NO": number,
                    "category": category,
                    "field": field,
                    "input": inp,
                    "instruction": instruction,
                    "language": language,
                    "output": output,
                    "reasoning": reasoning,
                    "seq": seq,
                    "uniqueness": uniqueness,
                }
            )
            number += 1
    return pd.DataFrame(rows, columns=COLUMNS)


def write_alpaca(folder: Path) -> list[Path]:
    """Write ``alpaca_sample.xlsx`` (one sheet) into ``folder``."""
    path = Path(folder) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    make_alpaca().to_excel(path, index=False, sheet_name="alpaca")
    return [path]
