"""Embed movie titles and overviews with a sentence-transformers model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
