"""Sample (anchor, positive) pairs for ``bge_finetune``: a question about a film and its overview.

Built from the movie sample's vocabulary (``movies.py``): every positive is an overview
in the same shape as ``movies.csv`` ("<name>'s story. <sentence> <sentence>"), and its
anchor asks for that film by the hero's name and by *paraphrases* of the two sentences.

Why retrieval is not trivial here:

- the anchor shares almost no words with its overview (the paraphrases avoid the
  sentences' key words), so lexical overlap does not find the answer;
- every overview has hard negatives in the corpus: the same hero in the same topic with
  one of the two sentences in common, and the same two sentences told of another hero.
  Topic alone narrows the corpus to a sixth; only name *and* both events pin the answer.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from qeu_kedro.sample_data.movies import _NAMES, _SENTENCES

# One paraphrase per sentence of movies._SENTENCES, same order, different words on purpose.
_HINTS = {
    "space": [
        "explorers heading for another world on a spacecraft that is breaking down",
        "a rookie flyer dodging rocks after the orbital outpost goes silent",
        "researchers replying to an alien transmission",
        "a technician marooned on the lunar surface waiting for help",
        "a commander risking a walk outside to protect settlers from an icy visitor",
    ],
    "cooking": [
        "a woman chasing a famous award for her little bistro",
        "competing pastry makers on a TV show",
        "an old family notebook of dishes that leads to a road trip of snacks",
        "hotel workers preparing a royal dinner",
        "a reviewer who can no longer taste anything",
    ],
    "sports": [
        "a weak squad reaching the title game",
        "an old fighter training a young girl",
        "a hurt long-distance athlete coming back",
        "a manager gambling on a new thrower",
        "bike riders climbing peaks in a brutal leg of a tour",
    ],
    "romance": [
        "two people meeting during wet days in France",
        "an event organiser attracted to the sibling of the husband-to-be",
        "forgotten notes found upstairs bringing lovers back together",
        "a timid shop clerk and a singer trading messages",
        "a holiday fling by the sea fading as the season changes",
    ],
    "war": [
        "troops defending a river crossing in the cold",
        "a field nurse rescuing the injured under shelling",
        "a unit trapped in hostile land trying to get home",
        "a commander sending men up a defended hill",
        "airmen downed and sheltered by partisans",
    ],
    "horror": [
        "a household hearing a spirit at night in their new home",
        "young campers stalked by a murderer in a mask",
        "a deadly toy that kills its owners",
        "a clergyman fighting a demon inside a child",
        "the undead attacking a village while survivors hide in a chapel",
    ],
}

_TEMPLATES = [
    "Which movie follows {name}, with {a} and {b}?",
    "film about {name}: {a}; {b}",
    "the one where {name} is involved in {a}, and later {b}",
    "Looking for a story of {name} featuring {a} and also {b}",
]


def make_pairs(n_pairs: int = 480, seed: int = 11) -> pd.DataFrame:
    """Return ``id, anchor, positive``: ``n_pairs`` distinct overviews, each with one query."""
    rng = np.random.default_rng(seed)
    # every (hero, topic, unordered pair of sentences) is one distinct film: 10 x 6 x 10 = 600
    films = [(name, topic, i, j) for name in _NAMES for topic in _SENTENCES for i, j in combinations(range(5), 2)]
    if not 0 < n_pairs <= len(films):
        raise ValueError(f"n_pairs must be in 1..{len(films)}, got {n_pairs}")
    rows = []
    for k in rng.choice(len(films), size=n_pairs, replace=False):
        name, topic, i, j = films[k]
        if rng.random() < 0.5:  # the overview tells the two events in either order
            i, j = j, i
        positive = f"{name}'s story. {_SENTENCES[topic][i]} {_SENTENCES[topic][j]}"
        # the anchor names the events in an order of its own, so position does not give it away
        a, b = (_HINTS[topic][i], _HINTS[topic][j]) if rng.random() < 0.5 else (_HINTS[topic][j], _HINTS[topic][i])
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        rows.append((template.format(name=name, a=a, b=b), positive))
    pairs = pd.DataFrame(rows, columns=["anchor", "positive"])
    pairs.insert(0, "id", np.arange(len(pairs)))
    return pairs


def write_pairs(folder: Path) -> list[Path]:
    """Write ``pairs.csv`` into ``folder``."""
    path = Path(folder) / "pairs.csv"
    make_pairs().to_csv(path, index=False)
    return [path]
