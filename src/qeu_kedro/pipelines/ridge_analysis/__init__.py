"""Which features of users and movie embeddings explain a rating: Ridge regression."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
