"""``movie_embedding``: one template, instantiated once per namespace (``base``, ``finetuned``)."""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import MOVIE_NAMESPACES

from .nodes import check_movies, embed_movies


def create_template() -> Pipeline:
    """The pipeline before namespacing; ``movies`` and the parameters are shared."""
    return Pipeline(
        [
            Node(check_movies, "movies", "movies_checked", name="check_movies"),
            Node(
                embed_movies,
                ["movies_checked", "embedding_model", "embedding_cache", "params:movie_embedding"],
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
                template, namespace=ns, inputs={"movies"}, parameters={"params:movie_embedding"}, tags="movie_embedding"
            )
            for ns in MOVIE_NAMESPACES
        ),
        Pipeline([]),
    )
