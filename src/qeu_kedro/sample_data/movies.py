"""Sample movies, users and ratings in the original experiment's three-file shape.

Planted structure (what the ridge analysis should find):

- every movie has one topic; its overview and title use that topic's words;
- a rating is ``3 + TOPIC_EFFECT[topic] + OCCUPATION_EFFECT[occupation] + noise``,
  rounded and clipped to 1..5, so embeddings of the overview explain part of the rating
  and the occupation one-hot columns explain another part; gender and age explain nothing;
- some ratings point to movies that are not in ``movies.csv`` (as MovieLens movies
  without a TMDB overview) and must be dropped by the join.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOPIC_EFFECT = {"space": 0.9, "cooking": 0.5, "sports": 0.1, "romance": -0.1, "war": -0.5, "horror": -0.9}
OCCUPATION_EFFECT = {
    "student": 0.5,
    "artist": 0.3,
    "engineer": 0.0,
    "programmer": 0.0,
    "doctor": 0.0,
    "educator": -0.1,
    "retired": -0.2,
    "writer": -0.6,
}

_TITLE_WORDS = {
    "space": (
        ["Starship", "Orbit", "Nebula", "Galaxy", "Moonbase", "Comet"],
        ["Beyond", "Voyage", "Signal", "Horizon"],
    ),
    "cooking": (["Kitchen", "Recipe", "Bakery", "Feast", "Spice", "Noodle"], ["Secrets", "Masters", "Summer", "Table"]),
    "sports": (["Goal", "Stadium", "Marathon", "Champion", "Rally", "Match"], ["Final", "Glory", "Season", "Comeback"]),
    "romance": (["Love", "Heart", "Wedding", "Kiss", "Letters", "Promise"], ["Paris", "Autumn", "Tonight", "Forever"]),
    "war": (["Battalion", "Trench", "Siege", "Frontline", "Regiment", "Bunker"], ["Winter", "Honor", "Ridge", "Dawn"]),
    "horror": (
        ["Haunting", "Curse", "Nightmare", "Crypt", "Shadows", "Possession"],
        ["Hollow", "Midnight", "Below", "Return"],
    ),
}

_SENTENCES = {
    "space": [
        "A crew of astronauts travels to a distant planet aboard a failing starship.",
        "When the space station loses contact with Earth, a young pilot must navigate an asteroid field.",
        "Scientists decode a mysterious signal from another galaxy and launch a rocket to answer it.",
        "An engineer stranded on the moon improvises to survive until the rescue mission arrives.",
        "The orbit of a comet threatens the colony, and the captain plans a daring spacewalk.",
    ],
    "cooking": [
        "A chef opens a small restaurant and fights to earn her first culinary star.",
        "Two rival bakers compete in a televised cooking contest full of pastries and sauces.",
        "A grandmother's secret recipe book sends a young cook across the country tasting street food.",
        "The kitchen staff of a busy hotel prepares a banquet for a visiting king.",
        "A food critic learns to cook after losing his sense of taste.",
    ],
    "sports": [
        "An underdog football team trains hard for the championship final.",
        "A retired boxer coaches a teenager for the match of her life.",
        "A marathon runner recovers from injury to race in the city marathon.",
        "The coach of a struggling baseball club bets everything on a rookie pitcher.",
        "A cycling team crosses the mountains in the hardest stage of the race.",
    ],
    "romance": [
        "Two strangers fall in love during a rainy week in Paris.",
        "A wedding planner falls for the groom's brother while organising the ceremony.",
        "Old love letters found in an attic reunite a couple separated for decades.",
        "A shy bookseller and a musician exchange notes and slowly fall in love.",
        "A summer romance on an island is tested when autumn comes.",
    ],
    "war": [
        "Soldiers hold a bridge against an enemy offensive in the final winter of the war.",
        "A medic crawls through the trenches to save wounded men under artillery fire.",
        "A battalion is cut off behind enemy lines and must march through occupied territory.",
        "The general orders a desperate assault on a fortified ridge.",
        "A pilot's bomber is shot down and the crew hides with the resistance.",
    ],
    "horror": [
        "A family moves into a haunted house where a ghost whispers at night.",
        "Teenagers camping in the woods are hunted by a masked killer.",
        "A cursed doll brings death to everyone who owns it.",
        "A priest performs an exorcism on a possessed girl as the demon grows stronger.",
        "Zombies overrun a small town and the survivors barricade the church.",
    ],
}

_NAMES = ["Anna", "Kenji", "Maria", "Tom", "Aiko", "Omar", "Lena", "Ravi", "Sofia", "Jack"]


def make_movies(
    n_movies: int = 240, n_users: int = 160, ratings_per_user: int = 25, seed: int = 7
) -> dict[str, pd.DataFrame]:
    """Return ``{"ratings", "users", "movies"}`` tables with the planted structure."""
    rng = np.random.default_rng(seed)
    topics = list(TOPIC_EFFECT)
    movie_topic = rng.choice(topics, size=n_movies)
    titles, overviews = [], []
    seen_titles: set[str] = set()
    for topic in movie_topic:
        nouns, extras = _TITLE_WORDS[topic]
        while True:
            title = f"{rng.choice(extras)} {rng.choice(nouns)}" if rng.random() < 0.6 else f"The {rng.choice(nouns)}"
            if title not in seen_titles:
                break
            title = f"{title} {int(rng.integers(2, 9))}"
            if title not in seen_titles:
                break
        seen_titles.add(title)
        titles.append(f"{title} ({int(rng.integers(1960, 2000))})")
        picks = rng.choice(len(_SENTENCES[topic]), size=2, replace=False)
        name = rng.choice(_NAMES)
        overviews.append(f"{name}'s story. " + " ".join(_SENTENCES[topic][j] for j in picks))
    movies = pd.DataFrame({"movie_id": np.arange(1, n_movies + 1), "title": titles, "overview": overviews})

    occupations = list(OCCUPATION_EFFECT)
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1),
            "age": rng.integers(18, 71, size=n_users),
            "gender": rng.choice(["M", "F"], size=n_users),
            "occupation": rng.choice(occupations, size=n_users),
        }
    )

    # Ratings also reach movies that have no entry (ids above n_movies): the join drops them.
    n_unknown = max(1, n_movies // 12)
    rows = []
    for user in users.itertuples():
        movie_ids = rng.choice(n_movies + n_unknown, size=ratings_per_user, replace=False) + 1
        for movie_id in movie_ids:
            topic = movie_topic[movie_id - 1] if movie_id <= n_movies else rng.choice(topics)
            latent = 3.0 + TOPIC_EFFECT[topic] + OCCUPATION_EFFECT[user.occupation] + rng.normal(0, 0.6)
            rows.append(
                (
                    user.user_id,
                    int(movie_id),
                    int(np.clip(np.rint(latent), 1, 5)),
                    int(880_000_000 + rng.integers(0, 10_000_000)),
                )
            )
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    return {"ratings": ratings, "users": users, "movies": movies}


def write_movies(folder: Path) -> list[Path]:
    """Write ``ratings.csv``, ``users.csv`` and ``movies.csv`` into ``folder``."""
    written = []
    for name, frame in make_movies().items():
        path = Path(folder) / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written
