"""The two instances of the movie pipelines: the pretrained model and the fine-tuned one."""

MOVIE_NAMESPACES: tuple[str, ...] = ("base", "finetuned")
