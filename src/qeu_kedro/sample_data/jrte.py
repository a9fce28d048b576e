"""Sample ``pn.tsv``: Japanese hotel-review sentences in the JRTE corpus's format, written by the project.

Same shape as the real file: no header; id, label (1 / 0 / -1), text, judges (JSON vote
counts of three annotators), usage (train / dev / test).

Planted structure (what the analyses should find):

- positive and negative sentences combine an aspect of the stay (room, breakfast, staff ...)
  with an evaluative phrase; neutral ones state facts (purpose of the trip, what was used);
- a share of sentences is mixed ("... but ...") or hedged ("まあまあ"): their label is the
  majority of disagreeing votes, so annotator agreement is low and they are harder;
- long sentences chain two clauses, so error rates can be compared across length buckets;
- neutral sentences that name a quality without judging it ("部屋は広さの割に...のか気になりました")
  and a share of labels the annotators split on (the majority against the template's polarity):
  the fine-tuned model makes errors for Level 3 to analyse, most on the neutral class.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

ASPECTS = [
    "部屋",
    "朝食",
    "夕食",
    "スタッフの対応",
    "温泉",
    "大浴場",
    "ベッド",
    "立地",
    "接客",
    "景色",
    "清掃",
    "フロント",
]

POSITIVE = [
    "{a}がとても良かったです。",
    "{a}が素晴らしく、大満足でした。",
    "{a}がきれいで快適に過ごせました。",
    "{a}が最高でした。",
    "{a}に感動しました。",
    "{a}がとても親切で嬉しかったです。",
    "また是非利用したいと思います。",
    "家族みんな大喜びでした。",
    "{a}も申し分なく、おすすめです。",
    "{a}が期待以上でした。",
]
NEGATIVE = [
    "{a}が汚くて残念でした。",
    "{a}が最悪でした。",
    "{a}にはがっかりしました。",
    "{a}が不親切で不快でした。",
    "{a}が古くて狭かったです。",
    "{a}がうるさくて眠れませんでした。",
    "二度と泊まりたくありません。",
    "{a}は値段の割にひどかったです。",
    "{a}が冷めていて美味しくなかったです。",
    "{a}の対応が遅くて困りました。",
]
NEUTRAL = [
    "出張で利用しました。",
    "{a}を利用しました。",
    "家族旅行で一泊しました。",
    "{a}は一階にあります。",
    "チェックインは十五時からでした。",
    "駅から歩いて十分ほどです。",
    "{a}は和室でした。",
    "友人と二人で泊まりました。",
    "{a}は予約時に選びました。",
    "観光の拠点として使いました。",
]
# Mixed or hedged: the gold label is a slim majority of the votes.
MIXED = [
    ("{a}は良かったのですが、{b}が残念でした。", -1),
    ("{a}は古いですが、{b}はとても良かったです。", 1),
    ("{a}はまあまあでした。", 0),
    ("{a}は普通でした。", 0),
    ("{a}は可もなく不可もなくといったところです。", 0),
    ("値段相応だと思います。", 0),
    ("{a}が少し狭かったけれど、{b}には満足です。", 1),
    ("{a}は悪くないですが、{b}がもう少しでした。", -1),
]
# Neutral, but with words that usually carry a polarity: the hard neutral cases of the corpus.
NEUTRAL_HARD = [
    "{a}が良いと聞いて予約しました。",
    "{a}の評判を見てから決めました。",
    "{a}がきれいかどうか気になっていました。",
    "{a}は最高の場所にあると書いてありました。",
    "{a}が不便かもしれないと思っていました。",
    "{a}の口コミは良い意見と悪い意見がありました。",
]
CONNECTIVES = ["また、", "それに、", "ただ、", "そして、"]

LABELS = (1, 0, -1)
USAGE = {"train": 0.7, "dev": 0.15, "test": 0.15}


def _votes(rng: np.random.Generator, label: int, agreement: int) -> dict[str, int]:
    """Three annotators' votes whose majority is ``label``, ``agreement`` of them for it."""
    votes = {str(label): agreement}
    others = [str(v) for v in LABELS if v != label]
    for _ in range(3 - agreement):
        other = str(rng.choice(others))
        votes[other] = votes.get(other, 0) + 1
    return dict(sorted(votes.items(), key=lambda kv: kv[0]))


def _sentence(rng: np.random.Generator, templates: list[str]) -> str:
    a, b = rng.choice(ASPECTS, size=2, replace=False)
    return str(rng.choice(templates)).format(a=a, b=b)


def make_pn(
    n_rows: int = 360,
    mixed_share: float = 0.2,
    long_share: float = 0.25,
    hard_neutral_share: float = 0.35,
    split_share: float = 0.08,
    seed: int = 11,
) -> pd.DataFrame:
    """Return the sample ``pn`` table (columns id, label, text, judges, usage)."""
    rng = np.random.default_rng(seed)
    pools = {1: POSITIVE, 0: NEUTRAL, -1: NEGATIVE}
    # Class balance close to the corpus (about 60 % positive, 25 % neutral, 15 % negative).
    probs = {1: 0.55, 0: 0.27, -1: 0.18}
    rows, seen = [], set()
    while len(rows) < n_rows:
        if rng.random() < mixed_share:
            template, label = MIXED[int(rng.integers(len(MIXED)))]
            text = _sentence(rng, [template])
            agreement = 2
        else:
            label = int(rng.choice(list(probs), p=list(probs.values())))
            hard = label == 0 and rng.random() < hard_neutral_share
            text = _sentence(rng, NEUTRAL_HARD if hard else pools[label])
            if rng.random() < long_share:
                # A second clause of the same polarity makes a long sentence.
                text = text + str(rng.choice(CONNECTIVES)) + _sentence(rng, pools[label])
            agreement = 3 if rng.random() < 0.85 and not hard else 2
            if rng.random() < split_share:
                # the annotators read it otherwise: the majority label is not the template's
                label = int(rng.choice([v for v in LABELS if v != label]))
                agreement = 2
        if text in seen:
            continue
        seen.add(text)
        usage = str(rng.choice(list(USAGE), p=list(USAGE.values())))
        rows.append((label, text, json.dumps(_votes(rng, label, agreement)), usage))
    ids = [f"pn_sample{i:05d}" for i in range(1, n_rows + 1)]
    return pd.DataFrame(
        {
            "id": ids,
            "label": [r[0] for r in rows],
            "text": [r[1] for r in rows],
            "judges": [r[2] for r in rows],
            "usage": [r[3] for r in rows],
        }
    )


def write_pn(folder: Path) -> list[Path]:
    """Write ``pn.tsv`` (no header, tab-separated, like the corpus) into ``folder``."""
    path = Path(folder) / "pn.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    make_pn().to_csv(path, sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE)
    return [path]
