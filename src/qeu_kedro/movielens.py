"""Match MovieLens movies to TMDB overviews by normalised title and release year.

MovieLens titles look like ``Usual Suspects, The (1995)`` (article moved to the end, year
in brackets, sometimes an alternative title in brackets too); TMDB has ``title`` and
``release_date``. A movie matches when its normalised title (or its bracketed
alternative title) and year equal a TMDB movie's; ambiguous keys are skipped. The articles
MovieLens moves to the end are a parameter (``movie_overviews.articles``); the node is
:func:`qeu_kedro.pipelines.movie_embedding.overviews.match_overviews`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import pandas as pd

from qeu_kedro.validation import is_blank

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_ALT = re.compile(r"\s*\(([^()]*)\)\s*$")


def normalise_title(title: str) -> str:
    """Lower-case, accents and punctuation removed, '&' as 'and', spaces collapsed."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return " ".join(text.split())


def _article_pattern(articles: Sequence[str]) -> re.Pattern[str] | None:
    """``Rest, Article`` with one of ``articles`` (case-insensitive); None when there are none."""
    if not articles:
        return None
    alternatives = "|".join(re.escape(a) for a in articles)
    return re.compile(rf"^(?P<rest>.*), (?P<article>{alternatives})$", re.IGNORECASE)


def _unflip(title: str, article_pattern: re.Pattern[str] | None) -> str:
    match = article_pattern.match(title.strip()) if article_pattern else None
    if not match:
        return title.strip()
    article = match["article"]
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{match['rest']}"


def movielens_title_keys(raw_title: str, articles: Sequence[str]) -> tuple[list[str], int | None]:
    """Candidate normalised titles and the year of a MovieLens title (``articles``: see the module)."""
    pattern = _article_pattern(articles)
    year_match = _YEAR.search(raw_title)
    year = int(year_match.group(1)) if year_match else None
    title = _YEAR.sub("", raw_title)
    candidates = []
    alt = _ALT.search(title)
    if alt:
        candidates.append(_unflip(alt.group(1), pattern))
        title = _ALT.sub("", title)
    candidates.insert(0, _unflip(title, pattern))
    keys = [normalise_title(c) for c in candidates if normalise_title(c)]
    return keys, year


def match_movielens_tmdb(items: pd.DataFrame, tmdb: pd.DataFrame, articles: Sequence[str]) -> pd.DataFrame:
    """Return ``movie_id, title, overview`` for the MovieLens items found in TMDB, in ``items``' order.

    Args:
        items: a MovieLens movie list with at least ``movie_id`` and ``title``.
        tmdb: TMDB movies with ``title``, ``release_date`` and ``overview``; rows missing any
            of them, or with a blank overview, describe nothing.
        articles: the articles MovieLens moves to the end of a title.
    """
    tmdb = tmdb.dropna(subset=["title", "release_date", "overview"]).copy()
    tmdb = tmdb[~tmdb["overview"].map(is_blank)]  # only whitespace or invisible characters: nothing to embed
    tmdb["year"] = pd.to_datetime(tmdb["release_date"], errors="coerce").dt.year
    tmdb = tmdb.dropna(subset=["year"])
    tmdb["key"] = tmdb["title"].map(normalise_title)
    counts = tmdb.groupby(["key", "year"]).size()
    unique = tmdb.set_index(["key", "year"]).loc[counts[counts == 1].index]
    lookup = unique["overview"].to_dict()

    rows = []
    for movie_id, raw_title in zip(items["movie_id"], items["title"], strict=True):
        if not isinstance(raw_title, str):
            continue
        keys, year = movielens_title_keys(raw_title, articles)
        if year is None:
            continue
        for key in keys:
            overview = lookup.get((key, year))
            if overview is not None:
                rows.append((int(movie_id), raw_title, overview.strip()))
                break
    return pd.DataFrame(rows, columns=["movie_id", "title", "overview"])
