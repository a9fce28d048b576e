"""A small multilingual alpaca-style Excel sheet in the original experiment's shape.

Columns: ``NO, category, field, input, instruction, language, output, reasoning, seq, uniqueness``.
The same thirty tasks are written in Japanese, English and Chinese (90 rows); the column ``seq``
numbers the task, so a split can keep a task's three rows on one side. Planted
structure the pipeline's tests rely on:

- per language, five ``open_qa`` × ``simple`` rows and three ``creative`` × ``simple`` rows,
  so the original's two reasoning rules fire on 15 and 9 of the 90 rows (``RULE_HITS``);
- ``open_qa`` and ``creative`` also have ``complex`` rows, where no rule fires;
- some rows start with a reasoning text, others with an empty one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["NO", "category", "field", "input", "instruction", "language", "output", "reasoning", "seq", "uniqueness"]
FILENAME = "alpaca_sample.xlsx"

# (category, uniqueness, field) of the thirty tasks, in order (tasks 13-30 were added so that
# the default run holds out 8 whole tasks, 24 prompts: 6 prompts gave intervals too wide to read).
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
    ("open_qa", "simple", "geography"),
    ("open_qa", "simple", "science"),
    ("math", "simple", "arithmetic"),
    ("math", "simple", "arithmetic"),
    ("classification", "simple", "sentiment"),
    ("classification", "simple", "animals"),
    ("closed_qa", "simple", "reading"),
    ("closed_qa", "simple", "reading"),
    ("information_extraction", "simple", "calendar"),
    ("information_extraction", "simple", "food"),
    ("summarization", "complex", "school"),
    ("brainstorming", "complex", "home"),
    ("creative", "simple", "writing"),
    ("open_qa", "simple", "calendar"),
    ("general_qa", "complex", "science"),
    ("math", "simple", "numbers"),
    ("closed_qa", "simple", "shopping"),
    ("creative", "complex", "writing"),
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
        ("What is the largest ocean on Earth?", "", "The largest ocean on Earth is the Pacific Ocean.", ""),
        (
            "At what temperature does water boil at sea level?",
            "",
            "At sea level, water boils at 100 degrees Celsius.",
            "Give the temperature in degrees Celsius.",
        ),
        ("What is 12 times 4?", "", "12 times 4 is 48.", "Give the result."),
        ("A pen costs 150 yen. How much do three pens cost?", "", "Three pens cost 450 yen.", ""),
        (
            "Is the sentiment of this review positive or negative?",
            "The room was clean and the staff were very kind.",
            "Positive",
            "",
        ),
        ("Is a whale a fish or a mammal?", "", "A whale is a mammal.", ""),
        (
            "How many students are in the class?",
            "The class has 18 girls and 12 boys.",
            "There are 30 students in the class.",
            "Answer only from the text.",
        ),
        (
            "Where does Ken work?",
            "Ken is a nurse at the city hospital and lives near the station.",
            "Ken works at the city hospital.",
            "",
        ),
        (
            "Extract the date from the text.",
            "Because of the holiday, the meeting was moved to 14 May.",
            "14 May.",
            "Give only the date.",
        ),
        (
            "List the fruits mentioned in the text.",
            "She bought apples, bread, bananas and milk.",
            "Apples and bananas.",
            "",
        ),
        (
            "Summarize the text in one sentence.",
            "The school festival planned for Saturday has been moved to Sunday because heavy rain is forecast. "
            "All the events stay the same.",
            "Because heavy rain is forecast, the school festival moves from Saturday to Sunday with the same events.",
            "",
        ),
        (
            "Give me three ways to save water at home.",
            "",
            "1. Take shorter showers. 2. Turn off the tap while brushing your teeth. 3. Fix leaking taps.",
            "",
        ),
        (
            "Write one sentence that uses the word 'mountain'.",
            "",
            "We reached the top of the mountain just as the sun came up.",
            "",
        ),
        ("How many months are there in a year?", "", "There are twelve months in a year.", ""),
        (
            "Why do leaves change colour in autumn?",
            "",
            "In autumn trees stop making chlorophyll and its green breaks down, so the yellow pigments already in "
            "the leaves show; some trees also make new red pigments.",
            "Explain the cause briefly.",
        ),
        ("Is 17 an even or an odd number?", "", "17 is an odd number.", ""),
        (
            "What does the shop sell?",
            "The small shop on the corner sells fresh bread, coffee and homemade jam.",
            "The shop sells fresh bread, coffee and homemade jam.",
            "Answer only from the text.",
        ),
        (
            "Write a two-line poem about the sea.",
            "",
            "The sea hums softly to the sleeping shore, / and the waves come back to whisper it once more.",
            "",
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
        ("地球上で最も大きい海洋は何ですか？", "", "地球上で最も大きい海洋は太平洋です。", ""),
        (
            "海抜0メートルでは、水は何度で沸騰しますか？",
            "",
            "海抜0メートルでは、水は摂氏100度で沸騰します。",
            "温度は摂氏で答えてください。",
        ),
        ("12かける4はいくつですか？", "", "12かける4は48です。", "答えを求めてください。"),
        ("ペンは1本150円です。3本ではいくらですか？", "", "ペン3本は450円です。", ""),
        (
            "このレビューの感情は肯定的ですか、否定的ですか？",
            "部屋は清潔で、スタッフもとても親切だった。",
            "肯定的",
            "",
        ),
        ("クジラは魚ですか、哺乳類ですか？", "", "クジラは哺乳類です。", ""),
        (
            "そのクラスには生徒が何人いますか？",
            "このクラスには女子が18人、男子が12人います。",
            "そのクラスには30人の生徒がいます。",
            "本文だけから答えてください。",
        ),
        (
            "健さんはどこで働いていますか？",
            "健さんは市立病院の看護師で、駅の近くに住んでいます。",
            "健さんは市立病院で働いています。",
            "",
        ),
        (
            "次の文から日付を抜き出してください。",
            "祝日のため、会議は5月14日に変更されました。",
            "5月14日です。",
            "日付だけを答えてください。",
        ),
        (
            "次の文に出てくる果物を挙げてください。",
            "彼女はりんご、パン、バナナ、牛乳を買いました。",
            "りんごとバナナです。",
            "",
        ),
        (
            "次の文章を一文で要約してください。",
            "土曜日に予定されていた文化祭は、大雨の予報のため日曜日に延期されます。催し物の内容は変わりません。",
            "大雨の予報のため、文化祭は内容を変えずに土曜日から日曜日に延期されます。",
            "",
        ),
        (
            "家で節水する方法を三つ挙げてください。",
            "",
            "1. シャワーの時間を短くする。2. 歯みがきの間は水を止める。3. 水漏れする蛇口を直す。",
            "",
        ),
        (
            "「山」という言葉を使って文を一つ作ってください。",
            "",
            "私たちは日の出とともに山の頂上に着きました。",
            "",
        ),
        ("一年は何か月ですか？", "", "一年は十二か月です。", ""),
        (
            "秋になると葉の色が変わるのはなぜですか？",
            "",
            "秋になると木が葉緑素を作らなくなって緑色が分解され、もともと葉にあった黄色の色素が見えるようになるからです。"
            "木によっては赤い色素が新しく作られます。",
            "原因を簡単に説明してください。",
        ),
        ("17は偶数ですか、奇数ですか？", "", "17は奇数です。", ""),
        (
            "その店では何を売っていますか？",
            "角の小さな店では、焼きたてのパンとコーヒーと手作りのジャムを売っています。",
            "その店では焼きたてのパン、コーヒー、手作りのジャムを売っています。",
            "本文だけから答えてください。",
        ),
        (
            "海についての二行の詩を書いてください。",
            "",
            "海は眠る浜辺へそっと歌いかけ、/ 波は戻ってきてもう一度それをささやく。",
            "",
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
        ("地球上最大的海洋是哪个？", "", "地球上最大的海洋是太平洋。", ""),
        ("在海平面上，水的沸点是多少摄氏度？", "", "在海平面上，水在摄氏100度沸腾。", "温度请用摄氏度回答。"),
        ("12乘以4等于多少？", "", "12乘以4等于48。", "给出结果。"),
        ("一支笔150日元。三支笔多少钱？", "", "三支笔450日元。", ""),
        ("这条评论的情感是正面的还是负面的？", "房间很干净，工作人员也非常友好。", "正面", ""),
        ("鲸鱼是鱼还是哺乳动物？", "", "鲸鱼是哺乳动物。", ""),
        ("这个班有多少名学生？", "这个班有18名女生和12名男生。", "这个班有30名学生。", "只根据文本回答。"),
        ("小健在哪里工作？", "小健是市立医院的护士，住在车站附近。", "小健在市立医院工作。", ""),
        ("从下面的句子中提取日期。", "由于放假，会议改到了5月14日。", "5月14日。", "只回答日期。"),
        ("列出文中提到的水果。", "她买了苹果、面包、香蕉和牛奶。", "苹果和香蕉。", ""),
        (
            "请用一句话总结下面的文字。",
            "原定于星期六举行的学校文化节因预报有大雨而推迟到星期天。活动内容不变。",
            "因预报有大雨，学校文化节从星期六推迟到星期天，活动内容不变。",
            "",
        ),
        (
            "请给出三个在家节约用水的方法。",
            "",
            "1. 缩短洗澡时间。2. 刷牙时关掉水龙头。3. 修好漏水的水龙头。",
            "",
        ),
        ("请用“山”这个词造一个句子。", "", "太阳升起的时候，我们到达了山顶。", ""),
        ("一年有几个月？", "", "一年有十二个月。", ""),
        (
            "为什么秋天树叶会变色？",
            "",
            "秋天树木不再制造叶绿素，绿色逐渐分解，叶子里原有的黄色色素就显现出来；有些树还会新生成红色色素。",
            "简单说明原因。",
        ),
        ("17是偶数还是奇数？", "", "17是奇数。", ""),
        (
            "这家店卖什么？",
            "街角的小店卖新鲜面包、咖啡和自制果酱。",
            "这家店卖新鲜面包、咖啡和自制果酱。",
            "只根据文本回答。",
        ),
        ("请写一首关于大海的两行诗。", "", "大海对着沉睡的海岸轻轻歌唱，/ 海浪又回来把它再低语一遍。", ""),
    ],
}

LANGUAGES = ("ja", "en", "zh")
# Rows per language where each of the original's two rules applies.
RULE_HITS = {("open_qa", "simple"): 5, ("creative", "simple"): 3}


def make_alpaca() -> pd.DataFrame:
    """Return the 90-row sample sheet (30 tasks × ja, en, zh)."""
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


#: The date written into the workbook (its properties and its zip entries): openpyxl writes the time of the save,
#: so every regeneration changed the committed file's bytes though not one cell changed.
FIXED_DATE = (2026, 11, 25, 0, 0, 0)


def write_alpaca(folder: Path) -> list[Path]:
    """Write ``alpaca_sample.xlsx`` (one sheet) into ``folder``, the same bytes every time."""
    import io
    import re
    import zipfile

    path = Path(folder) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    make_alpaca().to_excel(buffer, index=False, sheet_name="alpaca")
    stamp = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*FIXED_DATE)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":  # dcterms:created and dcterms:modified
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), data)
            target.writestr(zipfile.ZipInfo(item.filename, date_time=FIXED_DATE), data, zipfile.ZIP_DEFLATED)
    path.write_bytes(out.getvalue())
    return [path]
