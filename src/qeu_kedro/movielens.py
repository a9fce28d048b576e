"""Match MovieLens 100K movies to TMDB overviews by normalised title and release year.

MovieLens titles look like ``Usual Suspects, The (1995)`` (article moved to the end, year
in brackets, sometimes an alternative title in brackets too); TMDB has ``title`` and
``release_date``. A movie matches when its normalised title (or its bracketed
alternative title) and year equal a TMDB movie's; ambiguous keys are skipped.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_ARTICLE = re.compile(r"^(?P<rest>.*), (?P<article>the|a|an|les|la|le|il|l'|el|das|der|die)$", re.IGNORECASE)
_ALT = re.compile(r"\s*\(([^()]*)\)\s*$")


def normalise_title(title: str) -> str:
    """Lower-case, accents and punctuation removed, '&' as 'and', spaces collapsed."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return " ".join(text.split())


def _unflip(title: str) -> str:
    match = _ARTICLE.match(title.strip())
    if not match:
        return title.strip()
    article = match["article"]
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{match['rest']}"


def movielens_title_keys(raw_title: str) -> tuple[list[str], int | None]:
    """Candidate normalised titles and the year of a MovieLens title."""
    year_match = _YEAR.search(raw_title)
    year = int(year_match.group(1)) if year_match else None
    title = _YEAR.sub("", raw_title)
    candidates = []
    alt = _ALT.search(title)
    if alt:
        candidates.append(_unflip(alt.group(1)))
        title = _ALT.sub("", title)
    candidates.insert(0, _unflip(title))
    keys = [normalise_title(c) for c in candidates if normalise_title(c)]
    return keys, year


def match_movielens_tmdb(items: pd.DataFrame, tmdb: pd.DataFrame) -> pd.DataFrame:
    """Return ``movie_id, title, overview`` for the MovieLens items found in TMDB.

    Args:
        items: MovieLens ``u.item`` with at least ``movie_id`` and ``title``.
        tmdb: TMDB movies with ``title``, ``release_date`` and ``overview``.
    """
    tmdb = tmdb.dropna(subset=["title", "release_date", "overview"]).copy()
    tmdb = tmdb[tmdb["overview"].str.strip() != ""]
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
        keys, year = movielens_title_keys(raw_title)
        if year is None:
            continue
        for key in keys:
            overview = lookup.get((key, year))
            if overview is not None:
                rows.append((int(movie_id), raw_title, overview.strip()))
                break
    return pd.DataFrame(rows, columns=["movie_id", "title", "overview"])
