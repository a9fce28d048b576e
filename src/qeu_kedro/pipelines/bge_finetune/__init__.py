"""Matryoshka fine-tuning of the embedding model on (anchor, positive) pairs, evaluated before and after."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
