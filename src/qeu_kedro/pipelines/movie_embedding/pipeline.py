"""``movie_embedding``: one template, instantiated once per namespace (``base``, ``finetuned``)."""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import MOVIE_NAMESPACES
from qeu_kedro.preflight import INPUT_CHECK

from .nodes import embed_movies
from .overviews import check_movie_overviews, check_movies, check_rated_movies, match_overviews

OVERVIEWS = "params:movie_overviews"
RIDGE = "params:ridge_analysis"  # its max_join_loss and rating_step: the ratings' movies are checked here


def create_template() -> Pipeline:
    """The pipeline before namespacing; ``movies``, ``movie_overviews``, ``ratings`` and the parameters are shared."""
    return Pipeline(
        [
            Node(check_movies, "movies", "movies_checked", name="check_movies", tags=INPUT_CHECK),
            Node(
                check_movie_overviews,
                ["movie_overviews", OVERVIEWS],
                "movie_overviews_checked",
                name="check_movie_overviews",
                tags=INPUT_CHECK,
            ),
            Node(
                match_overviews,
                ["movies_checked", "movie_overviews_checked", OVERVIEWS],
                "movies_matched",
                name="match_overviews",
                tags=INPUT_CHECK,
            ),
            # the ratings of the movies left out, against max_join_loss: before anything is embedded or written
            Node(
                check_rated_movies,
                ["movies_matched", "ratings", RIDGE],
                "movies_to_embed",
                name="check_rated_movies",
                tags=INPUT_CHECK,
            ),
            Node(
                embed_movies,
                ["movies_to_embed", "embedding_model", "embedding_cache", "params:movie_embedding"],
                # the same cache file, read before and written after (a node cannot output its input)
                ["movie_embeddings", "embedding_cache_updated"],
                name="embed_movies",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    template = create_template()
    return sum(
        (
            Pipeline(
                template,
                namespace=ns,
                inputs={"movies", "movie_overviews", "ratings"},
                parameters={"params:movie_embedding", OVERVIEWS, RIDGE},
                tags="movie_embedding",
            )
            for ns in MOVIE_NAMESPACES
        ),
        Pipeline([]),
    )
